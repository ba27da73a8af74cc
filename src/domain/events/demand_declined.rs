//! `DemandDeclined`: A demand is answered no, with the reason (e.g. "dismiss
//! that person": not our employee). It ends the demand: from then on its
//! terms no longer judge deliveries and its due time raises nothing.

use super::prelude::*;

impl EventKind for pb::DemandDeclined {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "demand_id"), &self.demand_id);
        c.text(Join(p, "reason"), &self.reason, true);
        match &self.decided_by {
            None => c.fail(Join(p, "decided_by"), "is required: who decided"),
            Some(d) => {
                c.enum_value::<pb::PartyKind>(Join(p, "decided_by.kind"), d.kind, true);
                c.id(Join(p, "decided_by.id"), &d.id);
            }
        }
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
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
            "demand {} DECLINED by {}: {}",
            self.demand_id,
            self.decided_by.as_ref().map(describe).unwrap_or_default(),
            short(&self.reason, 50)
        )
    }
}
