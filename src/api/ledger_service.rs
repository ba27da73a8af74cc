//! `complaint_ledger.v1.Ledger`: append, read a case, read the whole log,
//! subscribe. Every call runs in a span carrying its case id.

use super::caller::{caller_of, check_line};
use super::parallel::map_slices;
use super::pii::Presenter;
use super::status::{invalid_field, to_status};
use super::streaming::{chunk_channel, ResponseStream};
use crate::domain::event_kind::EVENT_TYPES;
use crate::domain::ids::id_problem;
use crate::ledger::recorded::to_recorded;
use crate::ledger::{Ledger, LedgerError};
use crate::proto::v1::{self as pb, ledger_server::Ledger as LedgerApi};
use std::collections::HashSet;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// Events read from the store per blocking step of a stream.
const READ_CHUNK: usize = 512;

pub struct LedgerService {
    ledger: Arc<Ledger>,
    /// Becomes true when the server starts shutting down: live subscriptions
    /// end then, or graceful shutdown would wait for them forever.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl LedgerService {
    pub fn new(ledger: Arc<Ledger>, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Self { ledger, stopping }
    }
}

/// Decodes a chunk of stored records, keeps those `filter` matches and
/// presents them (decrypted or masked), spread over the machine's cores.
fn present_stored(
    stored: &[(u64, Vec<u8>)],
    filter: &Filter,
    presenter: &Presenter,
) -> Result<Vec<pb::RecordedEvent>, Status> {
    map_slices(stored, |slice| {
        let mut events = Vec::with_capacity(slice.len());
        for (_, bytes) in slice {
            let e = to_recorded(bytes).map_err(|e| to_status(LedgerError::from(e)))?;
            if filter.matches(&e) {
                events.push(e);
            }
        }
        presenter.present(&mut events)?;
        Ok(events)
    })
}

/// Which events a read or subscription wants.
#[derive(Default)]
struct Filter {
    types: HashSet<String>,
    cases: HashSet<String>,
}

