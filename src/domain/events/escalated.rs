//! `Escalated`: The case goes up the ladder (上报).

use super::prelude::*;

impl EventKind for pb::Escalated {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.enum_value::<pb::EscalationLevel>(Join(p, "from_level"), self.from_level, true);
        c.enum_value::<pb::EscalationLevel>(Join(p, "to_level"), self.to_level, true);
        c.text(Join(p, "reason"), &self.reason, true);
        c.text(Join(p, "to_whom"), &self.to_whom, false);
        c.opt_id(Join(p, "warning_id"), &self.warning_id);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        if self.from_level != state.escalation_level as i32 {
            return Err(RuleViolation::new(
                ErrorReason::EscalationLevelMismatch,
                format!(
                    "the case is at {}, not at {}",
                    state.escalation_level.as_str_name(),
                    self.from_level().as_str_name()
                ),
            ));
        }
        if self.to_level <= self.from_level {
            return Err(RuleViolation::new(
                ErrorReason::EscalationNotUpward,
                "an escalation goes up the ladder: agent, team lead, manager, client company, outside body",
            ));
        }
        if !self.warning_id.is_empty() && !state.warnings.contains(&self.warning_id) {
            return Err(RuleViolation::new(
                ErrorReason::WarningUnknown,
                format!("warning {:?} was not raised on this case", self.warning_id),
            ));
        }
        Ok(())
    }

    fn evolve(&self, state: &mut CaseState) {
        state.escalation_level = self.to_level();
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "escalated {} → {}: {}",
            self.from_level().as_str_name(),
            self.to_level().as_str_name(),
            short(&self.reason, 50)
        )
    }
}
