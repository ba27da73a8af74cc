//! The gRPC surface: the `Ledger`, `Cases`, `Policies`, `Audit` and `Ops`
//! services, the mapping of ledger errors to gRPC statuses, and the server
//! that hosts them with health and reflection.

pub mod audit_service;
pub mod auth;
pub mod caller;
pub mod cases_service;
pub mod catch_up;
pub mod connections;
pub mod console;
pub mod event_filter;
pub mod http;
pub mod ledger_service;
pub mod log_reader;
pub mod metrics;
pub mod observe;
pub mod ops_service;
pub mod pii;
pub mod policies_service;
pub mod privacy_service;
pub mod server;
pub mod status;
pub mod streaming;
