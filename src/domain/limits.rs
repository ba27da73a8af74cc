//! The size limits of one append, each configurable: exceeding one is
//! `RESOURCE_EXHAUSTED` naming the limit, so a client learns which setting
//! its request went past.

/// Size limits of one append. Each is configurable; exceeding one is
/// `RESOURCE_EXHAUSTED` naming the limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Encoded size of a whole `AppendRequest`.
    pub max_request_bytes: usize,
    /// Events in one `AppendRequest`.
    pub max_events_per_append: usize,
    /// Encoded size of one event's payload (`CaseEvent`).
    pub max_event_bytes: usize,
    /// Bytes of any one text field.
    pub max_text_bytes: usize,
    /// How far an event's `occurred_at` may lie ahead of the server's clock,
    /// seconds: the clocks of the callers' machines drift, but an event
    /// states when something happened, never when it will.
    pub max_clock_skew_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 4 * 1024 * 1024,
            max_events_per_append: 1000,
            max_event_bytes: 64 * 1024,
            max_text_bytes: 32 * 1024,
            max_clock_skew_seconds: 300,
        }
    }
}

/// A limit an append request went past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    /// The limit's configuration name, e.g. `max_event_bytes`.
    pub limit: &'static str,
    /// The field that went past it.
    pub field: String,
    pub actual: usize,
    pub max: usize,
}
