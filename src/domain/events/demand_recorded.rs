//! `DemandRecorded`: What the customer asked for (要求 / 诉求).

use super::prelude::*;

impl EventKind for pb::DemandRecorded {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "demand_id"), &self.demand_id);
        c.opt_id(Join(p, "contact_id"), &self.contact_id);
        c.text(Join(p, "description"), &self.description, true);
        c.enum_value::<pb::Channel>(Join(p, "required_channel"), self.required_channel, false);
        for (i, ch) in self.refused_channels.iter().enumerate() {
            c.enum_value::<pb::Channel>(Join(p, &format!("refused_channels[{i}]")), *ch, true);
            if *ch != 0 && *ch == self.required_channel {
                c.fail(
                    Join(p, &format!("refused_channels[{i}]")),
                    "refuses the channel the demand requires",
                );
            }
        }
        c.timestamp(Join(p, "due_by"), self.due_by.as_ref(), false);
        if let Some(w) = &self.window {
            if w.to_minute > 1440 || w.from_minute >= w.to_minute {
                c.fail(
                    Join(p, "window"),
                    "needs 0 <= from_minute < to_minute <= 1440 (minutes of the local day)",
                );
            }
        }
        c.required_party(Join(p, "required_party"), self.required_party.as_ref());
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        unique(
            state.demands.contains_key(&self.demand_id),
            ErrorReason::DemandAlreadyRecorded,
            "demand",
            &self.demand_id,
        )?;
        known_contact(state, &self.contact_id)
    }

    fn evolve(&self, state: &mut CaseState) {
        state.demands.insert(self.demand_id.clone(), true);
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("description", &mut self.description)
    }

    fn describe(&self) -> String {
        format!(
            "demand {}: {}{}",
            self.demand_id,
            short(&self.description, 60),
            must_act(self.required_party.as_ref())
        )
    }
}
