//! `complaint-ledger migrate`: a stopped single-node ledger into a
//! cluster. The directory is verified first as `verify --data-dir` does
//! (a damaged log is not copied anywhere), then copied by
//! `store::jetstream::migrate`; the root it prints is the one every
//! cluster node's `verify --data-dir` shows at the same size.

use anyhow::bail;
use std::path::Path;

pub fn run(
    dir: &Path,
    signing_key_file: Option<&Path>,
    master_key_file: Option<&Path>,
    cluster: &crate::store::jetstream::JetStreamOptions,
) -> anyhow::Result<()> {
    let bar = super::progress_bar(0, "verifying");
    let checked = crate::ledger::integrity::check_data_dir(
        dir,
        signing_key_file,
        master_key_file,
        None,
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    let report = match checked {
        Ok(r) => r,
        Err(e) => {
            println!("FAILED: {e}");
            bail!("{} does not verify; nothing was migrated", dir.display())
        }
    };
    let log = crate::store::open_data_dir(dir)?;
    let bar = super::progress_bar(report.verified.records, "migrating");
    let migrated =
        crate::store::jetstream::migrate::migrate(&log, cluster, |done, _| bar.set_position(done));
    bar.finish_and_clear();
    let m = migrated?;
    println!(
        "OK: stream {} holds the {} records of {} ({} were there already) and {} customer keys; root {} at size {}",
        cluster.stream,
        m.records,
        dir.display(),
        m.already,
        m.keys,
        hex::encode(report.verified.root),
        report.verified.records
    );
    println!(
        "Start each node with --nats-url, its own empty --data-dir, and this directory's checkpoint-signing.key and pii-master.key (--signing-key-file, --master-key-file)."
    );
    Ok(())
}
