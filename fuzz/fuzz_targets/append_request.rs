//! An append request from the wire: decode, validate, decide.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| complaint_ledger::fuzz::append_request(data));
