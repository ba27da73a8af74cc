//! `ViolationAppealed`: The agent appealed a judgement (申诉).

use super::prelude::*;

impl EventKind for pb::ViolationAppealed {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "judgement_id"), &self.judgement_id);
        c.text(Join(p, "reason"), &self.reason, true);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        match state.judgements.get(&self.judgement_id) {
            Some(JudgementStage::Judged { established: true }) => Ok(()),
            Some(JudgementStage::Judged { established: false }) => Err(RuleViolation::new(
                ErrorReason::JudgementNotEstablished,
                "only an established violation can be appealed",
            )),
            Some(_) => Err(RuleViolation::new(
                ErrorReason::JudgementAlreadyAppealed,
                "a judgement is appealed once",
            )),
            None => Err(unknown_judgement(&self.judgement_id)),
        }
    }

    fn evolve(&self, state: &mut CaseState) {
        state
            .judgements
            .insert(self.judgement_id.clone(), JudgementStage::Appealed);
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!("judgement {} appealed", self.judgement_id)
    }
}
