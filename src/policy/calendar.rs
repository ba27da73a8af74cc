//! Working-day calendars: which days are worked, in which hours, and the
//! arithmetic promises and deadlines are made of ("1-2 working days, holidays
//! postponed", "end of the next working day", "working hours between").
//!
//! A calendar is a weekly pattern plus dated overrides (public holidays off,
//! make-up working days 调休 on), loaded from a TOML data file that cites its
//! source. It covers a closed range of years; asking about a date outside it
//! is an error, never a guess. Each calendar has an id and a version, and a
//! computed deadline records `id@version` next to it, so a stored deadline
//! keeps its meaning when the calendar is updated.

use serde::Deserialize;
use std::collections::HashMap;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// Why a calendar question has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar {calendar} covers {first}-{last}; {date} is outside it")]
    OutOfRange {
        calendar: String,
        first: i32,
        last: i32,
        date: String,
    },
    #[error("calendar file is invalid: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    id: String,
    version: String,
    first_year: i32,
    last_year: i32,
    utc_offset_minutes: i32,
    working_weekdays: Vec<String>,
    hours: HoursFile,
    #[serde(default)]
    provisional: Option<ProvisionalFile>,
    #[serde(default)]
    year: Vec<YearFile>,
}

/// Years after `last_year` that deadlines may reach provisionally.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisionalFile {
    /// Which statutory rules give the holidays: "cn-statutory" is the only
    /// one (see `policy::provisional`).
    rules: String,
    until_year: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursFile {
    start: String,
    end: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    sources: Vec<String>,
    #[serde(default)]
    holiday: Vec<HolidayFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayFile {
    name: String,
    off: Vec<String>,
    #[serde(default)]
    makeup_workdays: Vec<String>,
}

/// One loaded calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    id: String,
    version: String,
    first_year: i32,
    last_year: i32,
    offset: UtcOffset,
    weekdays: [bool; 7],
    start: Time,
    end: Time,
    /// Dated exceptions to the weekly pattern: `true` = worked.
    overrides: HashMap<Date, bool>,
    /// Holiday names by date, for people.
    names: HashMap<Date, String>,
    /// The last year deadlines may reach, provisionally past `last_year`.
    provisional_until: i32,
    /// Days off of the provisional years, from the statutory rules.
    provisional_off: HashMap<Date, &'static str>,
}

/// One date as a calendar has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarDay {
    pub working: bool,
    /// A day of the weekly rest pattern (worked or not).
    pub weekend: bool,
    /// A weekly rest day worked by the notice (调休).
    pub makeup: bool,
    /// The holiday of a day off, if one is named.
    pub holiday: Option<String>,
    /// From the statutory rules, not yet from a notice.
    pub provisional: bool,
}

/// A deadline computed from a calendar: when, and whether it reached into a
/// provisional year (one without an official notice yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: i128,
    pub provisional: bool,
}

/// A `YYYY-MM-DD` date, as calendar files (and the console) write them.
pub fn parse_date(s: &str) -> Result<Date, CalendarError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).map_err(|e| CalendarError::Invalid(format!("date {s:?}: {e}")))
}

fn parse_time(s: &str) -> Result<Time, CalendarError> {
    let fmt = time::macros::format_description!("[hour]:[minute]");
    Time::parse(s, &fmt).map_err(|e| CalendarError::Invalid(format!("time {s:?}: {e}")))
}

fn weekday_index(d: Weekday) -> usize {
    d.number_days_from_monday() as usize
}

