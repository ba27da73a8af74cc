//! `DissatisfactionClassified`: A dissatisfied contact is classified (需调研 /
//! 需回访).

use super::prelude::*;

impl EventKind for pb::DissatisfactionClassified {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "contact_id"), &self.contact_id);
        c.enum_value::<pb::DissatisfactionFactor>(Join(p, "factor"), self.factor, true);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        known_contact(state, &self.contact_id)?;
        channel_factor(state, &self.contact_id, self.factor)
    }

    fn evolve(&self, _state: &mut CaseState) {}

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "dissatisfied contact {} (factor {})",
            self.contact_id, self.factor
        )
    }
}
