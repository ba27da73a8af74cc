//! `CaseClosed`: The case is closed. A closed case takes only a reopen, a
//! note, a correction or an erasure.

use super::prelude::*;

impl EventKind for pb::CaseClosed {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.text(Join(p, "reason"), &self.reason, false)
    }

    fn decide(&self, _state: &CaseState) -> Result<(), RuleViolation> {
        Ok(())
    }

    fn evolve(&self, state: &mut CaseState) {
        state.status = CaseStatus::Closed
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!("closed: {}", short(&self.reason, 50))
    }
}
