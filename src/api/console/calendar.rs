//! The days a case's time axis is shaded with: each date of a range as the
//! business line's calendar has it (working, weekend, holiday, 调休 make-up
//! working day, provisional), with the calendar's stamp and UTC offset so
//! the page draws local days where the deadlines count them.

use super::rpc::Refusal;
use crate::api::status::invalid_field;
use crate::policy::calendar::parse_date;
use crate::policy::Policy;
use serde_json::{json, Value};
use time::Date;

/// The longest range one request may ask for.
pub const MAX_DAYS: i64 = 400;

#[derive(Debug, serde::Deserialize)]
pub struct DaysQuery {
    /// The business line whose calendar counts.
    #[serde(default)]
    pub line: String,
    /// First and last local date, `YYYY-MM-DD`.
    pub from: String,
    pub to: String,
}

fn date(field: &str, s: &str) -> Result<Date, Refusal> {
    parse_date(s).map_err(|e| {
        Refusal(invalid_field(
            field,
            format!("is not a YYYY-MM-DD date: {e}"),
        ))
    })
}

/// The days from `q.from` to `q.to` inclusive.
pub fn days(policy: &Policy, q: &DaysQuery) -> Result<Value, Refusal> {
    let (from, to) = (date("from", &q.from)?, date("to", &q.to)?);
    if to < from {
        return Err(Refusal(invalid_field("to", "is before from")));
    }
    if (to - from).whole_days() >= MAX_DAYS {
        return Err(Refusal(invalid_field(
            "to",
            format!("the range is longer than {MAX_DAYS} days"),
        )));
    }
    let cal = policy.calendar_for(&q.line);
    let mut days = Vec::new();
    let mut d = from;
    loop {
        let mut day = json!({"date": d.to_string()});
        match cal.day(d) {
            Some(c) => {
                day["working"] = json!(c.working);
                day["weekend"] = json!(c.weekend);
                day["makeup"] = json!(c.makeup);
                day["provisional"] = json!(c.provisional);
                if let Some(h) = c.holiday {
                    day["holiday"] = json!(h);
                }
            }
            None => day["uncovered"] = json!(true),
        }
        days.push(day);
        if d >= to {
            break;
        }
        d = d.next_day().expect("dates below the year 9999");
    }
    Ok(json!({
        "calendar": cal.stamp(),
        "utcOffsetMinutes": cal.utc_offset_minutes(),
        "days": days,
    }))
}
