//! `OwnerAssigned`: The case's owner (负责人): the one party who coordinates
//! contacts with the customer. A later assignment replaces it. An outbound
//! contact or a callback by anyone else while an owner stands is
//! uncoordinated.

use super::prelude::*;

impl EventKind for pb::OwnerAssigned {
    const TAKEN_BY_A_CLOSED_CASE: bool = false;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        match &self.owner {
            None => c.fail(Join(p, "owner"), "is required"),
            Some(o) => {
                c.enum_value::<pb::PartyKind>(Join(p, "owner.kind"), o.kind, true);
                c.id(Join(p, "owner.id"), &o.id);
            }
        }
        c.text(Join(p, "reason"), &self.reason, false);
    }

    fn decide(&self, _state: &CaseState) -> Result<(), RuleViolation> {
        Ok(())
    }

    fn evolve(&self, _state: &mut CaseState) {}

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "owner: {}{}",
            self.owner.as_ref().map(describe).unwrap_or_default(),
            if self.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", short(&self.reason, 40))
            }
        )
    }
}
