//! `PromiseMade`: Something an agent promised the customer (承诺).

use super::prelude::*;

impl EventKind for pb::PromiseMade {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "promise_id"), &self.promise_id);
        c.opt_id(Join(p, "contact_id"), &self.contact_id);
        c.opt_id(Join(p, "agent_id"), &self.agent_id);
        c.text(Join(p, "description"), &self.description, true);
        if self.working_days > 0 {
            if self.due_at.is_some() {
                c.fail(
                    Join(p, "due_at"),
                    "is computed by the server from working_days and the business line's calendar; leave it empty or set working_days to 0",
                );
            }
            if self.working_days > MAX_WORKING_DAYS {
                c.fail(
                    Join(p, "working_days"),
                    format!("{} is more than {MAX_WORKING_DAYS}", self.working_days),
                );
            }
        } else {
            c.timestamp(Join(p, "due_at"), self.due_at.as_ref(), true);
        }
        c.server_stamped(Join(p, "due_calendar"), self.due_calendar.is_empty());
        c.server_stamped(Join(p, "due_pending"), self.due_pending.is_empty());
        c.server_stamped(Join(p, "due_provisional"), !self.due_provisional);
        c.enum_value::<pb::Channel>(Join(p, "channel"), self.channel, false);
        c.required_party(Join(p, "required_party"), self.required_party.as_ref());
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        unique(
            state.promises.contains_key(&self.promise_id),
            ErrorReason::PromiseAlreadyMade,
            "promise",
            &self.promise_id,
        )?;
        known_contact(state, &self.contact_id)
    }

    fn evolve(&self, state: &mut CaseState) {
        state.promises.insert(self.promise_id.clone(), true);
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "promise {}: {}{}{}",
            self.promise_id,
            short(&self.description, 60),
            must_act(self.required_party.as_ref()),
            if self.due_provisional {
                " (due by a provisional calendar)"
            } else {
                ""
            }
        )
    }
}

/// The longest "within N working days" a promise may state.
const MAX_WORKING_DAYS: u32 = 60;
