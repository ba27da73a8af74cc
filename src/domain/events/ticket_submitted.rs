//! `TicketSubmitted`: A ticket is sent to the second line / the client
//! company (事件提交 / 发单).

use super::prelude::*;

impl EventKind for pb::TicketSubmitted {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "ticket_id"), &self.ticket_id);
        c.opt_id(Join(p, "contact_id"), &self.contact_id);
        c.text(Join(p, "team"), &self.team, false);
        c.text(Join(p, "content"), &self.content, true);
        c.enum_value::<pb::Emotion>(Join(p, "customer_emotion"), self.customer_emotion, false);
        c.ids(Join(p, "demand_ids"), &self.demand_ids);
        c.enum_value::<pb::Channel>(
            Join(p, "contact_preference"),
            self.contact_preference,
            false,
        );
        for (i, d) in self.disputed_items.iter().enumerate() {
            c.text(
                Join(p, &format!("disputed_items[{i}].title")),
                &d.title,
                true,
            );
        }
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        unique(
            state.tickets.contains_key(&self.ticket_id),
            ErrorReason::TicketAlreadySubmitted,
            "ticket",
            &self.ticket_id,
        )?;
        known_demands(state, &self.demand_ids)
    }

    fn evolve(&self, state: &mut CaseState) {
        state
            .tickets
            .insert(self.ticket_id.clone(), TicketStage::AwaitingReview);
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("content", &mut self.content)
    }

    fn describe(&self) -> String {
        format!("ticket {} submitted to {}", self.ticket_id, self.team)
    }
}
