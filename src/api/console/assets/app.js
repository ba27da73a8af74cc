// complaint-ledger console — the page: sign-in, the case page, the boards,
// bundle verification, and the dossier (the same page reading data inlined
// in the file instead of calling the server).
//
// The bearer token is kept in sessionStorage: entered once per browser
// session, gone when the tab is. The pinned public key is kept in
// localStorage: it is what every proof is checked against, so it outlives
// the session and is never replaced by what a server says without the
// person choosing to.
"use strict";
var CL = window.CL || (window.CL = {});

(function () {
  const h = CL.h;
  const session = window.sessionStorage;
  const memory = {};
  const store = {
    get: (k) => {
      try {
        return window.localStorage.getItem(k);
      } catch (_) {
        return memory[k] || null;
      }
    },
    set: (k, v) => {
      try {
        window.localStorage.setItem(k, v);
      } catch (_) {
        memory[k] = v;
      }
    },
  };
  const dossier = document.getElementById("dossier-data");
  const main = document.getElementById("main");

  // --- calls ---

  function headers() {
    const hd = { "content-type": "application/json" };
    const token = session.getItem("cl.token");
    if (token) hd["authorization"] = "Bearer " + token;
    const actor = session.getItem("cl.actor");
    if (actor) hd["x-actor"] = actor;
    const purpose = session.getItem("cl.purpose");
    if (purpose) hd["x-purpose"] = purpose;
    return hd;
  }

  async function request(path, init) {
    const r = await fetch(path, Object.assign({ headers: headers() }, init || {}));
    const text = await r.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch (_) {
      body = { message: text };
    }
    if (!r.ok) {
      const e = new Error(body.message || r.statusText);
      e.refusal = body;
      e.status = r.status;
      throw e;
    }
    return body;
  }

  CL.api = {
    call: (service, method, body) => request("/console/api/rpc/" + service + "/" + method, { method: "POST", body: JSON.stringify(body || {}) }),
    get: (path) => request(path),
  };

  CL.errorBox = function (e) {
    const r = e.refusal || {};
    return h(
      "div",
      { class: "error", role: "alert" },
      h("strong", {}, (r.code || "Error") + ": "),
      e.message,
      r.reason ? h("div", { class: "reason" }, "reason " + r.reason) : null,
      (r.fieldViolations || []).length ? h("ul", {}, r.fieldViolations.map((v) => h("li", {}, v.field + ": " + v.description))) : null,
      e.status === 401 ? h("p", {}, h("a", { href: "#/signin" }, "Sign in")) : null
    );
  };

  // --- who is signed in ---

  async function showWho() {
    const who = document.getElementById("who");
    if (!who || dossier) return;
    try {
      const me = await CL.api.get("/console/api/whoami");
      CL.me = me;
      who.replaceChildren(
        h(
          "span",
          {},
          h("span", { class: "actor" }, me.actor),
        " · " + me.roles.join(", "),
        me.seesPersonalData ? h("span", { class: "tag tag-pii" }, "sees personal data") : h("span", { class: "tag" }, "personal data masked"),
        me.development ? h("span", { class: "tag tag-dev" }, "development mode") : null,
          " ",
          h("a", { href: "#/signin" }, "change")
        )
      );
    } catch (e) {
      CL.me = null;
      who.replaceChildren(h("a", { href: "#/signin" }, "Sign in"));
    }
  }

  function signin() {
    main.replaceChildren();
    const token = h("textarea", { id: "token", rows: 4, cols: 60, placeholder: "eyJhbGciOi…" });
    const actor = h("input", { id: "actor", placeholder: "your name (development mode only)", value: session.getItem("cl.actor") || "" });
    const purpose = h("input", { id: "purpose", placeholder: "why you read personal data, e.g. dispute 2020-17", value: session.getItem("cl.purpose") || "" });
    const form = h(
      "form",
      { class: "signin" },
      h("h2", {}, "Sign in"),
      h("p", {}, "Paste your bearer token (JWT). It is kept for this browser tab only and sent with every call, as with the gRPC API."),
      h("label", { for: "token" }, "Bearer token", token),
      h("label", { for: "actor" }, "Actor (development mode: no token verification, loopback only)", actor),
      h("label", { for: "purpose" }, "Purpose (logged with every reveal of personal data)", purpose),
      h("button", { type: "submit" }, "Sign in"),
      h("button", { type: "button", onclick: () => { session.clear(); location.hash = "#/signin"; showWho(); } }, "Sign out")
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const t = token.value.trim();
      if (t) session.setItem("cl.token", t);
      else session.removeItem("cl.token");
      if (actor.value.trim()) session.setItem("cl.actor", actor.value.trim());
      else session.removeItem("cl.actor");
      if (purpose.value.trim()) session.setItem("cl.purpose", purpose.value.trim());
      else session.removeItem("cl.purpose");
      await showWho();
      location.hash = CL.me ? "#/board/cases" : "#/signin";
      if (!CL.me) main.appendChild(h("div", { class: "error", role: "alert" }, "The server did not accept these credentials."));
    });
    main.appendChild(form);
  }

  // --- the pinned key ---

  function pinnedKey() {
    return store.get("cl.pinnedKey") || "";
  }

  function keyPanel(stated, onChange) {
    const input = h("input", { id: "pinned-key", size: 70, value: pinnedKey(), placeholder: "origin+keyid+base64 key" });
    const panel = h(
      "div",
      { class: "key-panel" },
      h("label", { for: "pinned-key" }, "Pinned public key (proofs are checked against this key only)", input),
      h("button", { type: "button", id: "pin-key", onclick: () => { store.set("cl.pinnedKey", input.value.trim()); onChange(); } }, "Pin this key")
    );
    if (stated && stated !== input.value) {
      panel.appendChild(
        h(
          "p",
          { class: "hint" },
          "The server states its key is ",
          h("code", {}, stated),
          ". Compare it with the key your organisation published before pinning it. ",
          h("button", { type: "button", id: "pin-stated", onclick: () => { input.value = stated; store.set("cl.pinnedKey", stated); onChange(); } }, "Pin the stated key")
        )
      );
    }
    return panel;
  }

  function proofReport(report, key) {
    const box = h("div", { class: "proof " + (report.ok ? "proof-ok" : "proof-failed"), id: "proof", "data-ok": report.ok ? "true" : "false" });
    if (report.ok) {
      const cp = report.checkpoint;
      box.appendChild(h("strong", {}, "✔ Verified"));
      box.appendChild(h("span", {}, " — " + report.records + " records of this case are in the checkpoint of " + cp.origin + " at size " + cp.size + (cp.time ? ", signed " + cp.time : "") + ", by the pinned key."));
    } else {
      box.appendChild(h("strong", {}, "✘ Verification failed"));
      box.appendChild(h("span", { class: "failure" }, " — " + report.failure));
    }
    box.appendChild(h("ul", { class: "checks" }, report.checks.map((c) => h("li", { class: c.ok ? "check-ok" : "check-failed" }, (c.ok ? "✔ " : "✘ ") + c.what + (c.why ? ": " + c.why : "")))));
    box.appendChild(h("p", { class: "hint" }, "Checked in this browser with WebCrypto (SHA-256, Ed25519) against " + (key || "no key")));
    return box;
  }

  async function verifyInto(target, bundle, key) {
    if (!key) {
      target.replaceChildren(h("div", { class: "proof proof-failed", id: "proof", "data-ok": "false" }, h("strong", {}, "✘ Not verified"), " — no public key is pinned. Pin the key your organisation published."));
      return;
    }
    target.replaceChildren(h("p", { class: "hint" }, "Verifying…"));
    const report = await CL.proof.verifyBundle(bundle, key);
    target.replaceChildren(proofReport(report, key));
  }

  // --- the case page ---

  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      const name = prefix ? prefix + "." + k : k;
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, name, out);
      else if (Array.isArray(v)) out.push([name, v.map((x) => (typeof x === "object" ? JSON.stringify(x) : x)).join(", ")]);
      else out.push([name, v]);
    }
    return out;
  }

  function short(b64) {
    if (!b64) return "";
    return CL.proof.hex(CL.proof.b64decode(b64)).slice(0, 12) + "…";
  }

  function eventsTable(events, off) {
    return h(
      "table",
      { class: "rows events", id: "events" },
      h("thead", {}, h("tr", {}, ["v", "position", "occurred (local)", "recorded (local)", "event", "actor", "details", "record hash", "prev hash"].map((c) => h("th", {}, c)))),
      h(
        "tbody",
        {},
        events.map((e) => {
          const kind = Object.keys(e.event || {})[0];
          const details = flatten((e.event || {})[kind], "", []);
          return h(
            "tr",
            { id: "ev-" + e.eventId, "data-event-id": e.eventId, class: e.imported ? "imported" : null },
            h("td", {}, e.caseVersion),
            h("td", {}, e.position),
            h("td", {}, CL.timeline.local(Date.parse(e.occurredAt), off)),
            h("td", {}, CL.timeline.local(Date.parse(e.recordedAt), off)),
            h("td", {}, e.eventType, e.imported ? h("span", { class: "tag" }, "imported") : null),
            h("td", {}, e.actor + (e.actedForAgent ? " for " + e.actedForAgent : "")),
            h("td", { class: "details" }, h("dl", {}, details.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]))),
            h("td", { class: "hash", title: e.recordHash ? CL.proof.hex(CL.proof.b64decode(e.recordHash)) : "" }, short(e.recordHash)),
            h("td", { class: "hash", title: e.prevHash ? CL.proof.hex(CL.proof.b64decode(e.prevHash)) : "" }, short(e.prevHash))
          );
        })
      )
    );
  }

  function summary(view) {
    const states = (list, f) => {
      const c = {};
      for (const x of list || []) c[f(x)] = (c[f(x)] || 0) + 1;
      return Object.entries(c).map(([k, n]) => n + " " + k).join(", ") || "none";
    };
    const st = (v, p) => String(v || "").replace(p, "").toLowerCase();
    const unanswered = (view.warnings || []).filter((w) => !w.withdrawnByEventId && !(view.escalations || []).some((e) => (e.escalation || {}).warningId === (w.warning || {}).warningId)).length;
    return h(
      "dl",
      { class: "summary" },
      h("dt", {}, "status"),
      h("dd", { id: "case-status" }, st(view.status, "CASE_STATUS_")),
      h("dt", {}, "business line"),
      h("dd", {}, view.businessLine || ""),
      h("dt", {}, "customer"),
      h("dd", {}, view.customerId || ""),
      h("dt", {}, "version"),
      h("dd", { id: "case-version" }, view.version),
      h("dt", {}, "contacts"),
      h("dd", {}, (view.contacts || []).length + " (" + (view.contactsByChannel || []).map((c) => CL.timeline.channel(c.key) + " " + c.count).join(", ") + ")"),
      h("dt", {}, "demands"),
      h("dd", { id: "case-demands" }, states(view.demands, (d) => st(d.state, "DEMAND_STATE_"))),
      h("dt", {}, "promises"),
      h("dd", { id: "case-promises" }, states(view.promises, (p) => st(p.state, "PROMISE_STATE_") + ((p.breachReasons || []).length ? " (" + p.breachReasons.map(CL.timeline.reason).join(", ") + ")" : ""))),
      h("dt", {}, "warnings"),
      h("dd", {}, (view.warnings || []).length + ", " + unanswered + " unanswered"),
      h("dt", {}, "escalation"),
      h("dd", {}, st(view.escalationLevel, "ESCALATION_LEVEL_") || "none"),
      h("dt", {}, "calendar"),
      h("dd", {}, view.calendar || ""),
      view.owner ? [h("dt", {}, "owner"), h("dd", {}, (view.owner.id || "") + " (" + st(view.owner.kind, "PARTY_KIND_") + ")")] : null,
      view.personalDataErased ? [h("dt", {}, "personal data"), h("dd", {}, "erased")] : null
    );
  }

  function legend() {
    const item = (cls, text) => h("span", { class: "legend-item" }, h("span", { class: "swatch " + cls }), text);
    return h(
      "div",
      { class: "legend" },
      item("sw-inbound", "customer contacted us"),
      item("sw-outbound", "we contacted the customer"),
      item("sw-breach", "demand answered on the wrong terms"),
      item("sw-kept", "kept"),
      item("sw-broken", "broken"),
      item("sw-open", "open"),
      item("sw-warning", "warning"),
      item("sw-weekend", "weekend"),
      item("sw-holiday", "holiday"),
      item("sw-makeup", "调休 working day")
    );
  }

  // Draws a case from loaded data: {view, events, calendar, bundle?,
  // stated key}. `live`: the as-of controls and the dossier button work.
  function drawCase(data, live) {
    const view = data.view;
    const off = data.calendar ? Number(data.calendar.utcOffsetMinutes || 0) : 480;
    const latest = data.latestVersion || Number(view.version);
    main.replaceChildren();
    main.appendChild(
      h(
        "h2",
        { id: "case-title" },
        "Case " + view.caseId,
        Number(view.version) < latest ? h("span", { class: "tag tag-asof" }, "as of version " + view.version + " of " + latest) : null,
        view.evaluatedAt ? h("span", { class: "tag", id: "judged-at" }, "judged as of " + CL.timeline.local(Date.parse(view.evaluatedAt), off)) : null
      )
    );
    if (live) {
      const version = h("input", { id: "asof-version", type: "number", min: 1, max: latest, value: view.version });
      const slider = h("input", { id: "asof-slider", type: "range", min: 1, max: latest, value: view.version, "aria-label": "version" });
      slider.addEventListener("input", () => (version.value = slider.value));
      const at = h("input", { id: "asof-time", type: "datetime-local", step: 1, value: data.params.get("at") || "" });
      const judged = h("input", { id: "asof-judge", type: "datetime-local", step: 1, value: data.params.get("eval") || "" });
      const go = (q) => (location.hash = "#/case/" + encodeURIComponent(view.caseId) + (q.toString() ? "?" + q : ""));
      const judging = () => {
        const q = new URLSearchParams();
        if (judged.value) q.set("eval", judged.value);
        return q;
      };
      const form = h(
        "form",
        { class: "asof", id: "asof" },
        h("label", { for: "asof-version" }, "As of version", version),
        slider,
        h("button", { type: "submit", id: "asof-apply" }, "Redraw"),
        h("label", { for: "asof-time" }, "or as the ledger knew it at (local)", at),
        h("button", { type: "button", id: "asof-time-apply", onclick: () => { const q = judging(); if (at.value) q.set("at", at.value); go(q); } }, "Redraw at time"),
        h("label", { for: "asof-judge" }, "Judge promises as of (local; default: then, or now)", judged),
        h("button", { type: "button", id: "asof-judge-apply", onclick: () => { const q = judging(); if (data.params.get("version")) q.set("version", data.params.get("version")); go(q); } }, "Judge"),
        h("button", { type: "button", id: "asof-now", onclick: () => (location.hash = "#/case/" + encodeURIComponent(view.caseId)) }, "Now"),
        h("button", { type: "button", id: "dossier", onclick: () => downloadDossier(view.caseId) }, "Download dossier"),
        h("button", { type: "button", onclick: () => window.print() }, "Print")
      );
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const q = judging();
        q.set("version", version.value);
        go(q);
      });
      main.appendChild(form);
    }
    main.appendChild(summary(view));
    const picture = h("div", { class: "picture", id: "picture" });
    const svg = CL.timeline.draw({ view, events: data.events, calendar: data.calendar }, { width: Math.max(900, main.clientWidth || 1100) });
    picture.appendChild(svg);
    main.appendChild(picture);
    main.appendChild(legend());
    svg.addEventListener("click", (e) => {
      const id = e.target.getAttribute && e.target.getAttribute("data-event-id");
      if (!id) return;
      const row = document.getElementById("ev-" + id);
      if (!row) return;
      document.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
      row.classList.add("selected");
      row.scrollIntoView({ block: "center" });
    });
    const proof = h("section", { class: "verification" }, h("h3", {}, "Proof"));
    const result = h("div", { id: "proof-result" });
    const rerun = () => verifyInto(result, data.bundle, pinnedKey() || (dossier ? data.publicKey : ""));
    proof.appendChild(keyPanel(data.publicKey, rerun));
    if (dossier && !pinnedKey()) proof.appendChild(h("p", { class: "hint" }, "No key is pinned in this browser: the bundle is checked against the key stated in this file. Pin your organisation's published key to be sure."));
    proof.appendChild(result);
    main.appendChild(proof);
    if (data.bundle) rerun();
    else result.replaceChildren(h("p", { class: "hint" }, data.bundleError ? "No proof: " + data.bundleError : "No proof loaded."));
    main.appendChild(h("h3", {}, "Events"));
    main.appendChild(eventsTable(data.events, off));
  }

  async function downloadDossier(caseId) {
    try {
      const r = await fetch("/console/api/dossier/" + encodeURIComponent(caseId), { headers: headers() });
      if (!r.ok) throw Object.assign(new Error((await r.json()).message || r.statusText), { status: r.status });
      const blob = await r.blob();
      const a = h("a", { href: URL.createObjectURL(blob), download: "case-" + caseId + "-dossier.html" });
      document.body.appendChild(a);
      a.click();
      a.remove();
    } catch (e) {
      main.prepend(CL.errorBox(e));
    }
  }

  // Local "YYYY-MM-DDTHH:MM[:SS]" in the case's offset -> RFC 3339.
  function localToRfc3339(s, off) {
    const t = Date.parse(s + "Z") - off * 60000;
    return new Date(t).toISOString();
  }

  async function casePage(caseId, params) {
    main.replaceChildren(h("p", { class: "hint" }, "Loading case " + caseId + "…"));
    try {
      const latest = await CL.api.call("Cases", "GetCase", { caseId });
      const off = 480;
      const req = { caseId };
      if (params.get("version")) req.version = params.get("version");
      else if (params.get("at")) req.recordedAt = localToRfc3339(params.get("at"), off);
      if (params.get("eval")) req.evaluateAt = localToRfc3339(params.get("eval"), off);
      const view = req.version || req.recordedAt || req.evaluateAt ? await CL.api.call("Cases", "GetCase", req) : latest;
      let events = await CL.api.call("Ledger", "ReadCase", { caseId });
      events = events.filter((e) => Number(e.caseVersion) <= Number(view.version));
      const times = events.map((e) => Date.parse(e.occurredAt)).concat((view.promises || []).map((p) => Date.parse((p.promise || {}).dueAt)).filter(Number.isFinite));
      const day = (t) => new Date(t + off * 60000).toISOString().slice(0, 10);
      let calendar = null;
      if (times.length) {
        const from = day(Math.min(...times) - 2 * 86400000),
          to = day(Math.min(Math.max(...times) + 2 * 86400000, Math.min(...times) + 390 * 86400000));
        calendar = await CL.api.get("/console/api/calendar?line=" + encodeURIComponent(view.businessLine || "") + "&from=" + from + "&to=" + to);
      }
      let bundle = null,
        bundleError = null;
      try {
        bundle = CL.proof.bundleFromJson(await CL.api.call("Audit", "ExportCase", { caseId }));
      } catch (e) {
        bundleError = e.message;
      }
      const me = CL.me || {};
      drawCase({ view, events, calendar, bundle, bundleError, publicKey: me.publicKey, latestVersion: Number(latest.version), params }, true);
    } catch (e) {
      main.replaceChildren(CL.errorBox(e));
    }
  }

  // --- verifying a bundle file ---

  function verifyPage() {
    main.replaceChildren(h("h2", {}, "Verify a case bundle"));
    main.appendChild(h("p", {}, "A bundle from `complaint-ledger export` (protobuf) or from Audit.ExportCase in the API's JSON mapping. It is checked here, in this browser, against the pinned key."));
    const result = h("div", { id: "proof-result" });
    const file = h("input", { type: "file", id: "bundle-file" });
    let last = null;
    const run = async () => {
      if (!last) return;
      await verifyInto(result, last, pinnedKey());
    };
    file.addEventListener("change", async () => {
      const f = file.files[0];
      if (!f) return;
      const bytes = new Uint8Array(await f.arrayBuffer());
      try {
        const text = new TextDecoder().decode(bytes).trim();
        last = text.startsWith("{") ? CL.proof.bundleFromJson(JSON.parse(text)) : CL.proof.bundleFromBytes(bytes);
      } catch (e) {
        result.replaceChildren(h("div", { class: "proof proof-failed", id: "proof", "data-ok": "false" }, h("strong", {}, "✘ Not a bundle"), " — " + e.message));
        return;
      }
      run();
    });
    main.appendChild(keyPanel(CL.me && CL.me.publicKey, run));
    main.appendChild(h("label", { for: "bundle-file" }, "Bundle file", file));
    main.appendChild(result);
  }

  function home() {
    main.replaceChildren(
      h("h2", {}, "complaint-ledger console"),
      h("p", {}, "Replay and verify a disputed case, and watch promises, warnings and queues."),
      h(
        "form",
        { class: "filters", id: "open-case", onsubmit: (e) => { e.preventDefault(); const v = e.target.elements.caseId.value.trim(); if (v) location.hash = "#/case/" + encodeURIComponent(v); } },
        h("label", { for: "case-id" }, "Case id", h("input", { id: "case-id", name: "caseId" })),
        h("button", { type: "submit" }, "Open")
      ),
      h("ul", {}, CL.boards.names.map((n) => h("li", {}, h("a", { href: "#/board/" + n }, CL.boards.titles[n]))), h("li", {}, h("a", { href: "#/verify" }, "Verify a bundle file")))
    );
  }

  function nav() {
    const n = document.getElementById("nav");
    if (!n || dossier) return;
    n.replaceChildren(
      h("a", { href: "#/" }, "home"),
      ...CL.boards.names.map((b) => h("a", { href: "#/board/" + b }, CL.boards.titles[b].toLowerCase())),
      h("a", { href: "#/verify" }, "verify")
    );
  }

  async function route() {
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, query] = hash.split("?");
    const params = new URLSearchParams(query || "");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] === "signin") return signin();
    if (!CL.me) await showWho();
    if (!CL.me) return signin();
    if (parts[0] === "case" && parts[1]) return casePage(parts[1], params);
    if (parts[0] === "board" && CL.boards.names.includes(parts[1])) return CL.boards.render(main, parts[1], params);
    if (parts[0] === "verify") return verifyPage();
    return home();
  }

  function start() {
    if (dossier) {
      const data = JSON.parse(dossier.textContent);
      const bundle = data.bundle ? CL.proof.bundleFromJson(data.bundle) : null;
      drawCase({ view: data.view, events: data.events, calendar: data.calendar, bundle, publicKey: data.publicKey }, false);
      main.appendChild(h("p", { class: "hint" }, "Exported " + data.exportedAt + " from the ledger " + data.origin + "."));
      return;
    }
    nav();
    window.addEventListener("hashchange", route);
    showWho().then(route);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
