//! The writer on a clustered log: adopting what other nodes committed.
//!
//! Every node's writer seals records at the positions it believes come
//! next; the stream takes a batch only if it still ends where the node's
//! log does (see `store::jetstream`). When the node hears that another
//! node committed (each node announces its commits with the head they
//! reached), the writer adopts up to that head before its next group
//! commit; after a refused batch, or when the stream does not answer up to
//! an announced head, it asks the stream where it is. Each record it lacks
//! is adopted: checked as a start checks a record (its position, its
//! case's version and previous hash), its tree hashes computed, stored in
//! the local copy and handed to the projection host like a commit of its
//! own, with no one to answer. A
//! batch decided on a log that had moved on is refused by the stream and
//! decided again after that adoption, its refusals with it: a refusal is
//! answered only once the stream took the batch at the node's head (or,
//! for a batch that stored nothing, was found ending there). A request
//! that was valid against the old head may now be refused, as it would have been
//! had it arrived a moment later.
//!
//! A damaged record from the stream (a broken chain) stops appends, as
//! damage found by the scrub does: it is reported, never absorbed.

use super::error::LedgerError;
use super::projection_host::{Committed, ProjectionHost};
use super::writer::{kept_in_memory, Command, Refused, Reply, Retry, Staged, Writer};
use super::AppendOutcome;
use crate::audit::merkle::{hashes_for_new_leaf, StagedReader};
use crate::audit::record_hash;
use crate::projections::fact::OwnedFact;
use crate::projections::summary::summarize;
use crate::proto::v1 as pb;
use crate::store::{EventLog, NewRecord, StoreError};
use prost::Message;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Records adopted per read of the stream.
const ADOPT_CHUNK: usize = 1000;

/// How many times an empty answer of a lagging replica is asked again
/// (10 ms apart) before the batch is refused as unavailable.
const EMPTY_READS: u32 = 200;

impl<L: EventLog> Writer<L> {
    /// The refusals of a batch the stream took at this node's head: the log
    /// they were decided on was the stream's.
    pub(super) fn answer_refusals(refused: Vec<Refused>) {
        for (reply, e, _) in refused {
            let _ = reply.send(Err(e));
        }
    }

    /// Whether a failed clustered write leaves the ledger able to go on:
    /// another node committed first, or the cluster could not be reached (its
    /// outcome then shows at the next write).
    pub(super) fn passing(e: &StoreError) -> bool {
        matches!(e, StoreError::Conflict { .. } | StoreError::Unavailable(_))
    }

    /// After a refused clustered write: requests to decide again go first into
    /// the next batch; on an unreachable cluster, each is answered UNAVAILABLE
    /// (nothing of it was acknowledged; a retry with the same event ids is
    /// safe whichever way it went).
    pub(super) fn requeue(
        &mut self,
        e: StoreError,
        replies: Vec<(Reply, AppendOutcome)>,
        retries: Vec<Retry>,
        refused: Vec<Refused>,
        carry: &mut VecDeque<Command>,
    ) {
        // Whatever happened, the next batch first learns where the stream is.
        self.look = true;
        match e {
            StoreError::Conflict { upstream_head } => {
                self.turns.refused();
                tracing::debug!(
                    upstream_head,
                    requests = replies.len(),
                    "another node committed first; deciding again"
                );
                for ((reply, _), r) in replies.into_iter().zip(retries) {
                    carry.push_back(r.again(reply));
                }
                for (reply, _, r) in refused {
                    carry.push_back(r.again(reply));
                }
            }
            e => {
                let why = format!("{e}; retry the request (same event ids)");
                for (reply, _) in replies {
                    let _ = reply.send(Err(LedgerError::Unavailable(why.clone())));
                }
                for (reply, _, _) in refused {
                    let _ = reply.send(Err(LedgerError::Unavailable(why.clone())));
                }
            }
        }
    }

