//! An exported case bundle, verified offline.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static KEY: OnceLock<String> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let key = KEY.get_or_init(complaint_ledger::fuzz::fuzz_public_key);
    complaint_ledger::fuzz::case_bundle(data, key)
});
