//! `WarningRaised`: An early warning (预警) fired on the case.

use super::prelude::*;

impl EventKind for pb::WarningRaised {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "warning_id"), &self.warning_id);
        c.id(Join(p, "rule"), &self.rule);
        c.text(Join(p, "reason"), &self.reason, true);
        c.enum_value::<pb::EscalationLevel>(Join(p, "required_level"), self.required_level, true);
        c.opt_id(Join(p, "triggering_event_id"), &self.triggering_event_id);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        unique(
            state.warnings.contains(&self.warning_id),
            ErrorReason::WarningAlreadyRaised,
            "warning",
            &self.warning_id,
        )
    }

    fn evolve(&self, state: &mut CaseState) {
        state.warnings.insert(self.warning_id.clone());
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "WARNING {}: {}{}",
            self.rule,
            short(&self.reason, 50),
            if self.found_on_import {
                " (found on import)"
            } else {
                ""
            }
        )
    }
}
