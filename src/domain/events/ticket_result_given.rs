//! `TicketResultGiven`: The second line / client gives its result (回访结果).

use super::prelude::*;

impl EventKind for pb::TicketResultGiven {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "ticket_id"), &self.ticket_id);
        c.text(Join(p, "result"), &self.result, true);
        c.enum_value::<pb::ResultFinality>(Join(p, "finality"), self.finality, true);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        match state.tickets.get(&self.ticket_id) {
            Some(TicketStage::AwaitingReview) => Ok(()),
            Some(TicketStage::Rejected) => Err(RuleViolation::new(
                ErrorReason::TicketRejectedNeedsAppend,
                format!(
                    "ticket {:?} was rejected; append to it before a result can be given",
                    self.ticket_id
                ),
            )),
            Some(TicketStage::ResultGiven) => Err(RuleViolation::new(
                ErrorReason::TicketResultAlreadyGiven,
                format!(
                    "ticket {:?} already has a result; append to it to ask for another",
                    self.ticket_id
                ),
            )),
            None => Err(unknown_ticket(&self.ticket_id)),
        }
    }

    fn evolve(&self, state: &mut CaseState) {
        state
            .tickets
            .insert(self.ticket_id.clone(), TicketStage::ResultGiven);
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("result", &mut self.result)
    }

    fn describe(&self) -> String {
        format!(
            "ticket {} result: {}",
            self.ticket_id,
            short(&self.result, 50)
        )
    }
}