impl Calendar {
    /// Parses a calendar data file.
    pub fn from_toml(text: &str) -> Result<Self, CalendarError> {
        let f: CalendarFile =
            toml::from_str(text).map_err(|e| CalendarError::Invalid(e.to_string()))?;
        if f.id.is_empty() || f.version.is_empty() {
            return Err(CalendarError::Invalid("id and version are required".into()));
        }
        if f.first_year > f.last_year {
            return Err(CalendarError::Invalid(
                "first_year is after last_year".into(),
            ));
        }
        let mut weekdays = [false; 7];
        for w in &f.working_weekdays {
            let i = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .position(|x| x == w)
                .ok_or_else(|| CalendarError::Invalid(format!("unknown weekday {w:?}")))?;
            weekdays[i] = true;
        }
        let (start, end) = (parse_time(&f.hours.start)?, parse_time(&f.hours.end)?);
        if start >= end {
            return Err(CalendarError::Invalid(
                "working hours must start before they end".into(),
            ));
        }
        let offset = UtcOffset::from_whole_seconds(f.utc_offset_minutes * 60)
            .map_err(|e| CalendarError::Invalid(format!("utc_offset_minutes: {e}")))?;
        let mut cal = Calendar {
            id: f.id,
            version: f.version,
            first_year: f.first_year,
            last_year: f.last_year,
            offset,
            weekdays,
            start,
            end,
            overrides: HashMap::new(),
            names: HashMap::new(),
            provisional_until: f.last_year,
            provisional_off: HashMap::new(),
        };
        if let Some(p) = &f.provisional {
            if p.rules != "cn-statutory" {
                return Err(CalendarError::Invalid(format!(
                    "provisional rules {:?} are unknown; \"cn-statutory\" is the one there is",
                    p.rules
                )));
            }
            if p.until_year <= f.last_year || p.until_year > f.last_year + 20 {
                return Err(CalendarError::Invalid(
                    "provisional.until_year must be after last_year and at most 20 years after it"
                        .into(),
                ));
            }
            cal.provisional_until = p.until_year;
            for year in f.last_year + 1..=p.until_year {
                for (d, name) in super::provisional::statutory_holidays(year) {
                    cal.provisional_off.insert(d, name);
                }
            }
        }
        for y in &f.year {
            if y.sources.is_empty() {
                return Err(CalendarError::Invalid(format!(
                    "year {} cites no source",
                    y.year
                )));
            }
            for h in &y.holiday {
                for (days, worked) in [(&h.off, false), (&h.makeup_workdays, true)] {
                    for d in days {
                        let date = parse_date(d)?;
                        // A notice may reach into the year before (New Year's
                        // Day holidays that start on December 31st).
                        if !(y.year - 1..=y.year).contains(&date.year()) {
                            return Err(CalendarError::Invalid(format!(
                                "{d} is listed under year {}",
                                y.year
                            )));
                        }
                        if cal.overrides.insert(date, worked).is_some() {
                            return Err(CalendarError::Invalid(format!("{d} is listed twice")));
                        }
                        cal.names.insert(date, h.name.clone());
                    }
                }
            }
        }
        for year in cal.first_year..=cal.last_year {
            if !f.year.iter().any(|y| y.year == year) {
                return Err(CalendarError::Invalid(format!(
                    "year {year} is in the covered range but has no entry"
                )));
            }
        }
        Ok(cal)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// `id@version`, recorded beside every deadline computed with it.
    pub fn stamp(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    pub fn covered_years(&self) -> (i32, i32) {
        (self.first_year, self.last_year)
    }

    pub fn utc_offset_minutes(&self) -> i32 {
        self.offset.whole_seconds() / 60
    }

    fn covers(&self, d: Date) -> Result<(), CalendarError> {
        self.covers_as(d, false)
    }

    /// Whether `d` is covered: by the official years, or with `provisional`
    /// also by the provisional ones.
    fn covers_as(&self, d: Date, provisional: bool) -> Result<(), CalendarError> {
        let last = if provisional {
            self.provisional_until
        } else {
            self.last_year
        };
        if (self.first_year..=last).contains(&d.year()) {
            Ok(())
        } else {
            Err(CalendarError::OutOfRange {
                calendar: self.stamp(),
                first: self.first_year,
                last: self.last_year,
                date: d.to_string(),
            })
        }
    }

    /// Whether `d` is a working day.
    pub fn is_working_day(&self, d: Date) -> Result<bool, CalendarError> {
        self.is_working_day_as(d, false)
    }

    /// Whether `d` is a working day, by the provisional holidays in a
    /// provisional year when `provisional`.
    fn is_working_day_as(&self, d: Date, provisional: bool) -> Result<bool, CalendarError> {
        self.covers_as(d, provisional)?;
        if d.year() > self.last_year {
            return Ok(
                !self.provisional_off.contains_key(&d) && self.weekdays[weekday_index(d.weekday())]
            );
        }
        Ok(self
            .overrides
            .get(&d)
            .copied()
            .unwrap_or(self.weekdays[weekday_index(d.weekday())]))
    }

    /// The last year deadlines may reach provisionally, if the calendar
    /// has provisional years.
    pub fn provisional_until(&self) -> Option<i32> {
        (self.provisional_until > self.last_year).then_some(self.provisional_until)
    }

    /// Whether `year` is provisional: past the official notices, within
    /// the years the statutory rules are used for.
    pub fn is_provisional_year(&self, year: i32) -> bool {
        year > self.last_year && year <= self.provisional_until
    }

    /// How a date stands in this calendar, for people drawing it (the
    /// console shades a case's time axis with it): `None` outside the
    /// official and provisional years.
    pub fn day(&self, d: Date) -> Option<CalendarDay> {
        let provisional = self.is_provisional_year(d.year());
        let working = self.is_working_day_as(d, provisional).ok()?;
        let weekend = !self.weekdays[weekday_index(d.weekday())];
        let holiday = if provisional {
            self.provisional_off.get(&d).map(|n| n.to_string())
        } else {
            self.names.get(&d).cloned()
        };
        Some(CalendarDay {
            working,
            weekend,
            // A day of the weekly rest worked by the notice: 调休.
            makeup: working && weekend,
            holiday: holiday.filter(|_| !working),
            provisional,
        })
    }

    /// The holiday a date belongs to, if the notices name one.
    pub fn holiday_name(&self, d: Date) -> Option<&str> {
        self.names.get(&d).map(String::as_str)
    }

    /// The local date of an instant (nanoseconds since the epoch).
    pub fn local_date(&self, at: i128) -> Result<Date, CalendarError> {
        OffsetDateTime::from_unix_timestamp_nanos(at)
            .map(|t| t.to_offset(self.offset).date())
            .map_err(|e| CalendarError::Invalid(format!("instant out of range: {e}")))
    }

    fn instant(&self, d: Date, t: Time) -> i128 {
        PrimitiveDateTime::new(d, t)
            .assume_offset(self.offset)
            .unix_timestamp_nanos()
    }

    fn next_day(&self, d: Date) -> Result<Date, CalendarError> {
        self.next_day_as(d, false)
    }

    fn next_day_as(&self, d: Date, provisional: bool) -> Result<Date, CalendarError> {
        let n = d.next_day().ok_or_else(|| CalendarError::OutOfRange {
            calendar: self.stamp(),
            first: self.first_year,
            last: self.last_year,
            date: d.to_string(),
        })?;
        self.covers_as(n, provisional)?;
        Ok(n)
    }

    /// The `n`-th working day after the local day of `from` (the day itself
    /// never counts: "1-2 working days" said on a Thursday ends on Monday at
    /// the latest). `n` must be at least 1.
    pub fn nth_working_day_after(&self, from: i128, n: u32) -> Result<Date, CalendarError> {
        self.nth_working_day_after_as(from, n, false)
    }

    fn nth_working_day_after_as(
        &self,
        from: i128,
        n: u32,
        provisional: bool,
    ) -> Result<Date, CalendarError> {
        let mut d = self.local_date(from)?;
        self.covers(d)?;
        let mut left = n.max(1);
        loop {
            d = self.next_day_as(d, provisional)?;
            if self.is_working_day_as(d, provisional)? {
                left -= 1;
                if left == 0 {
                    return Ok(d);
                }
            }
        }
    }

    /// "Within `n` working days, holidays postponed": the close of business
    /// (end of working hours) of the `n`-th working day after `from`.
    pub fn add_working_days(&self, from: i128, n: u32) -> Result<i128, CalendarError> {
        Ok(self.instant(self.nth_working_day_after(from, n)?, self.end))
    }

    /// A deadline "within `n` working days": as [`Self::add_working_days`],
    /// reaching into the provisional years when the official ones end
    /// first, and saying so. Only deadlines use provisional years; working
    /// times measured (`working_duration`) never do.
    pub fn deadline(&self, from: i128, n: u32) -> Result<Deadline, CalendarError> {
        let d = self.nth_working_day_after_as(from, n, true)?;
        Ok(Deadline {
            at: self.instant(d, self.end),
            provisional: d.year() > self.last_year,
        })
    }

    /// "By the end of the next working day".
    pub fn end_of_next_working_day(&self, from: i128) -> Result<i128, CalendarError> {
        self.add_working_days(from, 1)
    }

    /// Working time (nanoseconds) between two instants: the part of
    /// `[from, to)` inside working hours of working days.
    pub fn working_duration(&self, from: i128, to: i128) -> Result<i128, CalendarError> {
        if to <= from {
            return Ok(0);
        }
        let (first, last) = (self.local_date(from)?, self.local_date(to)?);
        self.covers(first)?;
        self.covers(last)?;
        let mut total = 0;
        let mut d = first;
        loop {
            if self.is_working_day(d)? {
                let open = self.instant(d, self.start).max(from);
                let close = self.instant(d, self.end).min(to);
                total += (close - open).max(0);
            }
            if d == last {
                return Ok(total);
            }
            d = self.next_day(d)?;
        }
    }

    /// Length of one working day.
    pub fn working_day_length(&self) -> Duration {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::calendars::builtin;
    use time::macros::date;

    fn cn() -> Calendar {
        builtin().get("cn-mainland").unwrap().clone()
    }

    fn at(s: &str) -> i128 {
        crate::time::ts_nanos(&crate::time::parse_rfc3339(s).unwrap())
    }

    fn local(c: &Calendar, n: i128) -> String {
        crate::time::format_local(&crate::time::nanos_ts(n), c.utc_offset_minutes())
    }

    #[test]
    fn seed_000_promise_made_thursday_night_is_due_monday() {
        // 2020-12-03 is a Thursday: "1-2 working days" skips the weekend.
        let c = cn();
        let due = c
            .add_working_days(at("2020-12-03T01:51:29+08:00"), 2)
            .unwrap();
        assert_eq!(local(&c, due), "2020-12-07 18:00:00 +08:00");
        let next = c.end_of_next_working_day(at("2020-12-03T01:51:29+08:00"));
        assert_eq!(local(&c, next.unwrap()), "2020-12-04 18:00:00 +08:00");
    }

    #[test]
    fn golden_week_is_postponed_and_makeup_saturdays_count() {
        let c = cn();
        // 2020: National Day + Mid-Autumn 10-01..10-08 off; Sun 09-27 and
        // Sat 10-10 are make-up working days.
        assert!(c.is_working_day(date!(2020 - 09 - 27)).unwrap());
        assert!(c.is_working_day(date!(2020 - 10 - 10)).unwrap());
        assert!(!c.is_working_day(date!(2020 - 10 - 08)).unwrap());
        assert_eq!(
            c.holiday_name(date!(2020 - 10 - 05)),
            Some("国庆节、中秋节")
        );
        // A promise on Wed 09-30: day 1 is Fri 10-09, day 2 the make-up Sat 10-10.
        let due = c
            .add_working_days(at("2020-09-30T10:00:00+08:00"), 1)
            .unwrap();
        assert_eq!(local(&c, due), "2020-10-09 18:00:00 +08:00");
        let due = c
            .add_working_days(at("2020-09-30T10:00:00+08:00"), 2)
            .unwrap();
        assert_eq!(local(&c, due), "2020-10-10 18:00:00 +08:00");
        // 2025 Golden Week 10-01..10-08; make-up Sun 09-28 and Sat 10-11.
        let due = c
            .add_working_days(at("2025-09-27T12:00:00+08:00"), 1)
            .unwrap();
        assert_eq!(local(&c, due), "2025-09-28 18:00:00 +08:00");
        let due = c
            .add_working_days(at("2025-09-30T12:00:00+08:00"), 2)
            .unwrap();
        assert_eq!(local(&c, due), "2025-10-10 18:00:00 +08:00");
        // Spring Festival 2021 (02-11..02-17 off; Sun 02-07, Sat 02-20 worked).
        assert!(c.is_working_day(date!(2021 - 02 - 07)).unwrap());
        assert!(c.is_working_day(date!(2021 - 02 - 20)).unwrap());
        let due = c
            .add_working_days(at("2021-02-10T20:00:00+08:00"), 3)
            .unwrap();
        assert_eq!(local(&c, due), "2021-02-20 18:00:00 +08:00");
    }

    #[test]
    fn working_hours_between_instants() {
        let c = cn();
        let h = 3_600_000_000_000i128;
        // Thu 01:51 -> Mon 12:00: Thu 9h + Fri 9h + Mon 3h.
        let d = c
            .working_duration(
                at("2020-12-03T01:51:29+08:00"),
                at("2020-12-07T12:00:00+08:00"),
            )
            .unwrap();
        assert_eq!(d, 21 * h);
        // Within one working day, and across a holiday.
        let d = c
            .working_duration(
                at("2020-09-30T17:00:00+08:00"),
                at("2020-10-09T10:30:00+08:00"),
            )
            .unwrap();
        assert_eq!(d, h + 3 * h / 2);
        assert_eq!(c.working_duration(10, 5).unwrap(), 0);
    }

    #[test]
    fn dates_outside_the_covered_years_are_errors() {
        let c = cn();
        let e = c.is_working_day(date!(2019 - 12 - 31)).unwrap_err();
        assert!(matches!(e, CalendarError::OutOfRange { .. }), "{e}");
        // Counting past the last covered day fails rather than guessing.
        let e = c
            .add_working_days(at("2026-12-30T10:00:00+08:00"), 5)
            .unwrap_err();
        assert!(e.to_string().contains("2027-01-01"), "{e}");
        assert!(e.to_string().contains("cn-mainland@"), "{e}");
    }

    #[test]
    fn deadlines_past_the_notices_are_provisional_and_say_so() {
        let c = cn();
        // Within the official years: not provisional.
        let d = c.deadline(at("2026-11-20T10:00:00+08:00"), 5).unwrap();
        assert!(!d.provisional);
        assert_eq!(
            d.at,
            c.add_working_days(at("2026-11-20T10:00:00+08:00"), 5)
                .unwrap()
        );
        // 45 working days from a letter of 2026-11-20 reach into 2027,
        // over New Year's Day (a Friday in 2027): provisional.
        let d = c.deadline(at("2026-11-20T10:00:00+08:00"), 45).unwrap();
        assert!(d.provisional);
        assert_eq!(local(&c, d.at), "2027-01-25 18:00:00 +08:00");
        // Past the provisional years, still an error.
        let e = c
            .deadline(at("2026-12-30T10:00:00+08:00"), 60 * 200)
            .unwrap_err();
        assert!(matches!(e, CalendarError::OutOfRange { .. }), "{e}");
        // Working times never use provisional years.
        assert!(c
            .working_duration(
                at("2026-12-30T10:00:00+08:00"),
                at("2027-01-05T10:00:00+08:00")
            )
            .is_err());
    }

    /// The statutory rules against the official notices of 2020-2026: the
    /// days each year where a provisional calendar would have been wrong
    /// (a working day off, or a day off worked), printed per year. The
    /// statutory days themselves are always off in the notices; the rest
    /// is what only a notice decides (bridging days, 调休).
    #[test]
    fn provisional_rules_against_the_official_years() {
        let c = cn();
        let mut total = 0;
        for year in 2020..=2026 {
            let statutory: HashMap<Date, &str> =
                super::super::provisional::statutory_holidays(year)
                    .into_iter()
                    .collect();
            let (mut wrongly_worked, mut wrongly_off) = (Vec::new(), Vec::new());
            let mut d = Date::from_calendar_date(year, time::Month::January, 1).unwrap();
            while d.year() == year {
                let official = c.is_working_day(d).unwrap();
                let provisional =
                    !statutory.contains_key(&d) && c.weekdays[weekday_index(d.weekday())];
                match (official, provisional) {
                    (false, true) => wrongly_worked.push(d),
                    (true, false) => wrongly_off.push(d),
                    _ => {}
                }
                d = d.next_day().unwrap();
            }
            let differs = wrongly_worked.len() + wrongly_off.len();
            total += differs;
            println!(
                "{year}: {differs} days differ — {} off officially but worked provisionally, {} worked officially (调休) but off provisionally",
                wrongly_worked.len(),
                wrongly_off.len()
            );
            // Every statutory holiday that is not a made-up day is off in
            // the notice of its year.
            for (day, name) in &statutory {
                let made_up = !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
                    && wrongly_off.contains(day);
                assert!(
                    made_up || !c.is_working_day(*day).unwrap() || wrongly_off.contains(day),
                    "{year}: statutory {name} on {day} is a working day in the notice"
                );
            }
            // A notice moves at most a few weeks' worth of days.
            assert!(differs <= 20, "{year}: {differs} days differ");
        }
        println!("2020-2026: {total} days differ in all");
    }

    #[test]
    fn invalid_files_are_refused() {
        for bad in [
            "id = \"x\"",
            "id = \"x\"\nversion = \"1\"\nfirst_year = 2020\nlast_year = 2020\nutc_offset_minutes = 0\nworking_weekdays = [\"mon\"]\nhours = { start = \"09:00\", end = \"18:00\" }\n",
            "id = \"x\"\nversion = \"1\"\nfirst_year = 2020\nlast_year = 2020\nutc_offset_minutes = 0\nworking_weekdays = [\"monday\"]\nhours = { start = \"09:00\", end = \"18:00\" }\n[[year]]\nyear = 2020\nsources = [\"s\"]\n",
            "id = \"x\"\nversion = \"1\"\nfirst_year = 2020\nlast_year = 2020\nutc_offset_minutes = 0\nworking_weekdays = [\"mon\"]\nhours = { start = \"18:00\", end = \"09:00\" }\n[[year]]\nyear = 2020\nsources = [\"s\"]\n",
            "id = \"x\"\nversion = \"1\"\nfirst_year = 2020\nlast_year = 2020\nutc_offset_minutes = 0\nworking_weekdays = [\"mon\"]\nhours = { start = \"09:00\", end = \"18:00\" }\n[[year]]\nyear = 2020\nsources = [\"s\"]\n[[year.holiday]]\nname = \"h\"\noff = [\"2022-01-01\"]\n",
        ] {
            assert!(Calendar::from_toml(bad).is_err(), "{bad}");
        }
    }
}
