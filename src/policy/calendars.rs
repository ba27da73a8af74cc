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
    /// calendar replaces it.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), CalendarError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| CalendarError::Invalid(format!("{}: {e}", dir.display())))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| CalendarError::Invalid(format!("{}: {e}", p.display())))?;
            let cal = Calendar::from_toml(&text)
                .map_err(|e| CalendarError::Invalid(format!("{}: {e}", p.display())))?;
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
