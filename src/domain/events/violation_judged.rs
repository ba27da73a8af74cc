//! `ViolationJudged`: A complaint against an agent was judged under standard
//! 003.

use super::prelude::*;

impl EventKind for pb::ViolationJudged {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "judgement_id"), &self.judgement_id);
        c.id(Join(p, "agent_id"), &self.agent_id);
        if !(1..=15).contains(&self.item) {
            c.fail(
                Join(p, "item"),
                format!("{} is not a violation item (1-15)", self.item),
            );
        }
        check_elements(
            c,
            &Join(p, "elements"),
            self.elements.as_ref(),
            &self.agent_id,
        );
        c.timestamp(Join(p, "notified_at"), self.notified_at.as_ref(), false);
        c.server_stamped(Join(p, "contact_deadline"), self.contact_deadline.is_none());
        c.server_stamped(Join(p, "appeal_deadline"), self.appeal_deadline.is_none());
        c.server_stamped(
            Join(p, "deadline_calendar"),
            self.deadline_calendar.is_empty(),
        );
        c.server_stamped(
            Join(p, "deadline_pending"),
            self.deadline_pending.is_empty(),
        );
        c.server_stamped(Join(p, "deadline_provisional"), !self.deadline_provisional);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        unique(
            state.judgements.contains_key(&self.judgement_id),
            ErrorReason::JudgementAlreadyMade,
            "judgement",
            &self.judgement_id,
        )
    }

    fn evolve(&self, state: &mut CaseState) {
        if let Some(d) = &self.appeal_deadline {
            state
                .appeal_deadlines
                .insert(self.judgement_id.clone(), crate::time::ts_nanos(d));
        }
        state.judgements.insert(
            self.judgement_id.clone(),
            JudgementStage::Judged {
                established: self.established,
            },
        );
    }

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "agent {} judged on item {} (established: {})",
            self.agent_id, self.item, self.established
        )
    }
}

/// Standard 003: a complaint against an agent is processed only with its five
/// elements (who complains, about whom, what, when, evidence).
fn check_elements(
    c: &mut Check<'_>,
    p: &dyn Display,
    e: Option<&pb::ComplaintElements>,
    agent: &str,
) {
    let Some(e) = e else {
        c.fail(
            p,
            "a complaint against an agent needs its five elements: complainant, agent_id, what, when, evidence",
        );
        return;
    };
    let mut missing = Vec::new();
    if e.complainant.trim().is_empty() {
        missing.push("complainant");
    }
    if e.agent_id.trim().is_empty() {
        missing.push("agent_id");
    }
    if e.what.trim().is_empty() {
        missing.push("what");
    }
    if e.when.is_none() {
        missing.push("when");
    }
    if e.evidence.trim().is_empty() {
        missing.push("evidence");
    }
    for m in &missing {
        c.fail(
            format!("{p}.{m}"),
            "is one of the five elements of a complaint and is missing",
        );
    }
    if !e.agent_id.is_empty() && e.agent_id != agent {
        c.fail(
            format!("{p}.agent_id"),
            "names another agent than the judgement's agent_id",
        );
    }
    c.timestamp(format_args!("{p}.when"), e.when.as_ref(), false);
}
