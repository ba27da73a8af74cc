//! The writer's case states: a cache of at most `--case-cache` states, the
//! least recently committed dropped first.
//!
//! Why: the writer decides every append against its case's state (what
//! the rules need: contacts, demands, promises, tickets, judgements), about
//! 3.4 KB for a case like the seed's. Kept for every open case, that grew
//! with the number of open cases for as long as the server ran. A state is
//! rebuilt exactly from the case's stream (its records in version order,
//! with their stored hashes), so dropping one loses nothing: the next
//! append to that case folds it again ([`super::writer`]'s miss path), a
//! few dozen record reads on the writer thread. Size the cache to the cases
//! that take appends in a day or so and misses stay rare
//! (`case_state_loads` in `/metrics` and `Ops.GetStats`).
//!
//! Recency is by commit, not by lookup: a state is touched when a commit
//! leaves it, so a refused request does not keep a case in memory. States
//! are dropped only between batches (`trim`), never while a batch still
//! decides against them.

use crate::domain::CaseState;

/// Default number of case states kept: ~70 MB at most for cases like the
/// seed's.
pub const DEFAULT_CASE_CACHE: usize = 20_000;

pub(crate) type CaseCache = crate::recent::Recent<CaseState>;
