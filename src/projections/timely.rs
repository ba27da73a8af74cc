//! The six timely duties (六及时: respond, accept, save the ticket, track,
//! resolve, call back) of one case, each measured as an interval between
//! two of its events (business times), in wall-clock time and in working
//! time by the case's calendar. Definitions are in `cases.proto`
//! (`TimelyDuty`); a clock starts when its first event exists and runs until
//! its ending event, or until the evaluation time.

use crate::policy::calendar::Calendar;
use crate::proto::v1::{self as pb, case_event::Kind, RecordedEvent, TimelyDuty};
use crate::time::{nanos_ts, ts_nanos};
use std::collections::HashMap;

#[derive(Default, Clone)]
struct Clock {
    start: Option<(i128, String)>,
    end: Option<(i128, String)>,
}

impl Clock {
    fn start(&mut self, at: i128, id: &str) {
        if self.start.is_none() {
            self.start = Some((at, id.to_string()));
        }
    }
    fn end(&mut self, at: i128, id: &str) {
        if self.start.is_some() && self.end.is_none() {
            self.end = Some((at, id.to_string()));
        }
    }
}

fn duration(nanos: i128) -> prost_types::Duration {
    let n = nanos.max(0);
    prost_types::Duration {
        seconds: (n / 1_000_000_000) as i64,
        nanos: (n % 1_000_000_000) as i32,
    }
}

/// The duty clocks of a case's events (in version order), as of `now`.
/// They are read in business-time order (`occurred_at`; recording order
/// among equal times): a call logged late still ended the clock it ended
/// when it happened.
pub fn duty_clocks(events: &[RecordedEvent], now: i128, calendar: &Calendar) -> Vec<pb::DutyClock> {
    let occurred = |e: &RecordedEvent| e.occurred_at.as_ref().map(ts_nanos).unwrap_or(0);
    let mut in_time: Vec<&RecordedEvent> = events.iter().collect();
    in_time.sort_by_key(|e| occurred(e));
    let mut respond = Clock::default();
    let mut accept = Clock::default();
    let mut save = Clock::default();
    let mut track = Clock::default();
    let mut resolve = Clock::default();
    let mut call_back = Clock::default();
    // Ticket stage: last submission/append event of each ticket, rejected?
    let mut tickets: HashMap<String, (i128, String, bool)> = HashMap::new();
    // Saving is about the case's first ticket (see `TimelyDuty`).
    let mut first_ticket: Option<String> = None;
    for e in in_time {
        let Some(kind) = e.event.as_ref().and_then(|x| x.kind.as_ref()) else {
            continue;
        };
        let at = occurred(e);
        let id = e.event_id.as_str();
        match kind {
            Kind::CaseOpened(_) => {
                accept.start(at, id);
                resolve.start(at, id);
            }
            Kind::ContactLogged(c) => {
                if c.direction == pb::Direction::Outbound as i32 {
                    respond.end(at, id);
                } else {
                    respond.start(at, id);
                }
            }
            Kind::CallbackAttempted(_) => respond.end(at, id),
            Kind::CallbackCompleted(c) => {
                respond.end(at, id);
                if c.reached {
                    call_back.end(at, id);
                }
            }
            Kind::TicketSubmitted(t) => {
                accept.end(at, id);
                save.start(at, id);
                track.start(at, id);
                first_ticket.get_or_insert_with(|| t.ticket_id.clone());
                tickets.insert(t.ticket_id.clone(), (at, id.to_string(), false));
            }
            Kind::TicketAppended(t) => {
                tickets.insert(t.ticket_id.clone(), (at, id.to_string(), false));
            }
            Kind::TicketRejected(t) => {
                if let Some(s) = tickets.get_mut(&t.ticket_id) {
                    s.2 = true;
                }
            }
            Kind::TicketResultGiven(_) => {
                track.end(at, id);
                call_back.start(at, id);
            }
            Kind::CaseResolved(_) => resolve.end(at, id),
            _ => {}
        }
    }
    // The first ticket's record is complete at its latest submission or
    // append, unless it stands rejected (then the clock runs). Other
    // tickets, submitted or rejected later, are other work: they neither
    // move nor restart this clock.
    if let Some((at, id, rejected)) = first_ticket.as_ref().and_then(|t| tickets.get(t)) {
        if !rejected {
            save.end = Some((*at, id.clone()));
        }
    }
    [
        (TimelyDuty::Respond, respond),
        (TimelyDuty::Accept, accept),
        (TimelyDuty::SaveTicket, save),
        (TimelyDuty::Track, track),
        (TimelyDuty::Resolve, resolve),
        (TimelyDuty::CallBack, call_back),
    ]
    .into_iter()
    .filter_map(|(duty, c)| {
        let (start, start_id) = c.start?;
        let until = c.end.as_ref().map(|e| e.0).unwrap_or(now);
        Some(pb::DutyClock {
            duty: duty as i32,
            started_at: Some(nanos_ts(start)),
            started_by_event_id: start_id,
            ended_at: c.end.as_ref().map(|e| nanos_ts(e.0)),
            ended_by_event_id: c.end.map(|e| e.1).unwrap_or_default(),
            elapsed: Some(duration(until - start)),
            working_time: calendar.working_duration(start, until).ok().map(duration),
        })
    })
    .collect()
}
