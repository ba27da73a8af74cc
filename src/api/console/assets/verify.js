// complaint-ledger console — proofs, checked in the browser.
//
// A case bundle (Audit.ExportCase) is verified here exactly as the Rust
// verifier does it (src/audit/bundle.rs), with nothing but WebCrypto:
// the checkpoint's Ed25519 signature against the key the reader pinned
// (never the key the server states), its origin against the key's name,
// every record's inclusion proof against the signed root (RFC 9162, leaf
// SHA-256(0x00 || record), node SHA-256(0x01 || left || right)), and the
// case's hash chain from version 1 with no gap. Each check is reported, so
// a failure says which one failed and where.
"use strict";
var CL = window.CL || (window.CL = {});

CL.proof = (function () {
  const enc = new TextEncoder();
  const dec = new TextDecoder("utf-8", { fatal: true });

  function b64decode(s) {
    const bin = atob(String(s || ""));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function b64encode(bytes) {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function concat(...parts) {
    const n = parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  function subtle() {
    if (!window.crypto || !window.crypto.subtle) {
      throw new Error(
        "this page is not a secure context (HTTPS, localhost or a file), so the browser offers no WebCrypto to verify with"
      );
    }
    return window.crypto.subtle;
  }

  async function sha256(bytes) {
    return new Uint8Array(await subtle().digest("SHA-256", bytes));
  }

  // --- a minimal protobuf reader: varints and length-delimited fields ---

  function fields(bytes) {
    const out = [];
    let i = 0;
    const varint = () => {
      let v = 0,
        mul = 1,
        b;
      do {
        if (i >= bytes.length) throw new Error("truncated varint");
        b = bytes[i++];
        v += (b & 0x7f) * mul;
        mul *= 128;
      } while (b & 0x80);
      return v;
    };
    while (i < bytes.length) {
      const key = varint();
      const field = Math.floor(key / 8),
        wire = key & 7;
      if (wire === 0) out.push({ field, value: varint() });
      else if (wire === 2) {
        const n = varint();
        if (i + n > bytes.length) throw new Error("truncated field " + field);
        out.push({ field, bytes: bytes.subarray(i, i + n) });
        i += n;
      } else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else throw new Error("unsupported wire type " + wire);
    }
    return out;
  }

  // StoredRecord (ledger.proto): the fields the checks need.
  function storedRecord(bytes) {
    const r = { position: 0, caseId: "", caseVersion: 0, eventId: "", eventType: "", prevHash: new Uint8Array(0) };
    for (const f of fields(bytes)) {
      if (f.field === 1) r.position = f.value;
      else if (f.field === 2) r.caseId = dec.decode(f.bytes);
      else if (f.field === 3) r.caseVersion = f.value;
      else if (f.field === 4) r.eventId = dec.decode(f.bytes);
      else if (f.field === 5) r.eventType = dec.decode(f.bytes);
      else if (f.field === 14) r.prevHash = f.bytes;
    }
    return r;
  }

  // A CaseBundle from its protobuf bytes (`complaint-ledger export`'s file).
  function bundleFromBytes(bytes) {
    const b = { formatVersion: 0, caseId: "", checkpoint: null, publicKey: "", records: [], consistencyFromSize: 0, consistencyProof: [] };
    for (const f of fields(bytes)) {
      if (f.field === 1) b.formatVersion = f.value;
      else if (f.field === 2) b.caseId = dec.decode(f.bytes);
      else if (f.field === 3) b.checkpoint = f.bytes;
      else if (f.field === 4) b.publicKey = dec.decode(f.bytes);
      else if (f.field === 5) {
        const rec = { record: new Uint8Array(0), inclusionProof: [] };
        for (const g of fields(f.bytes)) {
          if (g.field === 1) rec.record = g.bytes;
          else if (g.field === 2) rec.inclusionProof.push(g.bytes);
        }
        b.records.push(rec);
      } else if (f.field === 6) b.consistencyFromSize = f.value;
      else if (f.field === 7) b.consistencyProof.push(f.bytes);
    }
    return b;
  }

  // A CaseBundle from the API's JSON mapping (bytes as base64).
  function bundleFromJson(j) {
    return {
      formatVersion: Number(j.formatVersion || 0),
      caseId: j.caseId || "",
      checkpoint: b64decode(j.checkpoint),
      publicKey: j.publicKey || "",
      records: (j.records || []).map((r) => ({
        record: b64decode(r.record),
        inclusionProof: (r.inclusionProof || []).map(b64decode),
      })),
      consistencyFromSize: Number(j.consistencyFromSize || 0),
      consistencyProof: (j.consistencyProof || []).map(b64decode),
    };
  }

  // --- signed notes (C2SP signed-note) and checkpoints (tlog-checkpoint) ---

  // `name+keyid+base64(0x01 || Ed25519 public key)`. A key name has no
  // `+` (C2SP signed-note); the base64 may.
  async function parseKey(vkey) {
    const m = /^([^+\s]+)\+([0-9a-fA-F]{8})\+(\S+)$/.exec(String(vkey || "").trim());
    if (!m) throw new Error("the pinned key is not a signed-note verifier key (name+id+key)");
    const name = m[1],
      idHex = m[2],
      keyB64 = m[3];
    const raw = b64decode(keyB64);
    if (raw.length !== 33 || raw[0] !== 1) throw new Error("the pinned key is not an Ed25519 signed-note key");
    const pub = raw.subarray(1);
    const id = (await sha256(concat(enc.encode(name + "\n"), raw))).subarray(0, 4);
    if (hex(id) !== idHex.toLowerCase()) throw new Error("the pinned key's id does not match its name and key");
    const key = await subtle().importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    return { name, id, key };
  }

  async function verifyCheckpoint(noteBytes, vkey) {
    const key = await parseKey(vkey);
    const text = dec.decode(noteBytes);
    const split = text.indexOf("\n\n");
    if (split < 0) throw new Error("the checkpoint is not a signed note (no blank line before its signatures)");
    const body = text.slice(0, split + 1);
    const sigs = text.slice(split + 2).split("\n").filter((l) => l.length);
    let verified = false;
    for (const line of sigs) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m || m[1] !== key.name) continue;
      const sig = b64decode(m[2]);
      if (sig.length !== 68 || !equal(sig.subarray(0, 4), key.id)) continue;
      const ok = await subtle().verify({ name: "Ed25519" }, key.key, sig.subarray(4), enc.encode(body));
      if (!ok) throw new Error("the checkpoint's signature does not verify with the pinned key: it was altered or signed by another key");
      verified = true;
    }
    if (!verified) throw new Error("the checkpoint carries no signature by the pinned key " + key.name);
    const lines = body.split("\n");
    const origin = lines[0],
      size = Number(lines[1]),
      root = b64decode(lines[2]);
    if (origin !== key.name) throw new Error("the checkpoint is of log " + origin + ", the pinned key of " + key.name);
    if (!Number.isSafeInteger(size) || root.length !== 32) throw new Error("the checkpoint's size or root is malformed");
    const time = (lines.find((l) => l.startsWith("time ")) || "").slice(5);
    return { origin, size, root, time };
  }

  // --- the Merkle tree (RFC 9162) ---

  async function leafHash(record) {
    return sha256(concat(new Uint8Array([0]), record));
  }

  async function nodeHash(l, r) {
    return sha256(concat(new Uint8Array([1]), l, r));
  }

  // RFC 9162, 2.1.3.2: the root an inclusion proof leads to.
  async function inclusionRoot(index, size, leaf, path) {
    if (index >= size) throw new Error("leaf " + index + " is beyond the tree of " + size);
    let fn = index,
      sn = size - 1,
      r = leaf;
    for (const p of path) {
      if (sn === 0) throw new Error("the proof is longer than the tree is deep");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("the proof is shorter than the tree is deep");
    return r;
  }

  // Verifies a bundle against the pinned key. Never throws: the report says
  // what held and, for the first check that did not, what failed.
  async function verifyBundle(bundle, pinnedKey) {
    const report = { ok: false, checks: [], checkpoint: null, records: 0, failure: null };
    const pass = (what) => report.checks.push({ ok: true, what });
    const fail = (what, why) => {
      report.checks.push({ ok: false, what, why });
      report.failure = what + ": " + why;
      return report;
    };
    if (bundle.formatVersion !== 1) return fail("bundle format", "format " + bundle.formatVersion + " is not format 1");
    let cp;
    try {
      cp = await verifyCheckpoint(bundle.checkpoint, pinnedKey);
    } catch (e) {
      return fail("checkpoint signature", e.message);
    }
    report.checkpoint = cp;
    pass("checkpoint of " + cp.origin + " at size " + cp.size + " signed by the pinned key");
    if (!bundle.records.length) return fail("records", "the bundle holds no record");
    let prevHash = new Uint8Array(32),
      prevPosition = 0;
    for (let i = 0; i < bundle.records.length; i++) {
      const raw = bundle.records[i].record;
      let rec;
      try {
        rec = storedRecord(raw);
      } catch (e) {
        return fail("record " + (i + 1), "does not decode: " + e.message);
      }
      const where = "version " + (i + 1);
      if (rec.caseId !== bundle.caseId) return fail(where, "belongs to case " + rec.caseId + ", not " + bundle.caseId);
      if (rec.caseVersion !== i + 1)
        return fail(where, "is version " + rec.caseVersion + " (a record is missing or out of order)");
      if (!equal(rec.prevHash, prevHash))
        return fail(where, "does not chain to version " + i + " (altered or substituted)");
      if (rec.position <= prevPosition || rec.position > cp.size)
        return fail(where, "position " + rec.position + " is not in order within the checkpoint's tree");
      let root;
      try {
        root = await inclusionRoot(rec.position - 1, cp.size, await leafHash(raw), bundle.records[i].inclusionProof);
      } catch (e) {
        return fail(where + " at position " + rec.position, "inclusion proof: " + e.message);
      }
      if (!equal(root, cp.root))
        return fail(where + " at position " + rec.position, "inclusion proof does not lead to the signed root (the record was altered)");
      prevHash = await sha256(raw);
      prevPosition = rec.position;
      report.records++;
    }
    pass(report.records + " records chained from version 1 and included in the signed tree");
    report.ok = true;
    return report;
  }

  return { b64decode, b64encode, hex, sha256, storedRecord, bundleFromBytes, bundleFromJson, verifyCheckpoint, verifyBundle, parseKey };
})();
