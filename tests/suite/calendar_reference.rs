//! The shipped working-day calendar against the reference data set of
//! China's official holiday notices (`../shared/reference/holiday-cn`, from
//! the State Council notices 2020-2026): every listed day agrees, and every
//! other day of the covered years follows the weekly pattern.

use complaint_ledger::policy::calendars::builtin;
use std::collections::HashMap;
use time::{Date, Duration, Weekday};

fn reference_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/holiday-cn")
}

#[test]
fn every_day_2020_to_2026_agrees_with_the_official_notices() {
    let dir = reference_dir();
    if !dir.exists() {
        eprintln!("reference data not found at {}; skipping", dir.display());
        return;
    }
    let cal = builtin()
        .get("cn-mainland")
        .cloned()
        .expect("shipped calendar");
    assert_eq!(cal.covered_years(), (2020, 2026));
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    // Reference: date -> is it a day off?
    let mut listed: HashMap<Date, bool> = HashMap::new();
    for year in 2020..=2026 {
        let text =
            std::fs::read_to_string(dir.join(format!("{year}.json"))).expect("reference file");
        let json: serde_json::Value = serde_json::from_str(&text).expect("reference json");
        for day in json["days"].as_array().expect("days") {
            let date = Date::parse(day["date"].as_str().unwrap(), &fmt).unwrap();
            listed.insert(date, day["isOffDay"].as_bool().unwrap());
        }
    }
    assert!(listed.len() > 200, "{} reference days", listed.len());
    let mut d = Date::from_calendar_date(2020, time::Month::January, 1).unwrap();
    let last = Date::from_calendar_date(2026, time::Month::December, 31).unwrap();
    let mut checked = 0;
    while d <= last {
        let weekend = matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
        let expected_working = match listed.get(&d) {
            Some(off) => !off,
            None => !weekend,
        };
        assert_eq!(
            cal.is_working_day(d).unwrap(),
            expected_working,
            "{d} ({}) disagrees with the official notice",
            d.weekday()
        );
        checked += 1;
        d += Duration::days(1);
    }
    assert_eq!(checked, 2557);
    // Outside the covered years: an error, not a guess.
    assert!(cal.is_working_day(last + Duration::days(1)).is_err());
}
