//! Auditor commands: keep a checkpoint, export a case, and verify — a bundle
//! offline, a stopped server's store, or a server's growth since a kept
//! checkpoint. Every verification prints `OK: …` or `FAILED: …` and returns
//! an error (exit code 1) on failure.

use super::client::{explain, ServerArgs};
use crate::audit::bundle::verify_bundle;
use crate::audit::checkpoint::{verify_checkpoint, VerifiedCheckpoint};
use crate::audit::merkle::verify_consistency;
use crate::proto::v1 as pb;
use crate::store::EventLog;
use anyhow::{bail, Context};
use prost::Message;
use std::path::Path;

/// A public key given inline (`name+id+base64`) or as a file holding one.
pub fn read_public_key(arg: &str) -> anyhow::Result<String> {
    let p = Path::new(arg);
    if p.is_file() {
        return Ok(std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .trim()
            .to_string());
    }
    Ok(arg.trim().to_string())
}

/// `checkpoint -o FILE`: fetches, verifies and keeps the current checkpoint.
pub async fn keep_checkpoint(
    server: &ServerArgs,
    out: &Path,
    pubkey: Option<&str>,
) -> anyhow::Result<()> {
    let cp = server
        .connect()
        .await?
        .audit()
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .map_err(explain)?
        .into_inner();
    let key = match pubkey {
        Some(k) => read_public_key(k)?,
        None => cp.public_key.clone(),
    };
    let v = verify_checkpoint(&cp.signed_note, &key)
        .context("the server's checkpoint does not verify")?;
    std::fs::write(out, &cp.signed_note).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "kept checkpoint of {} at size {} (root {}) in {}",
        v.origin,
        v.size,
        hex::encode(v.root),
        out.display()
    );
    if pubkey.is_none() {
        println!(
            "public key (pin it for later verification): {}",
            cp.public_key
        );
    }
    Ok(())
}

fn read_kept(path: &Path, key: &str) -> anyhow::Result<VerifiedCheckpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    verify_checkpoint(&bytes, key)
        .with_context(|| format!("the kept checkpoint {} does not verify", path.display()))
}

/// `export --case ID -o FILE [--since CHECKPOINT]`.
pub async fn export(
    server: &ServerArgs,
    case_id: &str,
    out: &Path,
    since: Option<&Path>,
) -> anyhow::Result<()> {
    let since_size = match since {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let note = String::from_utf8_lossy(&bytes);
            note.lines()
                .nth(1)
                .and_then(|l| l.parse::<u64>().ok())
                .context("the kept checkpoint has no tree size line")?
        }
        None => 0,
    };
    let bundle = server
        .connect()
        .await?
        .audit()
        .export_case(pb::ExportCaseRequest {
            case_id: case_id.to_string(),
            since_size,
        })
        .await
        .map_err(explain)?
        .into_inner();
    std::fs::write(out, bundle.encode_to_vec())
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "exported case {case_id}: {} records to {}",
        bundle.records.len(),
        out.display()
    );
    Ok(())
}

/// `verify FILE --pubkey KEY [--since CHECKPOINT]`: a bundle, offline.
pub fn verify_bundle_file(file: &Path, pubkey: &str, since: Option<&Path>) -> anyhow::Result<()> {
    let key = read_public_key(pubkey)?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let result = pb::CaseBundle::decode(bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("the file is not a case bundle: {e}"))
        .and_then(|bundle| {
            let kept = since.map(|p| read_kept(p, &key)).transpose()?;
            Ok(verify_bundle(&bundle, &key, kept.as_ref())?)
        });
    match result {
        Ok(r) => {
            print!(
                "OK: case {}: {} records, versions 1..{} chained without a gap, each included in the tree of {} records signed by {}",
                r.case_id, r.records, r.records, r.checkpoint.size, r.checkpoint.origin
            );
            match r.extends {
                Some(k) => println!("; that tree extends the kept checkpoint of {k} records"),
                None => println!(),
            }
            Ok(())
        }
        Err(e) => {
            println!("FAILED: {e:#}");
            bail!("bundle verification failed")
        }
    }
}

