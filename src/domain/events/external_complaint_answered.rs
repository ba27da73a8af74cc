//! `ExternalComplaintAnswered`: We answered an outside body's complaint (its
//! reference number).

use super::prelude::*;

impl EventKind for pb::ExternalComplaintAnswered {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.text(Join(p, "reference_number"), &self.reference_number, true);
        c.text(Join(p, "answer"), &self.answer, true);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        if state.external_complaints.contains(&self.reference_number) {
            Ok(())
        } else {
            Err(RuleViolation::new(
                ErrorReason::ExternalComplaintUnknown,
                format!(
                    "no outside complaint with reference number {:?} was received on this case",
                    self.reference_number
                ),
            ))
        }
    }

    fn evolve(&self, _state: &mut CaseState) {}

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("answer", &mut self.answer)
    }

    fn describe(&self) -> String {
        format!(
            "external complaint {} answered{}",
            self.reference_number,
            if self.resolved { " (settled)" } else { "" }
        )
    }
}
