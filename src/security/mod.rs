//! Who may do what: callers authenticated by bearer tokens (JWT), the roles
//! they hold and the RPCs and data each role reaches.
//!
//! - [`roles`]: the roles, the per-RPC matrix and what a caller may see;
//! - [`tokens`]: verifying a bearer token into a [`roles::Caller`].

pub mod roles;
pub mod tokens;
