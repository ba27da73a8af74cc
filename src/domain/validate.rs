//! Shape checks on an append request, run before anything touches the log:
//! required fields, known enum values, id alphabet, timestamps, and the size
//! limits. Every problem is reported with its field path, all at once, so a
//! client can fix a request in one round trip.

use super::error::FieldViolation;
use super::event_kind::field_name;
use super::ids::{id_problem, optional_id_problem};
use crate::proto::v1::{self as pb, case_event::Kind};
use prost::Message;
use std::collections::HashSet;
use std::fmt::{self, Display};

/// The longest "within N working days" a promise may state.
pub const MAX_WORKING_DAYS: u32 = 60;

/// Size limits of one append. Each is configurable; exceeding one is
/// `RESOURCE_EXHAUSTED` naming the limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Encoded size of a whole `AppendRequest`.
    pub max_request_bytes: usize,
    /// Events in one `AppendRequest`.
    pub max_events_per_append: usize,
    /// Encoded size of one event's payload (`CaseEvent`).
    pub max_event_bytes: usize,
    /// Bytes of any one text field.
    pub max_text_bytes: usize,
    /// How far an event's `occurred_at` may lie ahead of the server's clock,
    /// seconds: the clocks of the callers' machines drift, but an event
    /// states when something happened, never when it will.
    pub max_clock_skew_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 4 * 1024 * 1024,
            max_events_per_append: 1000,
            max_event_bytes: 64 * 1024,
            max_text_bytes: 32 * 1024,
            max_clock_skew_seconds: 300,
        }
    }
}

/// A limit an append request went past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    /// The limit's configuration name, e.g. `max_event_bytes`.
    pub limit: &'static str,
    /// The field that went past it.
    pub field: String,
    pub actual: usize,
    pub max: usize,
}

/// Why a request was refused before it reached the case rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationError {
    Invalid(Vec<FieldViolation>),
    LimitExceeded(LimitExceeded),
}

/// A field path such as `events[2].event.note_added.text`, written out only
/// when a check fails: formatting every field's path of every valid request
/// was a few percent of the server's time under load.
struct Join<'a>(&'a dyn Display, &'a str);

impl Display for Join<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// `name[i]`, written out only when needed.
struct Indexed(&'static str, usize);

impl Display for Indexed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

struct Check<'a> {
    limits: &'a Limits,
    violations: Vec<FieldViolation>,
    exceeded: Option<LimitExceeded>,
}

