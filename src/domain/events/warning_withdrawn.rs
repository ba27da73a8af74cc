//! `WarningWithdrawn`: A warning that a fact recorded later contradicts (a
//! callback made before the promise fell due, logged after it) is withdrawn.
//! The warning stays in the log; this says it no longer holds, why, and which
//! fact showed it.

use super::prelude::*;

impl EventKind for pb::WarningWithdrawn {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "warning_id"), &self.warning_id);
        c.text(Join(p, "reason"), &self.reason, true);
        c.opt_id(
            Join(p, "withdrawn_by_event_id"),
            &self.withdrawn_by_event_id,
        );
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        if !state.warnings.contains(&self.warning_id) {
            return Err(RuleViolation::new(
                ErrorReason::WarningUnknown,
                format!("warning {:?} was not raised on this case", self.warning_id),
            ));
        }
        if state.withdrawn_warnings.contains(&self.warning_id) {
            return Err(RuleViolation::new(
                ErrorReason::WarningAlreadyWithdrawn,
                format!("warning {:?} was already withdrawn", self.warning_id),
            ));
        }
        Ok(())
    }

    fn evolve(&self, state: &mut CaseState) {
        state.withdrawn_warnings.insert(self.warning_id.clone());
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "warning {} WITHDRAWN: {}",
            self.warning_id,
            short(&self.reason, 80)
        )
    }
}
