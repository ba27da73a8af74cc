//! `CaseResolved`: The case is resolved (办结), saying whether the customer
//! accepted the resolution. A reopen sets it aside.

use super::prelude::*;

impl EventKind for pb::CaseResolved {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.text(Join(p, "resolution"), &self.resolution, true)
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        match state.status {
            CaseStatus::Open => Ok(()),
            _ => Err(RuleViolation::new(
                ErrorReason::CaseNotOpen,
                "only an open case can be resolved",
            )),
        }
    }

    fn evolve(&self, state: &mut CaseState) {
        state.status = CaseStatus::Resolved;
        state.resolution_accepted = Some(self.customer_accepted);
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("resolution", &mut self.resolution)
    }

    fn describe(&self) -> String {
        format!(
            "resolved ({}): {}",
            if self.customer_accepted {
                "customer accepted"
            } else {
                "customer did not accept"
            },
            short(&self.resolution, 50)
        )
    }
}
