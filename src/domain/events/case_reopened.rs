//! `CaseReopened`: A resolved or closed case is opened again, with the
//! reason; the resolution stands no more.

use super::prelude::*;

impl EventKind for pb::CaseReopened {
    const TAKEN_BY_A_CLOSED_CASE: bool = true;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.text(Join(p, "reason"), &self.reason, true)
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        match state.status {
            CaseStatus::Open => Err(RuleViolation::new(
                ErrorReason::CaseNotClosed,
                "the case is open; only a resolved or closed case can be reopened",
            )),
            _ => Ok(()),
        }
    }

    fn evolve(&self, state: &mut CaseState) {
        state.status = CaseStatus::Open;
        state.resolution_accepted = None;
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!("reopened: {}", short(&self.reason, 50))
    }
}
