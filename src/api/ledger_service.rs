//! `complaint_ledger.v1.Ledger`: append, read a case, read the whole log,
//! subscribe. Every call runs in a span carrying its case id.

use super::caller::{caller_of, check_line};
use super::event_filter::Filter;
use super::log_reader::LogRange;
use super::observe::note_case;
use super::pii::Presenter;
use super::status::{invalid_field, to_status};
use super::streaming::{chunk_channel, ResponseStream};
use crate::domain::ids::id_problem;
use crate::ledger::Ledger;
use crate::proto::v1::{self as pb, ledger_server::Ledger as LedgerApi};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// Events of a case read from the store per blocking step of `ReadCase`.
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
        note_case(&request, &request.get_ref().case_id);
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
        note_case(&request, &request.get_ref().case_id);
        let request_meta =
            tonic::Request::from_parts(request.metadata().clone(), Default::default(), ());
        let req = request.into_inner();
        let _span = tracing::info_span!("ReadCase", case_id = %req.case_id).entered();
        check_case_id(&req.case_id)?;
        let line = self
            .ledger
            .business_line_of(&req.case_id)
            .map_err(to_status)?;
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
        let range = LogRange {
            ledger: self.ledger.clone(),
            filter: Arc::new(Filter::parse(req.filter)?),
            presenter: Arc::new(presenter),
            wrap: std::convert::identity,
        };
        // The log as it stands durably now; what is appended while it
        // streams is Subscribe's to deliver.
        let head = *self.ledger.head().borrow();
        let limit = (req.limit > 0).then_some(req.limit);
        let (tx, stream) = chunk_channel();
        let span = tracing::info_span!("ReadAll", from = req.from_position, head);
        tokio::spawn(
            async move {
                range.send(req.from_position, head, limit, &tx).await;
            }
            .instrument(span),
        );
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
        let range = LogRange {
            ledger: self.ledger.clone(),
            filter: Arc::new(Filter::parse(req.filter)?),
            presenter,
            wrap: |e| pb::SubscribeResponse {
                kind: Some(pb::subscribe_response::Kind::Event(e)),
            },
        };
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
                    // Only what is durable: the head moves after the sync.
                    if next <= head {
                        if !range.send(next, head, None, &tx).await {
                            return;
                        }
                        next = head + 1;
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
