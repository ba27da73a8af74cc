//! Case 124545 of seed 000 (the auto-subscription complaint) as events: the
//! acceptance story and the policy tests replay it. It lives in the library
//! because the benchmark appends copies of it too.

pub use complaint_ledger_bench::seed_case::*;
