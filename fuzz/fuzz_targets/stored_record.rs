//! A stored record's bytes, as readers and the verifier decode them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| complaint_ledger::fuzz::stored_record(data));