impl Check<'_> {
    fn fail(&mut self, field: impl Display, description: impl Into<String>) {
        self.violations
            .push(FieldViolation::new(field.to_string(), description));
    }

    fn id(&mut self, path: impl Display, v: &str) {
        if let Some(p) = id_problem(v) {
            self.fail(path, p);
        }
    }

    fn opt_id(&mut self, path: impl Display, v: &str) {
        if let Some(p) = optional_id_problem(v) {
            self.fail(path, p);
        }
    }

    fn text(&mut self, path: impl Display, v: &str, required: bool) {
        if required && v.trim().is_empty() {
            self.fail(&path, "is required");
        }
        if v.len() > self.limits.max_text_bytes && self.exceeded.is_none() {
            self.exceeded = Some(LimitExceeded {
                limit: "max_text_bytes",
                field: path.to_string(),
                actual: v.len(),
                max: self.limits.max_text_bytes,
            });
        }
    }

    fn enum_value<E: TryFrom<i32>>(&mut self, path: impl Display, v: i32, required: bool) {
        if E::try_from(v).is_err() {
            self.fail(path, format!("{v} is not a known value"));
        } else if required && v == 0 {
            self.fail(path, "is required (UNSPECIFIED is not a value)");
        }
    }

    fn timestamp(
        &mut self,
        path: impl Display,
        v: Option<&prost_types::Timestamp>,
        required: bool,
    ) {
        match v {
            None if required => self.fail(path, "is required"),
            None => {}
            Some(ts) if !crate::time::is_valid(ts) => {
                self.fail(path, "is not a valid timestamp between years 1900 and 9999")
            }
            Some(_) => {}
        }
    }

    /// A business time no later than the server's clock allows.
    fn not_ahead_of(&mut self, path: impl Display, v: Option<&prost_types::Timestamp>, now: i128) {
        let Some(ts) = v.filter(|ts| crate::time::is_valid(ts)) else {
            return;
        };
        let skew = self.limits.max_clock_skew_seconds;
        if crate::time::ts_nanos(ts) > now + i128::from(skew) * 1_000_000_000 {
            self.fail(
                path,
                format!(
                    "is {}, after the server's clock ({}) by more than the {skew} s allowed: an event records what happened, not what is planned",
                    crate::time::format_local(ts, 0),
                    crate::time::format_local(&crate::time::nanos_ts(now), 0)
                ),
            );
        }
    }

    /// A field only the server sets.
    fn server_stamped(&mut self, path: impl Display, empty: bool) {
        if !empty {
            self.fail(path, "is set by the server; leave it empty");
        }
    }

    /// The party who acted (a contact, a callback): kind and id both, and
    /// `agent_id` naming that same agent or left empty for anyone else.
    fn acting_party(&mut self, p: &dyn Display, party: Option<&pb::Party>, agent_id: &str) {
        let Some(party) = party else { return };
        self.enum_value::<pb::PartyKind>(Join(p, "party.kind"), party.kind, true);
        self.id(Join(p, "party.id"), &party.id);
        if agent_id.is_empty() {
            return;
        }
        if party.kind != pb::PartyKind::Agent as i32 {
            self.fail(
                Join(p, "agent_id"),
                "names an agent, but `party` is not one: a party who is not an agent is named in `party` only, so it never counts as an agent",
            );
        } else if party.id != agent_id {
            self.fail(
                Join(p, "agent_id"),
                format!(
                    "names agent {agent_id:?}, but `party` names agent {:?}",
                    party.id
                ),
            );
        }
    }

    /// A party required to act (a demand, a promise): a kind, an id, or
    /// both; absent for anyone.
    fn required_party(&mut self, path: impl Display, party: Option<&pb::Party>) {
        let Some(party) = party else { return };
        self.enum_value::<pb::PartyKind>(format_args!("{path}.kind"), party.kind, false);
        self.opt_id(format_args!("{path}.id"), &party.id);
        if party.kind == 0 && party.id.is_empty() {
            self.fail(
                path,
                "names neither a kind nor an id; leave it out when anyone may act",
            );
        }
    }

    fn ids(&mut self, path: impl Display, v: &[String]) {
        for (i, id) in v.iter().enumerate() {
            self.id(format_args!("{path}[{i}]"), id);
        }
    }
}

