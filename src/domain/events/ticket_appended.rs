//! `TicketAppended`: More information is appended to a ticket and it is
//! resubmitted (追加).

use super::prelude::*;

impl EventKind for pb::TicketAppended {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "ticket_id"), &self.ticket_id);
        c.text(Join(p, "addition"), &self.addition, true);
        c.ids(Join(p, "demand_ids"), &self.demand_ids);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        if !state.tickets.contains_key(&self.ticket_id) {
            return Err(unknown_ticket(&self.ticket_id));
        }
        known_demands(state, &self.demand_ids)
    }

    fn evolve(&self, state: &mut CaseState) {
        state
            .tickets
            .insert(self.ticket_id.clone(), TicketStage::AwaitingReview);
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("addition", &mut self.addition)
    }

    fn describe(&self) -> String {
        format!(
            "ticket {} appended: {}",
            self.ticket_id,
            short(&self.addition, 50)
        )
    }
}
