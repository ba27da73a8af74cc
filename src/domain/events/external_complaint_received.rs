//! `ExternalComplaintReceived`: A complaint arrived from outside, e.g. a
//! regulator's letter.

use super::prelude::*;

impl EventKind for pb::ExternalComplaintReceived {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.enum_value::<pb::OutsideBody>(Join(p, "body"), self.body, true);
        c.text(Join(p, "reference_number"), &self.reference_number, true);
        if self.reference_number.len() > 128 {
            c.fail(Join(p, "reference_number"), "is longer than 128 bytes");
        }
        c.text(Join(p, "summary"), &self.summary, false);
        c.timestamp(Join(p, "respond_by"), self.respond_by.as_ref(), false);
        c.timestamp(Join(p, "resolve_by"), self.resolve_by.as_ref(), false);
        c.server_stamped(
            Join(p, "deadline_calendar"),
            self.deadline_calendar.is_empty(),
        );
        c.server_stamped(
            Join(p, "deadline_pending"),
            self.deadline_pending.is_empty(),
        );
        c.server_stamped(Join(p, "deadline_provisional"), !self.deadline_provisional);
    }

    fn decide(&self, _state: &CaseState) -> Result<(), RuleViolation> {
        Ok(())
    }

    fn evolve(&self, state: &mut CaseState) {
        state
            .external_complaints
            .insert(self.reference_number.clone());
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("summary", &mut self.summary)
    }

    fn describe(&self) -> String {
        format!(
            "external complaint {} from {}",
            self.reference_number,
            self.body().as_str_name()
        )
    }
}
