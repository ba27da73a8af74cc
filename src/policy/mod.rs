//! Complaint-handling policy: working-day calendars, the deadlines computed
//! from them, and the early-warning rules.
//!
//! - [`calendar`]: one calendar and its working-day arithmetic;
//! - [`calendars`]: the calendars a server knows;
//! - [`config`]: the policy file;
//! - [`deadlines`]: deadlines the server computes and stamps into events;
//! - [`warnings`]: the early-warning rules, as a pure fold over events;
//! - [`early_warning`]: the process that follows the log and appends the
//!   warnings the rules raise.

pub mod calendar;
pub mod calendars;
pub mod config;
pub mod deadlines;
pub mod early_warning;
pub mod warnings;

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
        let named = std::iter::once(&config.calendars.default)
            .chain(config.calendars.business_lines.values());
        for id in named {
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
}

impl Default for Policy {
    fn default() -> Self {
        Self::new(PolicyConfig::default()).expect("the shipped policy and calendars agree")
    }
}
