//! `CallbackAttempted`: We tried to reach the customer (回访 attempt); it may
//! not have reached them.

use super::prelude::*;

impl EventKind for pb::CallbackAttempted {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "callback_id"), &self.callback_id);
        c.enum_value::<pb::Channel>(Join(p, "channel"), self.channel, true);
        c.opt_id(Join(p, "agent_id"), &self.agent_id);
        c.acting_party(p, self.party.as_ref(), &self.agent_id);
        c.opt_id(Join(p, "promise_id"), &self.promise_id);
        c.opt_id(Join(p, "ticket_id"), &self.ticket_id);
        if self.promise_id.is_empty() && self.ticket_id.is_empty() {
            c.fail(p, "a callback answers a promise or delivers a ticket result: set promise_id or ticket_id");
        }
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        new_callback(state, &self.callback_id, &self.promise_id, &self.ticket_id)
    }

    fn evolve(&self, state: &mut CaseState) {
        state.callbacks.insert(self.callback_id.clone());
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "callback attempt by {}{} (reached: {})",
            channel(self.channel),
            acted_by(self.party.as_ref(), &self.agent_id),
            self.reached
        )
    }
}
