//! `SurveyDone`: A KF-006 survey (调研) was done.

use super::prelude::*;

impl EventKind for pb::SurveyDone {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "contact_id"), &self.contact_id);
        c.enum_value::<pb::DissatisfactionFactor>(Join(p, "factor"), self.factor, false);
        c.text(Join(p, "notes"), &self.notes, false);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        known_contact(state, &self.contact_id)?;
        channel_factor(state, &self.contact_id, self.factor)
    }

    fn evolve(&self, _state: &mut CaseState) {}

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("notes", &mut self.notes)
    }

    fn describe(&self) -> String {
        format!(
            "survey of {} (resolved: {}, satisfied: {})",
            self.contact_id, self.resolved, self.satisfied
        )
    }
}
