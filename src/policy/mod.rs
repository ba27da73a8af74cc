//! Complaint-handling policy: working-day calendars, the deadlines computed
//! from them, and the policy file (whose early-warning rules
//! `processes::warning_rules` folds).
//!
//! - [`calendar`]: one calendar and its working-day arithmetic;
//! - [`calendars`]: the calendars a server knows;
//! - [`config`]: the policy file;
//! - [`deadlines`]: deadlines the server computes and stamps into events;
//! - [`provisional`]: the statutory holidays of years without a notice;
//!
//! The processes that append what these decide are in `crate::processes`.

pub mod calendar;
pub mod calendars;
pub mod config;
pub mod deadlines;
pub mod provisional;

use calendar::Calendar;
use calendars::Calendars;
use config::PolicyConfig;

/// The policy a server runs with: its configuration and calendars.
#[derive(Debug, Clone)]
pub struct Policy {
    pub config: PolicyConfig,
    pub calendars: Calendars,
}

impl Policy {
    /// Loads the calendars the configuration names and checks that every one
    /// it refers to exists.
    pub fn new(config: PolicyConfig) -> Result<Self, String> {
        let mut calendars = calendars::builtin();
        if let Some(dir) = &config.calendars.directory {
            calendars.load_dir(dir).map_err(|e| e.to_string())?;
        }
        for id in named_calendars(&config) {
            if calendars.get(id).is_none() {
                return Err(format!(
                    "the policy names calendar {id:?}, which is not known (known: {})",
                    calendars.ids().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(Self { config, calendars })
    }

    /// The calendar of a business line.
    pub fn calendar_for(&self, business_line: &str) -> &Calendar {
        let id = self
            .config
            .calendars
            .business_lines
            .get(business_line)
            .unwrap_or(&self.config.calendars.default);
        self.calendars
            .get(id)
            .expect("calendars named by the policy were checked at load")
    }

    /// Warnings for the calendars this policy uses whose covered years end
    /// within [`COVERAGE_NOTICE_DAYS`] of `now` (nanoseconds): from then on,
    /// deadlines running past the end are provisional, or pending past the
    /// provisional years (see [`deadlines`]), until the next year's notice
    /// is added. The server logs
    /// them at start and daily (`api::server`).
    pub fn coverage_warnings(&self, now: i128) -> Vec<String> {
        let mut ids: Vec<&String> = named_calendars(&self.config).collect();
        ids.sort();
        ids.dedup();
        let mut out = Vec::new();
        for id in ids {
            let Some(cal) = self.calendars.get(id) else {
                continue;
            };
            let Ok(today) = cal.local_date(now) else {
                continue;
            };
            let (_, last) = cal.covered_years();
            let Ok(end) = time::Date::from_calendar_date(last, time::Month::December, 31) else {
                continue;
            };
            let left = (end - today).whole_days();
            if left < COVERAGE_NOTICE_DAYS {
                let when = if left >= 0 {
                    format!("{left} days from today")
                } else {
                    format!("{} days ago", -left)
                };
                let past_it = match cal.provisional_until() {
                    Some(until) => format!(
                        "computed provisionally from the statutory holidays (up to {until}) and corrected once the notice is added"
                    ),
                    None => "recorded as pending, not computed".to_string(),
                };
                out.push(format!(
                    "calendar {} covers dates up to {end} ({when}): deadlines past it are {past_it}; add the {} holiday notice to the calendars directory",
                    cal.stamp(),
                    last + 1
                ));
            }
        }
        out
    }
}

/// The ids of the calendars a policy names: its default and its business
/// lines' (repeats included).
impl Policy {
    /// How long a warning may wait for the escalation it requires,
    /// nanoseconds (`early_warning.escalate_within_minutes`).
    pub fn escalate_within_nanos(&self) -> i128 {
        i128::from(self.config.early_warning.escalate_within_minutes) * 60_000_000_000
    }

    /// Each calendar in use (by its stamp) and the moment its coverage
    /// ends, Unix seconds: local midnight after its last covered day.
    /// Deadlines at or past it wait for the next holiday notice.
    pub fn calendar_horizons(&self) -> Vec<(String, i64)> {
        let mut ids: Vec<&String> = named_calendars(&self.config).collect();
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| self.calendars.get(id))
            .filter_map(|cal| {
                let (_, last) = cal.covered_years();
                let next =
                    time::Date::from_calendar_date(last + 1, time::Month::January, 1).ok()?;
                let offset =
                    time::UtcOffset::from_whole_seconds(cal.utc_offset_minutes() * 60).ok()?;
                Some((
                    cal.stamp(),
                    next.midnight().assume_offset(offset).unix_timestamp(),
                ))
            })
            .collect()
    }
}

fn named_calendars(config: &PolicyConfig) -> impl Iterator<Item = &String> {
    std::iter::once(&config.calendars.default).chain(config.calendars.business_lines.values())
}

/// How far ahead a calendar's end is warned of: more than the longest
/// deadline the shipped policy computes (45 working days, about ten weeks
/// with the Spring Festival), so the next notice can be added in time.
pub const COVERAGE_NOTICE_DAYS: i64 = 120;

impl Default for Policy {
    fn default() -> Self {
        Self::new(PolicyConfig::default()).expect("the shipped policy and calendars agree")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_rfc3339, ts_nanos};

    fn at(s: &str) -> i128 {
        ts_nanos(&parse_rfc3339(s).unwrap())
    }

    #[test]
    fn a_calendar_ending_within_the_notice_period_is_warned_of() {
        let policy = Policy::default();
        assert!(policy
            .coverage_warnings(at("2026-08-01T10:00:00+08:00"))
            .is_empty());
        let w = policy.coverage_warnings(at("2026-11-23T10:00:00+08:00"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("cn-mainland@2026.1")
                && w[0].contains("2026-12-31 (38 days")
                && w[0].contains("2027 holiday notice")
                && w[0].contains("provisionally from the statutory holidays (up to 2036)"),
            "{}",
            w[0]
        );
        // Past the end it is still said.
        assert!(
            policy.coverage_warnings(at("2027-01-10T10:00:00+08:00"))[0].contains("10 days ago")
        );
    }
}
