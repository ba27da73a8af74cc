//! Who is calling, as the auth layer established it ([`crate::api::auth`]).
//! The actor stamped on every stored event comes from here, never from the
//! request body or a header a client could set (outside development mode).

use crate::security::roles::Caller;
use tonic::{Request, Status};

/// The caller of a request. Every non-public request carries one; a request
/// without one did not pass the auth layer and is refused.
pub fn caller_of<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("the request was not authenticated"))
}

/// The actor of a request.
pub fn actor_of<T>(req: &Request<T>) -> Result<String, Status> {
    caller_of(req).map(|c| c.actor)
}

/// Refuses a case of a business line the caller may not touch.
pub fn check_line(caller: &Caller, case_id: &str, line: &str) -> Result<(), Status> {
    if caller.may_access_line(line) {
        Ok(())
    } else {
        // The other line is not named: a line-scoped caller learns nothing
        // of it.
        Err(Status::permission_denied(format!(
            "case {case_id} is not a case of business line {:?}, the only line {} may touch",
            caller.business_line.as_deref().unwrap_or(""),
            caller.actor
        )))
    }
}
