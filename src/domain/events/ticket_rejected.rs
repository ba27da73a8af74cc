//! `TicketRejected`: The second line sends a ticket back (退单).

use super::prelude::*;

impl EventKind for pb::TicketRejected {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "ticket_id"), &self.ticket_id);
        c.text(Join(p, "reason"), &self.reason, true);
        for (i, m) in self.missing_fields.iter().enumerate() {
            c.text(Join(p, &format!("missing_fields[{i}]")), m, true);
        }
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        match state.tickets.get(&self.ticket_id) {
            Some(TicketStage::AwaitingReview) => Ok(()),
            Some(_) => Err(RuleViolation::new(
                ErrorReason::TicketNotAwaitingReview,
                format!("ticket {:?} is not waiting for the second line; only a submitted or appended ticket can be rejected", self.ticket_id),
            )),
            None => Err(unknown_ticket(&self.ticket_id)),
        }
    }

    fn evolve(&self, state: &mut CaseState) {
        state
            .tickets
            .insert(self.ticket_id.clone(), TicketStage::Rejected);
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "ticket {} REJECTED: {} (missing: {})",
            self.ticket_id,
            short(&self.reason, 40),
            self.missing_fields.join(", ")
        )
    }
}
