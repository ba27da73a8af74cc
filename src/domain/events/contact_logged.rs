//! `ContactLogged`: One contact on the case, whoever made it (来电, 来访, 回访,
//! 信件).

use super::prelude::*;

impl EventKind for pb::ContactLogged {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "contact_id"), &self.contact_id);
        c.enum_value::<pb::Channel>(Join(p, "channel"), self.channel, true);
        c.enum_value::<pb::Direction>(Join(p, "direction"), self.direction, true);
        c.opt_id(Join(p, "agent_id"), &self.agent_id);
        c.acting_party(p, self.party.as_ref(), &self.agent_id);
        c.timestamp(Join(p, "started_at"), self.started_at.as_ref(), true);
        c.enum_value::<pb::EndedBy>(Join(p, "ended_by"), self.ended_by, false);
        c.enum_value::<pb::Emotion>(Join(p, "customer_emotion"), self.customer_emotion, false);
        c.text(Join(p, "summary"), &self.summary, false);
        for (i, t) in self.threats.iter().enumerate() {
            c.enum_value::<pb::Threat>(Join(p, &format!("threats[{i}]")), *t, true);
        }
        for (i, s) in self.silences.iter().enumerate() {
            if !matches!(s.silent_party.as_str(), "agent" | "customer") {
                c.fail(
                    Join(p, &format!("silences[{i}].silent_party")),
                    "must be \"agent\" or \"customer\"",
                );
            }
            if s.duration_seconds == 0 {
                c.fail(
                    Join(p, &format!("silences[{i}].duration_seconds")),
                    "must be positive",
                );
            }
        }
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        unique(
            state.contacts.contains_key(&self.contact_id),
            ErrorReason::ContactAlreadyLogged,
            "contact",
            &self.contact_id,
        )
    }

    fn evolve(&self, state: &mut CaseState) {
        state.contacts.insert(self.contact_id.clone(), self.channel);
        // Only agents count as agents: a volunteer or a manager
        // who made a contact is named in `party`, never here.
        if let Some(p) = acting_party(self.party.as_ref(), &self.agent_id)
            .filter(|p| p.kind == PartyKind::Agent as i32)
        {
            *state.agents.entry(p.id).or_default() += 1;
        }
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("summary", &mut self.summary)
    }

    fn describe(&self) -> String {
        let silences: u32 = self.silences.iter().map(|s| s.duration_seconds).sum();
        let mut s = format!(
            "{} {} {}s",
            channel(self.channel),
            pb::Direction::try_from(self.direction)
                .map(|d| d
                    .as_str_name()
                    .trim_start_matches("DIRECTION_")
                    .to_lowercase())
                .unwrap_or_default(),
            self.duration_seconds
        );
        if silences > 0 {
            let _ = write!(s, " (silent {silences}s)");
        }
        if !self.threats.is_empty() {
            let t: Vec<_> = self
                .threats
                .iter()
                .filter_map(|t| pb::Threat::try_from(*t).ok())
                .map(|t| t.as_str_name().trim_start_matches("THREAT_").to_lowercase())
                .collect();
            let _ = write!(s, " threats: {}", t.join(","));
        }
        if let Some(p) = acting_party(self.party.as_ref(), &self.agent_id) {
            let _ = write!(s, " by {}", describe(&p));
        }
        format!("{s} — {}", short(&self.summary, 60))
    }
}
