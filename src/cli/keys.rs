//! `complaint-ledger rotate-master-key`: re-wraps every customer's data key
//! under the first key of a master-key file, on a stopped server's store.
//! The log is not touched; after it, the older master keys can be dropped
//! from the file.

use crate::privacy::keystore::{KeyStore, MasterKeys};
use crate::store::EventLog;
use anyhow::{bail, Context};
use std::path::Path;

pub fn rotate_master_key(dir: &Path, master_key_file: &Path) -> anyhow::Result<()> {
    if !dir.join("db").exists() {
        bail!("{} holds no ledger", dir.display());
    }
    let text = std::fs::read_to_string(master_key_file)
        .with_context(|| format!("reading {}", master_key_file.display()))?;
    let master = MasterKeys::parse(&text).map_err(anyhow::Error::msg)?;
    let current = master.current_id().to_string();
    let log = crate::store::open_data_dir(dir)
        .context("opening the store (is a server still running on it?)")?;
    let keys = KeyStore::new(log.side_table("customer-keys")?, master);
    let n = keys.rewrap_all().map_err(anyhow::Error::msg)?;
    log.sync()?;
    println!("re-wrapped {n} customer keys under master key {current}");
    Ok(())
}
