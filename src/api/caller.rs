//! Who is calling. The actor stamped on every stored event comes from here,
//! never from the request body.
//!
//! Until authentication is configured, the caller names itself in the
//! `x-actor` metadata header (an id of the closed id alphabet), or is
//! `anonymous`; that is development mode, and the server says so at start.

use tonic::Request;

/// Metadata header naming the caller in development mode.
pub const ACTOR_HEADER: &str = "x-actor";

/// The actor of a request.
pub fn actor_of<T>(req: &Request<T>) -> Result<String, tonic::Status> {
    match req.metadata().get(ACTOR_HEADER) {
        None => Ok("anonymous".to_string()),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| super::status::invalid_field(ACTOR_HEADER, "is not ASCII text"))?;
            if let Some(p) = crate::domain::ids::id_problem(s) {
                return Err(super::status::invalid_field(ACTOR_HEADER, p));
            }
            Ok(format!("dev:{s}"))
        }
    }
}