impl Filter {
    fn parse(f: Option<pb::EventFilter>) -> Result<Self, Status> {
        let f = f.unwrap_or_default();
        for (i, t) in f.event_types.iter().enumerate() {
            if !EVENT_TYPES.contains(&t.as_str()) {
                return Err(invalid_field(
                    &format!("filter.event_types[{i}]"),
                    format!(
                        "{t:?} is not an event type; known: {}",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        }
        for (i, c) in f.case_ids.iter().enumerate() {
            if let Some(p) = id_problem(c) {
                return Err(invalid_field(&format!("filter.case_ids[{i}]"), p));
            }
        }
        Ok(Self {
            types: f.event_types.into_iter().collect(),
            cases: f.case_ids.into_iter().collect(),
        })
    }

    fn matches(&self, e: &pb::RecordedEvent) -> bool {
        (self.types.is_empty() || self.types.contains(&e.event_type))
            && (self.cases.is_empty() || self.cases.contains(&e.case_id))
    }
}

fn check_case_id(case_id: &str) -> Result<(), Status> {
    match id_problem(case_id) {
        Some(p) => Err(invalid_field("case_id", p)),
        None => Ok(()),
    }
}

#[tonic::async_trait]
impl LedgerApi for LedgerService {
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let caller = caller_of(&request)?;
        let actor = caller.actor.clone();
        let req = request.into_inner();
        for (i, e) in req.events.iter().enumerate() {
            if let Some(kind) = e.event.as_ref().and_then(|x| x.kind.as_ref()) {
                caller
                    .may_append(kind)
                    .map_err(|why| Status::permission_denied(format!("events[{i}]: {why}")))?;
            }
        }
        let span = tracing::info_span!("Append", case_id = %req.case_id, events = req.events.len(), actor = %actor);
        async move {
            let scope = caller.line_scope().map(str::to_string);
            match self.ledger.append_scoped(req, actor, scope).await {
                Ok(o) => {
                    tracing::debug!(
                        first = o.first_position,
                        last = o.last_position,
                        version = o.case_version,
                        duplicate = o.duplicate,
                        "appended"
                    );
                    Ok(Response::new(pb::AppendResponse {
                        first_position: o.first_position,
                        last_position: o.last_position,
                        case_version: o.case_version,
                        duplicate: o.duplicate,
                    }))
                }
                Err(e) => {
                    tracing::info!(error = %e, "append refused");
                    Err(to_status(e))
                }
            }
        }
        .instrument(span)
        .await
    }

    type ReadCaseStream = ResponseStream<pb::RecordedEvent>;

    async fn read_case(
        &self,
        request: Request<pb::ReadCaseRequest>,
    ) -> Result<Response<Self::ReadCaseStream>, Status> {
        let caller = caller_of(&request)?;
        let request_meta =
            tonic::Request::from_parts(request.metadata().clone(), Default::default(), ());
        let req = request.into_inner();
        let _span = tracing::info_span!("ReadCase", case_id = %req.case_id).entered();
        check_case_id(&req.case_id)?;
        let Some(line) = self.ledger.index().business_line(&req.case_id) else {
            return Err(to_status(LedgerError::CaseNotFound(req.case_id)));
        };
        check_line(&caller, &req.case_id, &line)?;
        let presenter = Presenter::new(
            self.ledger.clone(),
            &caller,
            &request_meta,
            "Ledger.ReadCase",
        );
        let backwards = match pb::ReadDirection::try_from(req.direction) {
            Ok(d) => d == pb::ReadDirection::Backwards,
            Err(_) => {
                return Err(invalid_field(
                    "direction",
                    format!("{} is not a known value", req.direction),
                ))
            }
        };
        let ledger = self.ledger.clone();
        let (tx, stream) = chunk_channel();
        tokio::task::spawn_blocking(move || {
            let mut remaining = if req.limit == 0 { u64::MAX } else { req.limit };
            let mut from = req.from_version;
            while remaining > 0 {
                let n = remaining.min(READ_CHUNK as u64) as usize;
                let mut chunk = match ledger.read_case(&req.case_id, from, backwards, n) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(to_status(e)));
                        return;
                    }
                };
                if let Err(s) = presenter.present(&mut chunk) {
                    let _ = tx.blocking_send(Err(s));
                    return;
                }
                let Some(last) = chunk.last().map(|e| e.case_version) else {
                    return;
                };
                let got = chunk.len();
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
                remaining -= got as u64;
                if backwards {
                    if last <= 1 {
                        return;
                    }
                    from = last - 1;
                } else {
                    from = last + 1;
                }
                if got < n {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    type ReadAllStream = ResponseStream<pb::RecordedEvent>;

    async fn read_all(
        &self,
        request: Request<pb::ReadAllRequest>,
    ) -> Result<Response<Self::ReadAllStream>, Status> {
        let caller = caller_of(&request)?;
        let presenter = Presenter::new(self.ledger.clone(), &caller, &request, "Ledger.ReadAll");
        let req = request.into_inner();
        let filter = Filter::parse(req.filter)?;
        let ledger = self.ledger.clone();
        let (tx, stream) = chunk_channel();
        tokio::task::spawn_blocking(move || {
            let mut remaining = if req.limit == 0 { u64::MAX } else { req.limit };
            let mut from = req.from_position.max(1);
            loop {
                // Never more records than may still be sent: each one read
                // is presented (and logged if it reveals personal data).
                let n = READ_CHUNK.min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let stored = match ledger.read_all_stored(from, n) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(to_status(e)));
                        return;
                    }
                };
                let Some(last) = stored.last().map(|(p, _)| *p) else {
                    return;
                };
                let chunk = match present_stored(&stored, &filter, &presenter) {
                    Ok(c) => c,
                    Err(s) => {
                        let _ = tx.blocking_send(Err(s));
                        return;
                    }
                };
                remaining -= chunk.len() as u64;
                if tx.blocking_send(Ok(chunk)).is_err() || remaining == 0 {
                    return;
                }
                from = last + 1;
            }
        });
        Ok(Response::new(stream))
    }

    type SubscribeStream = ResponseStream<pb::SubscribeResponse>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = caller_of(&request)?;
        let presenter = Arc::new(Presenter::new(
            self.ledger.clone(),
            &caller,
            &request,
            "Ledger.Subscribe",
        ));
        let req = request.into_inner();
        let filter = Arc::new(Filter::parse(req.filter)?);
        let ledger = self.ledger.clone();
        let mut stopping = self.stopping.clone();
        let (tx, stream) = chunk_channel();
        let span = tracing::info_span!("Subscribe", from = req.from_position);
        tokio::spawn(
            async move {
                let mut head_rx = ledger.head();
                let mut next = req.from_position.max(1);
                let mut caught_up = false;
                loop {
                    let head = *head_rx.borrow_and_update();
                    while next <= head {
                        let (l, from, p) = (ledger.clone(), next, presenter.clone());
                        let filter = Arc::clone(&filter);
                        let read = move || {
                            let stored = l.read_all_stored(from, READ_CHUNK).map_err(to_status)?;
                            let last = stored.last().map(|(p, _)| *p);
                            Ok::<_, Status>((last, present_stored(&stored, &filter, &p)?))
                        };
                        let chunk = match tokio::task::spawn_blocking(read).await {
                            Ok(Ok(c)) => c,
                            Ok(Err(e)) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                            Err(e) => {
                                let _ = tx.send(Err(Status::internal(format!("reader failed: {e}")))).await;
                                return;
                            }
                        };
                        let (Some(last), chunk) = chunk else { break };
                        let msgs: Vec<_> = chunk
                            .into_iter()
                            .map(|e| pb::SubscribeResponse {
                                kind: Some(pb::subscribe_response::Kind::Event(e)),
                            })
                            .collect();
                        if tx.send(Ok(msgs)).await.is_err() {
                            return;
                        }
                        next = last + 1;
                    }
                    if !caught_up {
                        caught_up = true;
                        let msg = pb::SubscribeResponse {
                            kind: Some(pb::subscribe_response::Kind::CaughtUp(pb::CaughtUp { position: head })),
                        };
                        if tx.send(Ok(vec![msg])).await.is_err() {
                            return;
                        }
                    }
                    tokio::select! {
                        changed = head_rx.changed() => {
                            if changed.is_err() {
                                let _ = tx.send(Err(Status::unavailable("the ledger is shutting down"))).await;
                                return;
                            }
                        }
                        _ = tx.closed() => return,
                        r = stopping.changed() => {
                            if r.is_err() {
                                let _ = tx.send(Err(Status::unavailable("the server stopped"))).await;
                                return;
                            }
                        }
                    }
                    if *stopping.borrow() {
                        let _ = tx
                            .send(Err(Status::unavailable("the server is shutting down; resume from the next position")))
                            .await;
                        return;
                    }
                }
            }
            .instrument(span),
        );
        Ok(Response::new(stream))
    }
}