/// `verify --data-dir DIR`: a stopped server's whole data directory, as
/// the server checks it when it starts (`ledger::integrity::check_data_dir`);
/// with `adopt_witness`, a store written before the integrity witness gets
/// one recording its verified head.
pub fn verify_data_dir(
    dir: &Path,
    signing_key_file: Option<&Path>,
    master_key_file: Option<&Path>,
    adopt_witness: bool,
    cluster: Option<&crate::store::jetstream::JetStreamOptions>,
) -> anyhow::Result<()> {
    use crate::ledger::integrity;
    if !dir.join("db").exists() {
        if !crate::store::witness::Witness::path_in(dir).exists() {
            bail!("{} holds no ledger", dir.display());
        }
        println!(
            "FAILED: the store's main file {} is missing, beside an integrity witness",
            dir.join("db").display()
        );
        bail!("verification failed")
    }
    if adopt_witness {
        return adopt(dir, signing_key_file);
    }
    let bar = super::progress_bar(0, "verifying");
    let checked = integrity::check_data_dir(
        dir,
        signing_key_file,
        master_key_file,
        cluster,
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    match checked {
        Ok(r) => {
            if r.fetched_back > 0 {
                println!(
                    "OK: this node's copy had lost {} acknowledged records in a crash (it is written behind the stream); fetched back from the stream, as its next start would",
                    r.fetched_back
                );
            }
            println!(
                "OK: {} records in {} cases; every hash chain, index and Merkle tree hash verifies; root {}",
                r.verified.records,
                r.verified.cases,
                hex::encode(r.verified.root)
            );
            match &r.witness {
                Some(w) => println!(
                    "OK: the integrity witness acknowledged {} records and {} PII-access entries (commit {}); the store holds them with the same root{}",
                    w.head.size,
                    w.head.access_count,
                    w.head.sequence,
                    w.fallback
                        .as_ref()
                        .map(|f| format!(" (one copy of the witness was unusable: {f}; the other was read, and the next commit rewrites it)"))
                        .unwrap_or_default()
                ),
                None => println!("OK: an empty store; the server writes its integrity witness as it starts"),
            }
            println!(
                "OK: {} PII-access entries chained; {} customer keys unwrap ({} erased)",
                r.access_entries, r.keys.0, r.keys.1
            );
            Ok(())
        }
        Err(e) => {
            println!("FAILED: {e}");
            bail!("verification failed")
        }
    }
}

/// `verify --data-dir DIR --adopt-witness`.
fn adopt(dir: &Path, signing_key_file: Option<&Path>) -> anyhow::Result<()> {
    use crate::ledger::integrity;
    if crate::store::witness::Witness::path_in(dir).exists() {
        println!(
            "FAILED: {} has an integrity witness already; nothing was written",
            dir.display()
        );
        bail!("verification failed")
    }
    let log = crate::store::open_data_dir(dir)
        .context("opening the store (is a server still running on it?)")?;
    let checked = crate::store::contain_panics(dir, || {
        Ok(crate::audit::verify::verify_store(&log, |_, _| {}))
    })
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    let report = match checked {
        Ok(r) => r,
        Err(e) => {
            println!("FAILED: {e}");
            bail!("verification failed")
        }
    };
    let access = crate::privacy::access_log::AccessLog::open(log.side_table("pii-access")?)
        .map_err(|e| anyhow::anyhow!(e))?;
    access.verify_all().map_err(|e| anyhow::anyhow!(e))?;
    let signer = integrity::signing_key(dir, signing_key_file, None, false)
        .map_err(|e| anyhow::anyhow!(e))?;
    let head = integrity::adopt(dir, &report, &access, signer.public_key())
        .map_err(|e| anyhow::anyhow!(e))?;
    println!(
        "OK: {} records verified; the integrity witness now acknowledges them (root {}) and {} PII-access entries",
        head.size,
        hex::encode(head.root),
        head.access_count
    );
    Ok(())
}

/// `verify --since CHECKPOINT --server URL --pubkey KEY`: the log only grew.
pub async fn verify_growth(server: &ServerArgs, since: &Path, pubkey: &str) -> anyhow::Result<()> {
    let key = read_public_key(pubkey)?;
    let kept = read_kept(since, &key)?;
    let mut c = server.connect().await?.audit();
    let now = c
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .map_err(explain)?
        .into_inner();
    let result = (|| -> anyhow::Result<VerifiedCheckpoint> {
        let current = verify_checkpoint(&now.signed_note, &key)
            .context("the server's checkpoint does not verify")?;
        if current.origin != kept.origin {
            bail!(
                "the server signs log {:?}, the kept checkpoint is of {:?}",
                current.origin,
                kept.origin
            );
        }
        if current.size < kept.size {
            bail!(
                "the server's log has {} records, fewer than the kept {}: it shrank",
                current.size,
                kept.size
            );
        }
        Ok(current)
    })();
    let current = match result {
        Ok(c) => c,
        Err(e) => {
            println!("FAILED: {e:#}");
            bail!("growth verification failed");
        }
    };
    let proof = c
        .prove_consistency(pb::ProveConsistencyRequest {
            old_size: kept.size,
            new_size: current.size,
        })
        .await
        .map_err(explain)?
        .into_inner();
    match verify_consistency(
        &proof.hashes,
        kept.size,
        &kept.root,
        current.size,
        &current.root,
    ) {
        Ok(()) => {
            println!(
                "OK: the log grew from {} to {} records and the kept checkpoint's tree is a prefix of the current one",
                kept.size, current.size
            );
            Ok(())
        }
        Err(e) => {
            println!("FAILED: the current log is not an extension of the kept checkpoint: {e}");
            bail!("growth verification failed")
        }
    }
}
