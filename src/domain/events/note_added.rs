//! `NoteAdded`: A free note on the case.

use super::prelude::*;

impl EventKind for pb::NoteAdded {
    const TAKEN_BY_A_CLOSED_CASE: bool = true;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.text(Join(p, "text"), &self.text, true)
    }

    fn decide(&self, _state: &CaseState) -> Result<(), RuleViolation> {
        Ok(())
    }

    fn evolve(&self, _state: &mut CaseState) {}

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("text", &mut self.text)
    }

    fn describe(&self) -> String {
        format!("note: {}", short(&self.text, 60))
    }
}