    /// Waits, while this node is contended, for another node to commit
    /// after this node's own last commit (see [`super::turns::Turns`]).
    pub(super) fn wait_for_turn(&mut self) {
        let now = Instant::now();
        let Some(wait) = self.turns.wait(self.head, now).filter(|_| self.follows) else {
            return;
        };
        let deadline = now + wait;
        while self.log.announced_head() <= self.head && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Adopts every record the clustered log holds past this node's head.
    /// `Err` says why appends of this batch cannot be decided now.
    ///
    /// Only when this node heard that the stream moved on (another node's
    /// commit, a refused batch, the start): otherwise the batch is decided
    /// on the log as this node has it, and the stream's expected sequence
    /// finds out if that was stale.
    pub(super) fn follow_upstream(&mut self, host: &ProjectionHost) -> Result<(), String> {
        if !self.follows || self.failed.get().is_some() {
            return Ok(());
        }
        // Asked (a nudge), or another node announced a commit this node
        // has not adopted yet.
        let asked =
            self.nudged.swap(false, Ordering::AcqRel) | (self.log.announced_head() > self.head);
        let look = std::mem::take(&mut self.look);
        if !(asked || look) {
            return Ok(());
        }
        let adopted = self.adopt_to_upstream_head(host, look);
        // Not known to be caught up: the next batch looks again.
        self.look |= adopted.is_err();
        adopted
    }

    /// Adopts every record up to the stream's head: as known from the
    /// committing node's announcement or a read, or else (and always with
    /// `ask`: after a refused or failed write) as asked of the stream now.
    /// Asking costs the cluster a stream-info request, once per commit of
    /// another node's were it asked every time.
    fn adopt_to_upstream_head(&mut self, host: &ProjectionHost, ask: bool) -> Result<(), String> {
        let known = self
            .known_upstream
            .load(Ordering::Acquire)
            .max(self.log.announced_head());
        let ask_stream = |log: &L| match log.upstream_head() {
            Ok(t) => Ok(t.unwrap_or(0)),
            Err(e) => Err(format!("{e}; retry the request")),
        };
        let mut asked = ask || known <= self.head;
        let mut target = if asked {
            ask_stream(self.log.as_ref())?
        } else {
            known
        };
        let mut empty = 0;
        while self.head < target {
            let fetched = self
                .log
                .fetch_upstream(self.head + 1, ADOPT_CHUNK)
                .map_err(|e| format!("{e}; retry the request"))?;
            if fetched.is_empty() && !asked {
                // A head only heard of, which the stream does not answer
                // past: the stream itself says how far it is.
                asked = true;
                target = ask_stream(self.log.as_ref())?;
                continue;
            }
            if fetched.is_empty() {
                empty += 1;
                if empty > EMPTY_READS {
                    return Err(format!(
                        "the stream holds {target} records but answers none past {}; retry the request",
                        self.head
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            match self.adopt(fetched, host) {
                Ok(()) => {}
                Err(e @ StoreError::Unavailable(_)) => return Err(e.to_string()),
                Err(e) => return Err(self.stop_appends("adopting another node's commit", &e)),
            }
        }
        Ok(())
    }

    /// A batch that stored nothing and refused requests: its refusals
    /// stand if the stream ends where this node's log does; else they are
    /// decided again once the node has adopted the rest.
    pub(super) fn settle_refusals(&mut self, refused: Vec<Refused>, carry: &mut VecDeque<Command>) {
        match self.log.upstream_head() {
            Ok(Some(h)) if h > self.head => {
                self.look = true;
                for (reply, _, r) in refused {
                    carry.push_back(r.again(reply));
                }
            }
            Ok(_) => Self::answer_refusals(refused),
            Err(e) => {
                let why = format!("{e}; retry the request");
                for (reply, _, _) in refused {
                    let _ = reply.send(Err(LedgerError::Unavailable(why.clone())));
                }
            }
        }
    }

    /// Checks, stores and publishes records another node committed, which
    /// continue this node's log.
    fn adopt(
        &mut self,
        fetched: Vec<(u64, bytes::Bytes)>,
        host: &ProjectionHost,
    ) -> Result<(), StoreError> {
        let mut staged = Staged::default();
        let mut erased = Vec::new();
        let mut last_recorded = self.last_recorded_at;
        for (position, bytes) in fetched {
            let next = self.head + staged.records.len() as u64 + 1;
            let bad = |why: String| StoreError::Corrupt(format!("stream record {position}: {why}"));
            if position != next {
                return Err(bad(format!("came where position {next} was next")));
            }
            let rec = pb::StoredRecord::decode(&bytes[..])
                .map_err(|e| bad(format!("does not decode: {e}")))?;
            let event = pb::CaseEvent::decode(&rec.payload[..])
                .map_err(|e| bad(format!("its payload does not decode: {e}")))?;
            if rec.position != position {
                return Err(bad(format!("says it is at position {}", rec.position)));
            }
            self.ensure_loaded(&staged, &rec.case_id)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut state = staged
                .cases
                .get(&rec.case_id)
                .or_else(|| self.cases.get(&rec.case_id))
                .cloned()
                .unwrap_or_default();
            if rec.case_version != state.version + 1 || rec.prev_hash[..] != state.last_hash[..] {
                return Err(bad(format!(
                    "is version {} of case {} but does not continue its chain (version {} here)",
                    rec.case_version, rec.case_id, state.version
                )));
            }
            state.apply_record(&rec, &event, record_hash(&bytes));
            let reader = StagedReader {
                staged: &staged.tree,
                log: self.log.as_ref(),
            };
            let hashes = hashes_for_new_leaf(position - 1, &bytes, &reader)?;
            staged.tree.extend(hashes);
            match &event.kind {
                Some(pb::case_event::Kind::CaseOpened(o)) => staged
                    .blind
                    .extend(super::customer_tokens(&self.keys, &self.blind, o)),
                // Another node destroyed the customer's key: this node's
                // cached copy goes now (a read waits for this adoption, so
                // none opens the data after the erasure was answered), the
                // blind index's entries with the commit.
                Some(pb::case_event::Kind::PersonalDataErased(e)) => {
                    self.keys.forget(&e.customer_id);
                    erased.push(e.customer_id.clone());
                }
                _ => {}
            }
            let fact = OwnedFact::stored(&rec, &event);
            last_recorded = last_recorded.max(fact.recorded_at);
            staged.facts.push(fact);
            let case_id = rec.case_id.clone();
            staged.records.push(NewRecord::again(position, rec, &bytes));
            staged.cases.insert(case_id, state);
        }
        let Some(head) = staged.records.last().map(|r| r.position) else {
            return Ok(());
        };
        // Not recorded in the integrity witness, which says what this node
        // acknowledged: adopted records are the stream's, and a copy that
        // loses them (it is written behind) adopts them again. Recording
        // them would sync the witness at every adoption, on the path of
        // every turn two appending nodes take.
        self.log.adopt(&staged.records, &staged.tree)?;
        self.head = head;
        self.mark_committed();
        self.last_recorded_at = last_recorded;
        self.stats
            .adopted
            .fetch_add(staged.records.len() as u64, Ordering::Relaxed);
        let rows: Vec<_> = staged
            .cases
            .iter()
            .map(|(id, s)| summarize(id, s))
            .collect();
        for (case_id, state) in staged.cases {
            if kept_in_memory(&state) {
                self.cases.insert(case_id, state);
            } else {
                self.cases.remove(&case_id);
            }
        }
        host.hand_over(Committed {
            facts: staged.facts,
            rows,
            customers: staged.blind,
            erased,
            head,
        });
        Ok(())
    }
}