/// Checks the shape of a whole append request, received when the server's
/// clock read `now` (nanoseconds since the epoch).
pub fn validate_append(
    req: &pb::AppendRequest,
    limits: &Limits,
    now: i128,
) -> Result<(), ValidationError> {
    let size = req.encoded_len();
    if size > limits.max_request_bytes {
        return Err(ValidationError::LimitExceeded(LimitExceeded {
            limit: "max_request_bytes",
            field: "request".into(),
            actual: size,
            max: limits.max_request_bytes,
        }));
    }
    if req.events.len() > limits.max_events_per_append {
        return Err(ValidationError::LimitExceeded(LimitExceeded {
            limit: "max_events_per_append",
            field: "events".into(),
            actual: req.events.len(),
            max: limits.max_events_per_append,
        }));
    }
    let mut c = Check {
        limits,
        violations: Vec::new(),
        exceeded: None,
    };
    c.id("case_id", &req.case_id);
    if let Some(ev) = &req.expected_version {
        if ev.kind.is_none() {
            c.fail("expected_version", "set one of any, no_case or exact");
        }
    }
    if req.events.is_empty() {
        c.fail("events", "at least one event is required");
    }
    let mut seen = HashSet::new();
    for (i, e) in req.events.iter().enumerate() {
        let p = Indexed("events", i);
        c.id(format_args!("{p}.event_id"), &e.event_id);
        if !e.event_id.is_empty() && !seen.insert(e.event_id.as_str()) {
            c.fail(
                format!("{p}.event_id"),
                "is used twice in this request; event ids must be unique",
            );
        }
        c.timestamp(
            format_args!("{p}.occurred_at"),
            e.occurred_at.as_ref(),
            true,
        );
        c.not_ahead_of(format_args!("{p}.occurred_at"), e.occurred_at.as_ref(), now);
        c.opt_id(format_args!("{p}.acted_for_agent"), &e.acted_for_agent);
        c.text(format_args!("{p}.correlation_id"), &e.correlation_id, false);
        c.text(format_args!("{p}.causation_id"), &e.causation_id, false);
        for (name, v) in [
            ("correlation_id", &e.correlation_id),
            ("causation_id", &e.causation_id),
        ] {
            if v.len() > 128 {
                c.fail(format!("{p}.{name}"), "is longer than 128 bytes");
            }
        }
        match &e.event {
            None => c.fail(format!("{p}.event"), "is required"),
            Some(ev) => {
                let len = ev.encoded_len();
                if len > limits.max_event_bytes && c.exceeded.is_none() {
                    c.exceeded = Some(LimitExceeded {
                        limit: "max_event_bytes",
                        field: format!("{p}.event"),
                        actual: len,
                        max: limits.max_event_bytes,
                    });
                }
                check_event(&mut c, &Join(&p, "event"), ev, true);
            }
        }
    }
    if let Some(x) = c.exceeded {
        return Err(ValidationError::LimitExceeded(x));
    }
    if c.violations.is_empty() {
        Ok(())
    } else {
        Err(ValidationError::Invalid(c.violations))
    }
}

