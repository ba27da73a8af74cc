//! The read surface the API answers from: each query takes what it needs
//! of the read models (the policy board, under its read lock, held only
//! for the query) and completes it from the log outside the lock. The API
//! checks requests and maps errors; it never takes a read model's lock
//! itself, so where read models live (memory today, disk tables next) is
//! this module's business alone.

pub mod board;
