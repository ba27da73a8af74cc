//! Conversions between protobuf timestamps, the server clock and local
//! business time, in one place, so every layer agrees on what "time" means.
//!
//! Timestamps are UTC instants; a business line reads them at a fixed UTC
//! offset (UTC+8 for China) when it asks "after 17:00?" or prints a timeline.

use prost_types::Timestamp;
use time::{format_description::well_known::Rfc3339, OffsetDateTime, UtcOffset};

/// The offset business lines use unless they say otherwise: UTC+8, minutes.
pub const DEFAULT_UTC_OFFSET_MINUTES: i32 = 480;

/// A span of the server's clock in whole nanoseconds, as counters and
/// `Ops.GetStats` keep it (saturating: u64 nanoseconds last 584 years).
pub fn duration_nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds since the Unix epoch (UTC) of a protobuf timestamp.
pub fn ts_nanos(ts: &Timestamp) -> i128 {
    i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos)
}

/// A protobuf timestamp from nanoseconds since the epoch.
pub fn nanos_ts(nanos: i128) -> Timestamp {
    Timestamp {
        seconds: nanos.div_euclid(1_000_000_000) as i64,
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// The server clock, in nanoseconds since the epoch.
pub fn now_nanos() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos()
}

/// The server clock as a protobuf timestamp.
pub fn now_ts() -> Timestamp {
    nanos_ts(now_nanos())
}

/// Whether a timestamp is well-formed and within years 1900..=9999, the range
/// RFC 3339 (and so JSON and grpcurl) can print.
pub fn is_valid(ts: &Timestamp) -> bool {
    const MIN: i64 = -2_208_988_800; // 1900-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    (0..1_000_000_000).contains(&ts.nanos) && (MIN..=MAX).contains(&ts.seconds)
}

fn offset(minutes: i32) -> UtcOffset {
    UtcOffset::from_whole_seconds(minutes.clamp(-1439, 1439) * 60).unwrap_or(UtcOffset::UTC)
}

fn local(ts: &Timestamp, offset_minutes: i32) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(ts_nanos(ts))
        .ok()
        .map(|t| t.to_offset(offset(offset_minutes)))
}

/// A timestamp at a fixed UTC offset for people: `2020-12-03 01:24:30 +08:00`.
pub fn format_local(ts: &Timestamp, offset_minutes: i32) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]:[offset_minute]"
    );
    local(ts, offset_minutes)
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| format!("{}s", ts.seconds))
}

/// Minute of the local day (0..1440) of a timestamp at a fixed offset.
pub fn local_minute_of_day(ts: &Timestamp, offset_minutes: i32) -> u32 {
    local(ts, offset_minutes)
        .map(|t| u32::from(t.hour()) * 60 + u32::from(t.minute()))
        .unwrap_or(0)
}

/// Parses RFC 3339 text (`2020-12-03T01:24:30+08:00`) into a timestamp.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| nanos_ts(t.unix_timestamp_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_local_format() {
        let ts = parse_rfc3339("2020-12-03T01:24:30+08:00").unwrap();
        assert_eq!(ts.seconds, 1_606_929_870);
        assert_eq!(format_local(&ts, 480), "2020-12-03 01:24:30 +08:00");
        assert_eq!(format_local(&ts, 0), "2020-12-02 17:24:30 +00:00");
        assert_eq!(local_minute_of_day(&ts, 480), 84);
        let z = parse_rfc3339("2020-12-02T17:24:30.5Z").unwrap();
        assert_eq!((z.seconds, z.nanos), (1_606_929_870, 500_000_000));
    }

    #[test]
    fn rfc3339_rejects_malformed_text() {
        for bad in [
            "",
            "2020-12-03",
            "2020-13-03T01:00:00Z",
            "2020-12-03T01:00:00",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn timestamps_outside_printable_years_are_invalid() {
        assert!(is_valid(&Timestamp {
            seconds: 0,
            nanos: 0
        }));
        assert!(!is_valid(&Timestamp {
            seconds: 0,
            nanos: -1
        }));
        assert!(!is_valid(&Timestamp {
            seconds: i64::MAX,
            nanos: 0
        }));
    }
}