fn check_event(c: &mut Check<'_>, path: &dyn Display, ev: &pb::CaseEvent, top_level: bool) {
    let Some(kind) = &ev.kind else {
        c.fail(path, "names no event: set exactly one event kind");
        return;
    };
    let p = Join(path, field_name(kind));
    let p = &p;
    match kind {
        Kind::CaseOpened(e) => {
            c.id(Join(p, "customer_id"), &e.customer_id);
            c.id(Join(p, "business_line"), &e.business_line);
            c.text(Join(p, "category"), &e.category, true);
            c.text(Join(p, "summary"), &e.summary, false);
            for (i, d) in e.disputed_items.iter().enumerate() {
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
            if let Some(pd) = &e.customer {
                c.text(Join(p, "customer.name"), &pd.name, false);
                c.text(Join(p, "customer.phone"), &pd.phone, false);
                c.text(Join(p, "customer.account"), &pd.account, false);
            }
            if !(-1439..=1439).contains(&e.utc_offset_minutes) {
                c.fail(
                    Join(p, "utc_offset_minutes"),
                    "must be between -1439 and 1439",
                );
            }
        }
        Kind::ContactLogged(e) => {
            c.id(Join(p, "contact_id"), &e.contact_id);
            c.enum_value::<pb::Channel>(Join(p, "channel"), e.channel, true);
            c.enum_value::<pb::Direction>(Join(p, "direction"), e.direction, true);
            c.opt_id(Join(p, "agent_id"), &e.agent_id);
            c.acting_party(&p, e.party.as_ref(), &e.agent_id);
            c.timestamp(Join(p, "started_at"), e.started_at.as_ref(), true);
            c.enum_value::<pb::EndedBy>(Join(p, "ended_by"), e.ended_by, false);
            c.enum_value::<pb::Emotion>(Join(p, "customer_emotion"), e.customer_emotion, false);
            c.text(Join(p, "summary"), &e.summary, false);
            for (i, t) in e.threats.iter().enumerate() {
                c.enum_value::<pb::Threat>(Join(p, &format!("threats[{i}]")), *t, true);
            }
            for (i, s) in e.silences.iter().enumerate() {
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
        Kind::DemandRecorded(e) => {
            c.id(Join(p, "demand_id"), &e.demand_id);
            c.opt_id(Join(p, "contact_id"), &e.contact_id);
            c.text(Join(p, "description"), &e.description, true);
            c.enum_value::<pb::Channel>(Join(p, "required_channel"), e.required_channel, false);
            for (i, ch) in e.refused_channels.iter().enumerate() {
                c.enum_value::<pb::Channel>(Join(p, &format!("refused_channels[{i}]")), *ch, true);
                if *ch != 0 && *ch == e.required_channel {
                    c.fail(
                        Join(p, &format!("refused_channels[{i}]")),
                        "refuses the channel the demand requires",
                    );
                }
            }
            c.timestamp(Join(p, "due_by"), e.due_by.as_ref(), false);
            if let Some(w) = &e.window {
                if w.to_minute > 1440 || w.from_minute >= w.to_minute {
                    c.fail(
                        Join(p, "window"),
                        "needs 0 <= from_minute < to_minute <= 1440 (minutes of the local day)",
                    );
                }
            }
            c.required_party(Join(p, "required_party"), e.required_party.as_ref());
        }
        Kind::DemandDeclined(e) => {
            c.id(Join(p, "demand_id"), &e.demand_id);
            c.text(Join(p, "reason"), &e.reason, true);
            match &e.decided_by {
                None => c.fail(Join(p, "decided_by"), "is required: who decided"),
                Some(d) => {
                    c.enum_value::<pb::PartyKind>(Join(p, "decided_by.kind"), d.kind, true);
                    c.id(Join(p, "decided_by.id"), &d.id);
                }
            }
        }
        Kind::DemandWithdrawn(e) => {
            c.id(Join(p, "demand_id"), &e.demand_id);
            c.text(Join(p, "reason"), &e.reason, false);
            c.opt_id(Join(p, "contact_id"), &e.contact_id);
        }
        Kind::OwnerAssigned(e) => {
            match &e.owner {
                None => c.fail(Join(p, "owner"), "is required"),
                Some(o) => {
                    c.enum_value::<pb::PartyKind>(Join(p, "owner.kind"), o.kind, true);
                    c.id(Join(p, "owner.id"), &o.id);
                }
            }
            c.text(Join(p, "reason"), &e.reason, false);
        }
        Kind::WarningWithdrawn(e) => {
            c.id(Join(p, "warning_id"), &e.warning_id);
            c.text(Join(p, "reason"), &e.reason, true);
            c.opt_id(Join(p, "withdrawn_by_event_id"), &e.withdrawn_by_event_id);
        }
        Kind::PromiseMade(e) => {
            c.id(Join(p, "promise_id"), &e.promise_id);
            c.opt_id(Join(p, "contact_id"), &e.contact_id);
            c.opt_id(Join(p, "agent_id"), &e.agent_id);
            c.text(Join(p, "description"), &e.description, true);
            if e.working_days > 0 {
                if e.due_at.is_some() {
                    c.fail(
                        Join(p, "due_at"),
                        "is computed by the server from working_days and the business line's calendar; leave it empty or set working_days to 0",
                    );
                }
                if e.working_days > MAX_WORKING_DAYS {
                    c.fail(
                        Join(p, "working_days"),
                        format!("{} is more than {MAX_WORKING_DAYS}", e.working_days),
                    );
                }
            } else {
                c.timestamp(Join(p, "due_at"), e.due_at.as_ref(), true);
            }
            c.server_stamped(Join(p, "due_calendar"), e.due_calendar.is_empty());
            c.server_stamped(Join(p, "due_pending"), e.due_pending.is_empty());
            c.server_stamped(Join(p, "due_provisional"), !e.due_provisional);
            c.enum_value::<pb::Channel>(Join(p, "channel"), e.channel, false);
            c.required_party(Join(p, "required_party"), e.required_party.as_ref());
        }
        Kind::TicketSubmitted(e) => {
            c.id(Join(p, "ticket_id"), &e.ticket_id);
            c.opt_id(Join(p, "contact_id"), &e.contact_id);
            c.text(Join(p, "team"), &e.team, false);
            c.text(Join(p, "content"), &e.content, true);
            c.enum_value::<pb::Emotion>(Join(p, "customer_emotion"), e.customer_emotion, false);
            c.ids(Join(p, "demand_ids"), &e.demand_ids);
            c.enum_value::<pb::Channel>(Join(p, "contact_preference"), e.contact_preference, false);
            for (i, d) in e.disputed_items.iter().enumerate() {
                c.text(
                    Join(p, &format!("disputed_items[{i}].title")),
                    &d.title,
                    true,
                );
            }
        }
        Kind::TicketRejected(e) => {
            c.id(Join(p, "ticket_id"), &e.ticket_id);
            c.text(Join(p, "reason"), &e.reason, true);
            for (i, m) in e.missing_fields.iter().enumerate() {
                c.text(Join(p, &format!("missing_fields[{i}]")), m, true);
            }
        }
        Kind::TicketAppended(e) => {
            c.id(Join(p, "ticket_id"), &e.ticket_id);
            c.text(Join(p, "addition"), &e.addition, true);
            c.ids(Join(p, "demand_ids"), &e.demand_ids);
        }
        Kind::TicketResultGiven(e) => {
            c.id(Join(p, "ticket_id"), &e.ticket_id);
            c.text(Join(p, "result"), &e.result, true);
            c.enum_value::<pb::ResultFinality>(Join(p, "finality"), e.finality, true);
        }
        Kind::CallbackAttempted(e) => {
            c.id(Join(p, "callback_id"), &e.callback_id);
            c.enum_value::<pb::Channel>(Join(p, "channel"), e.channel, true);
            c.opt_id(Join(p, "agent_id"), &e.agent_id);
            c.acting_party(&p, e.party.as_ref(), &e.agent_id);
            c.opt_id(Join(p, "promise_id"), &e.promise_id);
            c.opt_id(Join(p, "ticket_id"), &e.ticket_id);
            if e.promise_id.is_empty() && e.ticket_id.is_empty() {
                c.fail(p, "a callback answers a promise or delivers a ticket result: set promise_id or ticket_id");
            }
        }
        Kind::CallbackCompleted(e) => {
            c.id(Join(p, "callback_id"), &e.callback_id);
            c.enum_value::<pb::Channel>(Join(p, "channel"), e.channel, true);
            c.opt_id(Join(p, "agent_id"), &e.agent_id);
            c.acting_party(&p, e.party.as_ref(), &e.agent_id);
            c.opt_id(Join(p, "promise_id"), &e.promise_id);
            c.opt_id(Join(p, "ticket_id"), &e.ticket_id);
            c.text(Join(p, "outcome"), &e.outcome, false);
            c.enum_value::<pb::CustomerResponse>(
                Join(p, "customer_response"),
                e.customer_response,
                false,
            );
            c.ids(Join(p, "demand_ids"), &e.demand_ids);
            c.opt_id(
                Join(p, "dissatisfied_contact_id"),
                &e.dissatisfied_contact_id,
            );
            if e.promise_id.is_empty()
                && e.ticket_id.is_empty()
                && e.dissatisfied_contact_id.is_empty()
            {
                c.fail(p, "a callback answers a promise, delivers a ticket result or follows up a dissatisfied contact (KF-006): set promise_id, ticket_id or dissatisfied_contact_id");
            }
        }
        Kind::DissatisfactionClassified(e) => {
            c.id(Join(p, "contact_id"), &e.contact_id);
            c.enum_value::<pb::DissatisfactionFactor>(Join(p, "factor"), e.factor, true);
        }
        Kind::SurveyDone(e) => {
            c.id(Join(p, "contact_id"), &e.contact_id);
            c.enum_value::<pb::DissatisfactionFactor>(Join(p, "factor"), e.factor, false);
            c.text(Join(p, "notes"), &e.notes, false);
        }
        Kind::Escalated(e) => {
            c.enum_value::<pb::EscalationLevel>(Join(p, "from_level"), e.from_level, true);
            c.enum_value::<pb::EscalationLevel>(Join(p, "to_level"), e.to_level, true);
            c.text(Join(p, "reason"), &e.reason, true);
            c.text(Join(p, "to_whom"), &e.to_whom, false);
            c.opt_id(Join(p, "warning_id"), &e.warning_id);
        }
        Kind::WarningRaised(e) => {
            c.id(Join(p, "warning_id"), &e.warning_id);
            c.id(Join(p, "rule"), &e.rule);
            c.text(Join(p, "reason"), &e.reason, true);
            c.enum_value::<pb::EscalationLevel>(Join(p, "required_level"), e.required_level, true);
            c.opt_id(Join(p, "triggering_event_id"), &e.triggering_event_id);
        }
        Kind::ExternalComplaintReceived(e) => {
            c.enum_value::<pb::OutsideBody>(Join(p, "body"), e.body, true);
            c.text(Join(p, "reference_number"), &e.reference_number, true);
            if e.reference_number.len() > 128 {
                c.fail(Join(p, "reference_number"), "is longer than 128 bytes");
            }
            c.text(Join(p, "summary"), &e.summary, false);
            c.timestamp(Join(p, "respond_by"), e.respond_by.as_ref(), false);
            c.timestamp(Join(p, "resolve_by"), e.resolve_by.as_ref(), false);
            c.server_stamped(Join(p, "deadline_calendar"), e.deadline_calendar.is_empty());
            c.server_stamped(Join(p, "deadline_pending"), e.deadline_pending.is_empty());
            c.server_stamped(Join(p, "deadline_provisional"), !e.deadline_provisional);
        }
        Kind::PersonalDataErased(e) => {
            c.id(Join(p, "customer_id"), &e.customer_id);
            c.text(Join(p, "reason"), &e.reason, true);
        }
        Kind::ExternalComplaintAnswered(e) => {
            c.text(Join(p, "reference_number"), &e.reference_number, true);
            c.text(Join(p, "answer"), &e.answer, true);
        }
        Kind::ViolationJudged(e) => {
            c.id(Join(p, "judgement_id"), &e.judgement_id);
            c.id(Join(p, "agent_id"), &e.agent_id);
            if !(1..=15).contains(&e.item) {
                c.fail(
                    Join(p, "item"),
                    format!("{} is not a violation item (1-15)", e.item),
                );
            }
            check_elements(c, &Join(p, "elements"), e.elements.as_ref(), &e.agent_id);
            c.timestamp(Join(p, "notified_at"), e.notified_at.as_ref(), false);
            c.server_stamped(Join(p, "contact_deadline"), e.contact_deadline.is_none());
            c.server_stamped(Join(p, "appeal_deadline"), e.appeal_deadline.is_none());
            c.server_stamped(Join(p, "deadline_calendar"), e.deadline_calendar.is_empty());
            c.server_stamped(Join(p, "deadline_pending"), e.deadline_pending.is_empty());
            c.server_stamped(Join(p, "deadline_provisional"), !e.deadline_provisional);
        }
        Kind::ViolationAppealed(e) => {
            c.id(Join(p, "judgement_id"), &e.judgement_id);
            c.text(Join(p, "reason"), &e.reason, true);
        }
        Kind::AppealDecided(e) => {
            c.id(Join(p, "judgement_id"), &e.judgement_id);
            c.text(Join(p, "reason"), &e.reason, true);
        }
        Kind::NoteAdded(e) => c.text(Join(p, "text"), &e.text, true),
        Kind::EventCorrected(e) => {
            c.id(Join(p, "corrected_event_id"), &e.corrected_event_id);
            c.text(Join(p, "reason"), &e.reason, true);
            match &e.replacement {
                Some(r) if !top_level => {
                    c.fail(Join(p, "replacement"), "a correction cannot nest another")
                }
                Some(r) => {
                    if matches!(r.kind, Some(Kind::EventCorrected(_))) {
                        c.fail(
                            Join(p, "replacement"),
                            "a correction cannot replace an event with another correction",
                        );
                    } else {
                        check_event(c, &Join(p, "replacement"), r, false);
                    }
                }
                None => {}
            }
        }
        Kind::CaseResolved(e) => c.text(Join(p, "resolution"), &e.resolution, true),
        Kind::CaseClosed(e) => c.text(Join(p, "reason"), &e.reason, false),
        Kind::CaseReopened(e) => c.text(Join(p, "reason"), &e.reason, true),
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
