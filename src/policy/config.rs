//! The policy file: which calendar each business line uses, the early-warning
//! rules and their required escalation, and the working-day defaults of
//! agents' appeals and outside complaints. TOML, with a default compiled in
//! (`config/policy.toml`), so a fresh server runs the documented policy.

use crate::proto::v1::EscalationLevel;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The policy file shipped with the service.
pub const DEFAULT_POLICY: &str = include_str!("../../config/policy.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub calendars: CalendarChoice,
    pub early_warning: EarlyWarningConfig,
    pub agents: AgentRules,
    pub external_complaints: ExternalComplaintRules,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarChoice {
    pub default: String,
    #[serde(default)]
    pub directory: Option<PathBuf>,
    #[serde(default)]
    pub business_lines: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyWarningConfig {
    pub enabled: bool,
    pub tick_seconds: u64,
    pub escalate_within_minutes: u64,
    #[serde(default)]
    pub rules: Vec<WarningRule>,
}

/// One early-warning rule: its stable name, what triggers it and the
/// escalation level it requires.
#[derive(Debug, Clone, Deserialize)]
pub struct WarningRule {
    pub name: String,
    #[serde(flatten)]
    pub trigger: Trigger,
    pub required_level: Level,
}

/// What fires a rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "when", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// `contacts` or more contacts from one customer (across cases) whose
    /// start times fall within `window_hours`.
    RepeatedContacts { contacts: u32, window_hours: u32 },
    /// A contact flagged with a threat (visit, police, regulator, media).
    Threat,
    /// A promise broken: answered late or on the wrong terms, or due and
    /// never answered.
    PromiseBroken,
    /// One ticket rejected `times` times.
    TicketRejected { times: u32 },
    /// The customer refused a delivered result `times` times on one case.
    ResultRefused { times: u32 },
    /// Any complaint from an outside body.
    ExternalComplaint,
    /// An outbound contact or a callback by someone other than the case's
    /// owner while one stands (`OwnerAssigned`): not coordinated with it.
    UncoordinatedContact,
}

/// Escalation levels as written in the policy file.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Agent,
    TeamLead,
    Manager,
    ClientCompany,
    OutsideBody,
}

impl Level {
    pub fn escalation(self) -> EscalationLevel {
        match self {
            Level::Agent => EscalationLevel::Agent,
            Level::TeamLead => EscalationLevel::TeamLead,
            Level::Manager => EscalationLevel::Manager,
            Level::ClientCompany => EscalationLevel::ClientCompany,
            Level::OutsideBody => EscalationLevel::OutsideBody,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRules {
    pub appeal_working_days: u32,
    pub contact_deadline_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalComplaintRules {
    pub respond_within_working_days: u32,
    pub resolve_within_working_days: u32,
}

impl PolicyConfig {
    /// Parses and checks a policy file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let c: PolicyConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut names = std::collections::HashSet::new();
        for r in &c.early_warning.rules {
            if r.name.is_empty() || !names.insert(r.name.as_str()) {
                return Err(format!(
                    "early-warning rule name {:?} is empty or used twice",
                    r.name
                ));
            }
            let bad = match r.trigger {
                Trigger::RepeatedContacts {
                    contacts,
                    window_hours,
                } => contacts < 2 || window_hours == 0,
                Trigger::TicketRejected { times } | Trigger::ResultRefused { times } => times == 0,
                _ => false,
            };
            if bad {
                return Err(format!(
                    "early-warning rule {:?} has a zero or too small threshold",
                    r.name
                ));
            }
        }
        if c.early_warning.tick_seconds == 0 {
            return Err("early_warning.tick_seconds must be at least 1".into());
        }
        if c.agents.appeal_working_days == 0
            || c.external_complaints.respond_within_working_days == 0
            || c.external_complaints.resolve_within_working_days == 0
        {
            return Err("working-day periods must be at least 1".into());
        }
        Ok(c)
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self::parse(DEFAULT_POLICY).expect("the shipped policy file is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_has_the_seven_rules() {
        let c = PolicyConfig::default();
        let names: Vec<_> = c
            .early_warning
            .rules
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "three_contacts_in_12h",
                "threat_on_contact",
                "promise_broken",
                "ticket_rejected_twice",
                "result_refused_twice",
                "external_complaint",
                "uncoordinated_contact"
            ]
        );
        assert_eq!(
            c.early_warning.rules[0].trigger,
            Trigger::RepeatedContacts {
                contacts: 3,
                window_hours: 12
            }
        );
        assert_eq!(c.external_complaints.respond_within_working_days, 7);
    }

    #[test]
    fn bad_policies_are_refused() {
        let base = DEFAULT_POLICY.to_string();
        for (from, to) in [
            ("contacts = 3", "contacts = 1"),
            ("times = 2", "times = 0"),
            ("when = \"threat\"", "when = \"thunder\""),
            ("required_level = \"manager\"", "required_level = \"boss\""),
            ("tick_seconds = 30", "tick_seconds = 0"),
            ("name = \"promise_broken\"", "name = \"threat_on_contact\""),
        ] {
            let text = base.replacen(from, to, 1);
            assert!(PolicyConfig::parse(&text).is_err(), "{to}");
        }
    }
}
