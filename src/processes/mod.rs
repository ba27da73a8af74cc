//! Processes that run beside the ledger as its clients: they follow what
//! is committed and append through the ledger like any caller, with an
//! actor of their own. They come after the ledger in the flow; nothing
//! below them imports them.
//!
//! - [`early_warning`]: follows the commits, folds the early-warning rules
//!   (`warning_rules`, their state across cases in `warning_table`) and
//!   appends the warnings they raise, or withdraw;
//! - [`pending_deadlines`]: at start, corrects the deadlines recorded
//!   pending or provisional that the calendars now cover officially;
//! - [`scrub`]: verifies the whole log again, every interval, and stops
//!   appends at the first damage it finds.

pub mod early_warning;
pub mod pending_deadlines;
pub mod scrub;
pub mod warning_rules;
pub mod warning_table;
