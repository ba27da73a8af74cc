//! `AppealDecided`: The appeal was decided.

use super::prelude::*;

impl EventKind for pb::AppealDecided {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "judgement_id"), &self.judgement_id);
        c.text(Join(p, "reason"), &self.reason, true);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        match state.judgements.get(&self.judgement_id) {
            Some(JudgementStage::Appealed) => Ok(()),
            Some(_) => Err(RuleViolation::new(
                ErrorReason::JudgementNotAppealed,
                "only an appealed judgement can have its appeal decided",
            )),
            None => Err(unknown_judgement(&self.judgement_id)),
        }
    }

    fn evolve(&self, state: &mut CaseState) {
        state
            .judgements
            .insert(self.judgement_id.clone(), JudgementStage::Decided);
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "appeal on {} decided (upheld: {})",
            self.judgement_id, self.upheld
        )
    }
}
