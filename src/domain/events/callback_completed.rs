//! `CallbackCompleted`: A callback delivered something to the customer (a
//! result, an answer).

use super::prelude::*;

impl EventKind for pb::CallbackCompleted {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "callback_id"), &self.callback_id);
        c.enum_value::<pb::Channel>(Join(p, "channel"), self.channel, true);
        c.opt_id(Join(p, "agent_id"), &self.agent_id);
        c.acting_party(p, self.party.as_ref(), &self.agent_id);
        c.opt_id(Join(p, "promise_id"), &self.promise_id);
        c.opt_id(Join(p, "ticket_id"), &self.ticket_id);
        c.text(Join(p, "outcome"), &self.outcome, false);
        c.enum_value::<pb::CustomerResponse>(
            Join(p, "customer_response"),
            self.customer_response,
            false,
        );
        c.ids(Join(p, "demand_ids"), &self.demand_ids);
        c.opt_id(
            Join(p, "dissatisfied_contact_id"),
            &self.dissatisfied_contact_id,
        );
        if self.promise_id.is_empty()
            && self.ticket_id.is_empty()
            && self.dissatisfied_contact_id.is_empty()
        {
            c.fail(p, "a callback answers a promise, delivers a ticket result or follows up a dissatisfied contact (KF-006): set promise_id, ticket_id or dissatisfied_contact_id");
        }
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        new_callback(state, &self.callback_id, &self.promise_id, &self.ticket_id)?;
        known_contact(state, &self.dissatisfied_contact_id)?;
        if !self.dissatisfied_contact_id.is_empty() {
            no_ticket_waiting(state)?;
        }
        known_demands(state, &self.demand_ids)
    }

    fn evolve(&self, state: &mut CaseState) {
        state.callbacks.insert(self.callback_id.clone());
        if self.reached {
            if let Some(open) = state.promises.get_mut(&self.promise_id) {
                *open = false;
            }
        }
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("outcome", &mut self.outcome)
    }

    fn describe(&self) -> String {
        format!(
            "callback by {}{} — {}",
            channel(self.channel),
            acted_by(self.party.as_ref(), &self.agent_id),
            pb::CustomerResponse::try_from(self.customer_response)
                .map(|r| r
                    .as_str_name()
                    .trim_start_matches("CUSTOMER_RESPONSE_")
                    .to_lowercase())
                .unwrap_or_default()
        )
    }
}
