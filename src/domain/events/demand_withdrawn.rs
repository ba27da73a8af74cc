//! `DemandWithdrawn`: The customer withdrew a demand. Ends it like a decline.

use super::prelude::*;

impl EventKind for pb::DemandWithdrawn {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "demand_id"), &self.demand_id);
        c.text(Join(p, "reason"), &self.reason, false);
        c.opt_id(Join(p, "contact_id"), &self.contact_id);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        known_contact(state, &self.contact_id)?;
        open_demand(state, &self.demand_id)
    }

    fn evolve(&self, state: &mut CaseState) {
        state.demands.insert(self.demand_id.clone(), false);
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("reason", &mut self.reason)
    }

    fn describe(&self) -> String {
        format!(
            "demand {} WITHDRAWN by the customer{}",
            self.demand_id,
            if self.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", short(&self.reason, 50))
            }
        )
    }
}
