//! Roles and the access matrix, in one place so the README's table, the
//! enforcing layer and the tests read the same source.
//!
//! | role | may |
//! |---|---|
//! | `agent` | append to and read cases of its business line (no escalations, judgements or appeal decisions) |
//! | `supervisor` | everything on cases of every line: escalations, judgements, erasure; policy queries |
//! | `auditor` | read everything, proofs, exports, the PII-access log; personal data masked unless granted `pii:read` |
//! | `ops` | stats, rebuild, policy projections; never personal data |
//! | `service` | append to and read cases of its one business line |

use crate::proto::v1::case_event::Kind;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Agent,
    Supervisor,
    Auditor,
    Ops,
    Service,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Agent,
        Role::Supervisor,
        Role::Auditor,
        Role::Ops,
        Role::Service,
    ];

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "agent" => Role::Agent,
            "supervisor" => Role::Supervisor,
            "auditor" => Role::Auditor,
            "ops" => Role::Ops,
            "service" => Role::Service,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Auditor => "auditor",
            Role::Ops => "ops",
            Role::Service => "service",
        }
    }
}

/// The permission that lets an auditor read personal data.
pub const PII_READ: &str = "pii:read";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Stamped on every event it appends; from the credential only.
    pub actor: String,
    pub roles: BTreeSet<Role>,
    /// The business line an agent or service is scoped to.
    pub business_line: Option<String>,
    /// Granted `pii:read`.
    pub pii_read: bool,
    /// Development mode: no authentication configured (loopback only).
    pub development: bool,
}

use Role::*;

/// Who may call each RPC. `None`: a public method (health, reflection).
pub fn allowed_roles(path: &str) -> Option<&'static [Role]> {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let roles: &'static [Role] = match (service, method) {
        ("grpc.health.v1.Health", _)
        | ("grpc.reflection.v1.ServerReflection", _)
        | ("grpc.reflection.v1alpha.ServerReflection", _) => return None,
        ("complaint_ledger.v1.Ledger", "Append") => &[Agent, Supervisor, Service],
        ("complaint_ledger.v1.Ledger", "ReadCase") => &[Agent, Supervisor, Auditor, Service],
        ("complaint_ledger.v1.Ledger", "ReadAll" | "Subscribe") => &[Supervisor, Auditor],
        ("complaint_ledger.v1.Cases", "GetCase") => &[Agent, Supervisor, Auditor, Service],
        ("complaint_ledger.v1.Cases", "ListCases") => &[Agent, Supervisor, Auditor, Ops, Service],
        ("complaint_ledger.v1.Privacy", "FindCustomerCases") => {
            &[Agent, Supervisor, Auditor, Service]
        }
        ("complaint_ledger.v1.Policies", _) => &[Supervisor, Auditor, Ops],
        ("complaint_ledger.v1.Audit", _) => &[Auditor],
        ("complaint_ledger.v1.Ops", _) => &[Ops],
        ("complaint_ledger.v1.Privacy", "EraseCustomerData") => &[Supervisor],
        ("complaint_ledger.v1.Privacy", "ListPiiAccess") => &[Auditor],
        // Unknown methods: any authenticated caller, then UNIMPLEMENTED.
        _ => &[Agent, Supervisor, Auditor, Ops, Service],
    };
    Some(roles)
}

impl Caller {
    /// The development-mode caller: every role, named by the `x-actor` header.
    pub fn development(actor: String) -> Self {
        Caller {
            actor,
            roles: Role::ALL.into_iter().collect(),
            business_line: None,
            pii_read: true,
            development: true,
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether any of the caller's roles may call `path`.
    pub fn may_call(&self, path: &str) -> bool {
        allowed_roles(path).is_none_or(|roles| roles.iter().any(|r| self.has(*r)))
    }

    /// Whether the caller may touch cases of `line`: supervisors, auditors
    /// and ops see every line; agents and services only their own.
    pub fn may_access_line(&self, line: &str) -> bool {
        if self.has(Supervisor) || self.has(Auditor) || self.has(Ops) {
            return true;
        }
        self.business_line.as_deref() == Some(line)
    }

    /// The one line the caller is confined to, if any.
    pub fn line_scope(&self) -> Option<&str> {
        if self.has(Supervisor) || self.has(Auditor) || self.has(Ops) {
            None
        } else {
            Some(self.business_line.as_deref().unwrap_or(""))
        }
    }

    /// Whether responses to this caller may carry decrypted personal data:
    /// people who work cases do; auditors only with `pii:read`; ops never.
    pub fn sees_personal_data(&self) -> bool {
        self.has(Agent)
            || self.has(Supervisor)
            || self.has(Service)
            || (self.has(Auditor) && self.pii_read)
    }

    /// Why the caller may not append this event, if it may not: escalations,
    /// judgements and appeal decisions are a supervisor's. A correction is
    /// authorized as the fact it carries (a correction of a judgement is a
    /// judgement), however deep the carrying goes; the line of the corrected
    /// fact is the case's, which the writer checks for every append.
    pub fn may_append(&self, kind: &Kind) -> Result<(), &'static str> {
        if let Kind::EventCorrected(c) = kind {
            if let Some(carried) = c.replacement.as_ref().and_then(|r| r.kind.as_ref()) {
                return self.may_append(carried).map_err(|_| {
                    "the correction carries an escalation, judgement or appeal decision: those are recorded and corrected by a supervisor"
                });
            }
        }
        // Every kind listed: a new one does not compile until someone says
        // who may record it.
        let supervisors_only = match kind {
            Kind::Escalated(_)
            | Kind::ViolationJudged(_)
            | Kind::AppealDecided(_)
            | Kind::WarningWithdrawn(_) => true,
            Kind::CaseOpened(_)
            | Kind::ContactLogged(_)
            | Kind::DemandRecorded(_)
            | Kind::DemandDeclined(_)
            | Kind::DemandWithdrawn(_)
            | Kind::PromiseMade(_)
            | Kind::TicketSubmitted(_)
            | Kind::TicketRejected(_)
            | Kind::TicketAppended(_)
            | Kind::TicketResultGiven(_)
            | Kind::CallbackAttempted(_)
            | Kind::CallbackCompleted(_)
            | Kind::DissatisfactionClassified(_)
            | Kind::SurveyDone(_)
            | Kind::WarningRaised(_)
            | Kind::ExternalComplaintReceived(_)
            | Kind::ExternalComplaintAnswered(_)
            | Kind::ViolationAppealed(_)
            | Kind::NoteAdded(_)
            | Kind::EventCorrected(_)
            | Kind::CaseResolved(_)
            | Kind::CaseClosed(_)
            | Kind::CaseReopened(_)
            | Kind::PersonalDataErased(_)
            | Kind::OwnerAssigned(_) => false,
        };
        if supervisors_only && !self.has(Supervisor) {
            return Err(
                "escalations, judgements, appeal decisions and withdrawals of warnings are recorded by a supervisor",
            );
        }
        Ok(())
    }
}
