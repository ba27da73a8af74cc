//! Read models derived from the log. Nothing here is a source of truth: each
//! projection is folded from events and can be rebuilt from the log.
//!
//! - [`summary`]: the case list, one row per case in a table of the store,
//!   written before an append is acknowledged (read-your-writes for
//!   `ListCases`) with the log position reached.
//! - [`case_view`]: the full picture of one case, folded from its events on
//!   request, so it is exact as of any version or recorded time.
//! - [`promises`]: whether promises and demands were kept, and why not.
//! - [`timely`]: the six timely duties (六及时) of a case as clocks.
//! - [`board`]: the cross-case policy projections (promises, warnings,
//!   KF-006 queues, scorecards, customer histories) as a fold of
//!   [`fact`]s; [`board_keys`] its indexes as keys, [`board_store`] those
//!   keys in a table of the store with a bounded cache of cases' facts,
//!   [`board_source`] what queries read either through; queried by
//!   [`listings`], [`kf006`] and [`scorecard`], paged by [`page`]; [`week`]
//!   is the KF-006 week the board and the queues share.
//! - [`rebuild`]: all of it folded afresh from the log.
//! - [`case_stream`]: one case's stored events read back in version order,
//!   for every reader that folds a case it keeps nothing of in memory.

pub mod board;
pub mod board_keys;
pub mod board_source;
pub mod board_store;
pub mod case_stream;
pub mod case_view;
pub mod fact;
pub mod kf006;
pub mod listings;
pub mod page;
pub mod promise_book;
pub mod promises;
pub mod rebuild;
pub mod scorecard;
pub mod summary;
pub mod timely;
pub mod week;
