//! `PersonalDataErased`: The customer's personal data was erased (crypto-
//! shredding): its data key is destroyed, so every personal field of its
//! events reads "[erased]" from now on. Carries no personal data itself.

use super::prelude::*;

impl EventKind for pb::PersonalDataErased {
    const TAKEN_BY_A_CLOSED_CASE: bool = true;

    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, _top_level: bool) {
        c.id(Join(p, "customer_id"), &self.customer_id);
        c.text(Join(p, "reason"), &self.reason, true);
    }

    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation> {
        if self.customer_id == state.customer_id {
            Ok(())
        } else {
            Err(RuleViolation::new(
                ErrorReason::ErasureOfAnotherCustomer,
                format!(
                    "the case belongs to customer {:?}, not {:?}",
                    state.customer_id, self.customer_id
                ),
            ))
        }
    }

    fn evolve(&self, _state: &mut CaseState) {}

    fn personal_fields<'a>(&'a mut self, _out: &mut PersonalFields<'a>) {
        // Nothing of it is personal.
    }

    fn describe(&self) -> String {
        format!(
            "personal data of customer {} ERASED: {}",
            self.customer_id, self.reason
        )
    }
}
