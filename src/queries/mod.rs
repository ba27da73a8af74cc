//! The read surface the API answers from: each query walks what it needs
//! of a read model's table (the policy board's indexes, cases' facts from
//! its bounded cache or their streams) and completes it from the log. The
//! API checks requests, maps errors and runs these blocking reads off its
//! async workers; where read models live is this module's business alone.

pub mod board;
