//! The local week a contact belongs to: KF-006 works in weeks (Monday to
//! Sunday, in the case's local time), and both the board (which indexes
//! dissatisfied contacts by week) and the queues need the same reading.

use crate::time::ts_nanos;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

/// Parses a `YYYY-MM-DD` local date.
pub fn parse_date(s: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).ok()
}

/// The Monday of `d`'s week.
pub fn monday_of(d: Date) -> Date {
    d - Duration::days(i64::from(d.weekday().number_days_from_monday()))
}

fn local_date(ts: &prost_types::Timestamp, offset_minutes: i32) -> Option<Date> {
    let off = UtcOffset::from_whole_seconds(offset_minutes * 60).ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(ts_nanos(ts))
        .ok()
        .map(|t| t.to_offset(off).date())
}

/// The Monday of the local week of a contact started at `started`, in a
/// case at `offset_minutes` from UTC: the week a dissatisfied contact
/// belongs to.
pub fn week_of_contact(started: &prost_types::Timestamp, offset_minutes: i32) -> Option<Date> {
    local_date(started, offset_minutes).map(monday_of)
}
