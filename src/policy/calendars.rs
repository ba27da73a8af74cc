//! The set of calendars a server knows: the ones shipped in `calendars/`
//! (compiled in, so a fresh binary needs no files) plus any found in an
//! operator-given directory, which may add calendars or newer versions.

use super::calendar::{Calendar, CalendarError};
use std::collections::BTreeMap;
use std::path::Path;

/// Calendar data files shipped with the service.
const BUILTIN: &[(&str, &str)] = &[(
    "calendars/cn-mainland.toml",
    include_str!("../../calendars/cn-mainland.toml"),
)];

/// Calendars by id.
#[derive(Debug, Clone, Default)]
pub struct Calendars {
    by_id: BTreeMap<String, Calendar>,
}

/// The calendars shipped with the service.
pub fn builtin() -> Calendars {
    let mut c = Calendars::default();
    for (name, text) in BUILTIN {
        let cal = Calendar::from_toml(text)
            .unwrap_or_else(|e| panic!("shipped calendar {name} is invalid: {e}"));
        c.by_id.insert(cal.id().to_string(), cal);
    }
    c
}

impl Calendars {
    /// Adds every `*.toml` calendar in `dir`; a file with the id of a known
    /// calendar replaces it. Refused, naming the files: two files with one
    /// id (which one counts would hang on file names), and a file that
    /// would replace a calendar covering later years — an operator's old
    /// file left in place after an upgrade must not silently take back the
    /// newer year the binary ships.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), CalendarError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| CalendarError::Invalid(format!("{}: {e}", dir.display())))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut from_dir: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
        for p in paths {
            let invalid =
                |e: &dyn std::fmt::Display| CalendarError::Invalid(format!("{}: {e}", p.display()));
            let text = std::fs::read_to_string(&p).map_err(|e| invalid(&e))?;
            let cal = Calendar::from_toml(&text).map_err(|e| invalid(&e))?;
            if let Some(first) = from_dir.get(cal.id()) {
                return Err(invalid(&format!(
                    "calendar {:?} is also defined by {}; keep one file per calendar",
                    cal.id(),
                    first.display()
                )));
            }
            if let Some(known) = self.by_id.get(cal.id()) {
                let (_, known_last) = known.covered_years();
                let (_, last) = cal.covered_years();
                if last < known_last {
                    return Err(invalid(&format!(
                        "{} covers years up to {last}, but would replace {} which covers up to {known_last}; update or remove the file",
                        cal.stamp(),
                        known.stamp()
                    )));
                }
            }
            from_dir.insert(cal.id().to_string(), p.clone());
            self.by_id.insert(cal.id().to_string(), cal);
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Calendar> {
        self.by_id.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../calendars/cn-mainland.toml");

    /// The shipped file as version `version`, cut to end with `last`.
    fn with_last_year(version: &str, last: i32) -> String {
        let text = SHIPPED
            .replace("version = \"2026.1\"", &format!("version = \"{version}\""))
            .replace("last_year = 2026", &format!("last_year = {last}"));
        match text.find(&format!("\n[[year]]\nyear = {}\n", last + 1)) {
            Some(cut) => text[..cut].to_string(),
            None => text,
        }
    }

    #[test]
    fn a_newer_file_replaces_the_shipped_calendar() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cn.toml"), with_last_year("2026.2", 2026)).unwrap();
        let mut c = builtin();
        c.load_dir(dir.path()).unwrap();
        assert_eq!(c.get("cn-mainland").unwrap().stamp(), "cn-mainland@2026.2");
    }

    #[test]
    fn a_file_covering_fewer_years_than_the_shipped_calendar_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.toml"), with_last_year("2025.1", 2025)).unwrap();
        let mut c = builtin();
        let e = c.load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("old.toml")
                && e.contains("cn-mainland@2025.1 covers years up to 2025")
                && e.contains("cn-mainland@2026.1 which covers up to 2026"),
            "{e}"
        );
        assert_eq!(c.get("cn-mainland").unwrap().stamp(), "cn-mainland@2026.1");
    }

    #[test]
    fn two_files_for_one_calendar_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), with_last_year("2026.2", 2026)).unwrap();
        std::fs::write(dir.path().join("b.toml"), with_last_year("2026.3", 2026)).unwrap();
        let e = builtin().load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("b.toml") && e.contains("also defined by") && e.contains("a.toml"),
            "{e}"
        );
    }
}
