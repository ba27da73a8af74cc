//! `EventCorrected`: A correction of an earlier event of the same case. The
//! original stays.

use super::prelude::*;

impl EventKind for pb::EventCorrected {
    const TAKEN_BY_A_CLOSED_CASE: bool = true;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, top_level: bool) {
        c.id(Join(p, "corrected_event_id"), &self.corrected_event_id);
        c.text(Join(p, "reason"), &self.reason, true);
        match &self.replacement {
            Some(r) if !top_level => {
                c.fail(Join(p, "replacement"), "a correction cannot nest another")
            }
            Some(r) => {
                if matches!(r.kind, Some(Kind::EventCorrected(_))) {
                    c.fail(
                        Join(p, "replacement"),
                        "a correction cannot replace an event with another correction",
                    );
                } else {
                    super::validate_event(c, &Join(p, "replacement"), r, false);
                }
            }
            None => {}
        }
    }

    fn decide(&self, _state: &CaseState) -> Result<(), RuleViolation> {
        Ok(())
    }

    fn evolve(&self, state: &mut CaseState) {
        match self.replacement.as_ref().and_then(|r| r.kind.as_ref()) {
            // A correction of a judgement carries the appeal deadline
            // stamped as of the original notice: one left pending when
            // the calendar did not cover it is enforced from then on.
            Some(Kind::ViolationJudged(j)) => {
                if let Some(d) = &j.appeal_deadline {
                    state
                        .appeal_deadlines
                        .insert(j.judgement_id.clone(), crate::time::ts_nanos(d));
                }
            }
            // A corrected resolution corrects the one standing: the
            // state does not keep event ids, and a resolution set aside
            // by a reopen is not corrected into standing again.
            Some(Kind::CaseResolved(r)) if state.status != CaseStatus::Open => {
                state.resolution_accepted = Some(r.customer_accepted);
            }
            _ => {}
        }
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        if let Some(r) = self.replacement.as_deref_mut() {
            out.nested("replacement", r);
        }
    }

    fn describe(&self) -> String {
        format!(
            "CORRECTS {}: {}",
            self.corrected_event_id,
            short(&self.reason, 50)
        )
    }
}
