//! `CaseOpened`: A case (事件) is opened; nothing else can be appended before
//! it.

use super::prelude::*;

impl EventKind for pb::CaseOpened {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "customer_id"), &self.customer_id);
        c.id(Join(p, "business_line"), &self.business_line);
        c.text(Join(p, "category"), &self.category, true);
        c.text(Join(p, "summary"), &self.summary, false);
        for (i, d) in self.disputed_items.iter().enumerate() {
            c.text(
                Join(p, &format!("disputed_items[{i}].title")),
                &d.title,
                true,
            );
            c.text(
                Join(p, &format!("disputed_items[{i}].detail")),
                &d.detail,
                false,
            );
        }
        if let Some(pd) = &self.customer {
            c.text(Join(p, "customer.name"), &pd.name, false);
            c.text(Join(p, "customer.phone"), &pd.phone, false);
            c.text(Join(p, "customer.account"), &pd.account, false);
        }
        if !(-1439..=1439).contains(&self.utc_offset_minutes) {
            c.fail(
                Join(p, "utc_offset_minutes"),
                "must be between -1439 and 1439",
            );
        }
    }

    fn decide(&self, _state: &CaseState) -> Result<(), RuleViolation> {
        Err(RuleViolation::new(
            ErrorReason::CaseAlreadyOpened,
            "the case is already open; a case is opened once",
        ))
    }

    fn evolve(&self, state: &mut CaseState) {
        state.status = CaseStatus::Open;
        state.customer_id = self.customer_id.clone();
        state.business_line = self.business_line.clone();
        state.escalation_level = EscalationLevel::Agent;
    }

    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>) {
        out.push("summary", &mut self.summary);
        if let Some(c) = self.customer.as_mut() {
            out.push("customer.name", &mut c.name);
            out.push("customer.phone", &mut c.phone);
            out.push("customer.account", &mut c.account);
        }
    }

    fn describe(&self) -> String {
        format!(
            "customer {} · {} · {}",
            self.customer_id, self.business_line, self.category
        )
    }
}
