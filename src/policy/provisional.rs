//! Provisional holidays of mainland China for a year whose official notice
//! (国务院办公厅关于部分节假日安排的通知) is not published yet, from the
//! statutory rules alone: 《全国年节及纪念日放假办法》 (State Council; the
//! 2024 revision, in force from 2025, and the 2013 one before it).
//!
//! Why: a 45-working-day deadline set in November, or a 25-working-day
//! promise, reaches into next year. Leaving it without a due time for weeks
//! (until someone adds the notice) hides exactly the deadlines that matter.
//! A provisional due time is better than none, as long as everyone can see
//! it is provisional: deadlines computed with these days are stamped so,
//! and corrected once the official notice is loaded.
//!
//! What the rules give, per year:
//! - 元旦 January 1st; 劳动节 May 1st (and 2nd from 2025); 国庆节 October
//!   1st-3rd;
//! - 春节 the first three days of the first lunar month (from 2025 also
//!   New Year's Eve, 除夕), 清明节 the day of the Qingming solar term,
//!   端午节 the 5th of the 5th lunar month and 中秋节 the 15th of the 8th,
//!   from the Chinese calendar as the `tyme4rs` crate computes it;
//! - Article 6: a holiday for all citizens that falls on a Saturday or a
//!   Sunday is made up on the next working day (补假).
//!
//! What they cannot give: the make-up working days (调休) and the bridging
//! days a notice adds each year. The official notice decides those; the
//! comparison test prints how far each year's rules are from it.

use std::collections::BTreeSet;
use time::{Date, Month, Weekday};
use tyme4rs::tyme::lunar::LunarDay;
use tyme4rs::tyme::solar::{SolarDay, SolarTerm};

/// The days off the statutory rules give in `year`, named, weekends made up
/// on the next weekday (Article 6).
pub fn statutory_holidays(year: i32) -> Vec<(Date, &'static str)> {
    let mut days: Vec<(Date, &'static str)> = Vec::new();
    let ymd = |m: Month, d: u8| Date::from_calendar_date(year, m, d).ok();
    let revised = year >= 2025;
    let mut add = |d: Option<Date>, name: &'static str| {
        if let Some(d) = d {
            days.push((d, name));
        }
    };
    add(ymd(Month::January, 1), "元旦");
    let new_year = lunar(year, 1, 1);
    if revised {
        add(new_year.and_then(|d| d.previous_day()), "春节");
    }
    for i in 0..3 {
        add(
            new_year.and_then(|d| d.checked_add(time::Duration::days(i))),
            "春节",
        );
    }
    add(qingming(year), "清明节");
    add(ymd(Month::May, 1), "劳动节");
    if revised {
        add(ymd(Month::May, 2), "劳动节");
    }
    add(lunar(year, 5, 5), "端午节");
    add(lunar(year, 8, 15), "中秋节");
    for d in 1..=3 {
        add(ymd(Month::October, d), "国庆节");
    }
    // Article 6: each holiday day on a weekend is made up on the first
    // weekday after it that is not already off.
    let mut taken: BTreeSet<Date> = days.iter().map(|(d, _)| *d).collect();
    let weekend = |d: Date| matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
    let mut made_up = Vec::new();
    for (d, name) in days.iter().filter(|(d, _)| weekend(*d)) {
        let mut m = *d;
        while let Some(next) = m.next_day() {
            m = next;
            if !weekend(m) && !taken.contains(&m) {
                taken.insert(m);
                made_up.push((m, *name));
                break;
            }
        }
    }
    days.extend(made_up);
    days.sort();
    days.dedup_by_key(|(d, _)| *d);
    days
}

/// The Gregorian date of a day of the Chinese calendar in lunar `year`.
fn lunar(year: i32, month: isize, day: usize) -> Option<Date> {
    let s = LunarDay::new(year as isize, month, day)
        .ok()?
        .get_solar_day();
    gregorian(&s)
}

/// The day of the Qingming solar term in `year`.
fn qingming(year: i32) -> Option<Date> {
    let s = SolarTerm::from_name(year as isize, "清明")
        .get_julian_day()
        .get_solar_day();
    gregorian(&s)
}

fn gregorian(s: &SolarDay) -> Option<Date> {
    let month = Month::try_from(u8::try_from(s.get_month()).ok()?).ok()?;
    let year = i32::try_from(s.get_solar_month().get_year()).ok()?;
    Date::from_calendar_date(year, month, u8::try_from(s.get_day()).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn dates(year: i32) -> Vec<Date> {
        statutory_holidays(year)
            .into_iter()
            .map(|(d, _)| d)
            .collect()
    }

    #[test]
    fn the_2027_rules_from_the_chinese_calendar() {
        let d = dates(2027);
        // Spring Festival 2027 is February 6th (eve the 5th); Qingming
        // April 5th; Dragon Boat June 9th; Mid-Autumn September 15th.
        for x in [
            date!(2027 - 01 - 01),
            date!(2027 - 02 - 05),
            date!(2027 - 02 - 06),
            date!(2027 - 02 - 07),
            date!(2027 - 02 - 08),
            date!(2027 - 04 - 05),
            date!(2027 - 05 - 01),
            date!(2027 - 05 - 02),
            date!(2027 - 06 - 09),
            date!(2027 - 09 - 15),
            date!(2027 - 10 - 01),
            date!(2027 - 10 - 02),
            date!(2027 - 10 - 03),
        ] {
            assert!(d.contains(&x), "{x} missing from {d:?}");
        }
        // 2027-02-06 and 02-07 are a Saturday and a Sunday: made up on
        // Tuesday the 9th and Wednesday the 10th (Monday the 8th is 初三).
        assert!(d.contains(&date!(2027 - 02 - 09)) && d.contains(&date!(2027 - 02 - 10)));
    }

    #[test]
    fn before_2025_spring_festival_is_three_days_and_labour_day_one() {
        let d = dates(2024);
        assert!(
            !d.contains(&date!(2024 - 02 - 09)),
            "eve is not a holiday before 2025"
        );
        assert!(d.contains(&date!(2024 - 02 - 10)));
        assert!(!d.contains(&date!(2024 - 05 - 02)));
    }
}
