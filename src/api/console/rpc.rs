//! The console's calls: a read-only JSON bridge to the gRPC services, in
//! the same process.
//!
//! A browser cannot speak gRPC over HTTP/2 trailers, and a second,
//! hand-written JSON API would drift from the one the ledger documents. So
//! the console posts the API's own JSON mapping of a request (the mapping
//! grpcurl and `import` use) to `/console/api/rpc/{Service}/{Method}`; the
//! bridge authenticates it with the same [`AuthState`] as a gRPC call to
//! that method (bearer token, role matrix, business-line scope, rate limit),
//! hands the request to the service's own handler, and answers the reply in
//! the same mapping. Masking and the PII-access log happen in the handlers,
//! so a reveal through the console is logged like any other read.
//!
//! Only reads are bridged (the list is [`Method`]): the console shows and
//! verifies; it never appends.

use crate::api::audit_service::AuditService;
use crate::api::auth::AuthState;
use crate::api::cases_service::CasesService;
use crate::api::ledger_service::LedgerService;
use crate::api::pii::PURPOSE_HEADER;
use crate::api::policies_service::PoliciesService;
use crate::proto::v1::{
    audit_server::Audit, cases_server::Cases, ledger_server::Ledger as LedgerApi,
    policies_server::Policies,
};
use crate::security::roles::Caller;
use axum::http::{HeaderMap, StatusCode};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::{json, Value};
use std::future::Future;
use tokio_stream::StreamExt;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The services a console call reaches.
pub struct Services {
    pub cases: CasesService,
    pub audit: AuditService,
    pub policies: PoliciesService,
    pub reads: LedgerService,
}

/// The methods the console may call: every one a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    GetCase,
    ListCases,
    ReadCase,
    GetCheckpoint,
    ProveInclusion,
    ExportCase,
    ListPromises,
    ListWarnings,
    GetQueue,
    GetScorecard,
    GetCustomerHistory,
}

impl Method {
    /// The method named `Service/Method`, if the console may call it.
    pub fn parse(service: &str, method: &str) -> Option<Self> {
        use Method::*;
        Some(match (service, method) {
            ("Cases", "GetCase") => GetCase,
            ("Cases", "ListCases") => ListCases,
            ("Ledger", "ReadCase") => ReadCase,
            ("Audit", "GetCheckpoint") => GetCheckpoint,
            ("Audit", "ProveInclusion") => ProveInclusion,
            ("Audit", "ExportCase") => ExportCase,
            ("Policies", "ListPromises") => ListPromises,
            ("Policies", "ListWarnings") => ListWarnings,
            ("Policies", "GetQueue") => GetQueue,
            ("Policies", "GetScorecard") => GetScorecard,
            ("Policies", "GetCustomerHistory") => GetCustomerHistory,
            _ => return None,
        })
    }

    /// The gRPC path, whose row of the access matrix applies.
    pub fn path(self) -> &'static str {
        use Method::*;
        match self {
            GetCase => "/complaint_ledger.v1.Cases/GetCase",
            ListCases => "/complaint_ledger.v1.Cases/ListCases",
            ReadCase => "/complaint_ledger.v1.Ledger/ReadCase",
            GetCheckpoint => "/complaint_ledger.v1.Audit/GetCheckpoint",
            ProveInclusion => "/complaint_ledger.v1.Audit/ProveInclusion",
            ExportCase => "/complaint_ledger.v1.Audit/ExportCase",
            ListPromises => "/complaint_ledger.v1.Policies/ListPromises",
            ListWarnings => "/complaint_ledger.v1.Policies/ListWarnings",
            GetQueue => "/complaint_ledger.v1.Policies/GetQueue",
            GetScorecard => "/complaint_ledger.v1.Policies/GetScorecard",
            GetCustomerHistory => "/complaint_ledger.v1.Policies/GetCustomerHistory",
        }
    }
}

/// A refusal, as the console shows it: the gRPC code and message, the
/// documented reason and the fields at fault.
#[derive(Debug)]
pub struct Refusal(pub Status);

impl Refusal {
    pub fn http_status(&self) -> StatusCode {
        match self.0.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> Value {
        let details = self.0.get_error_details();
        let reason = details.error_info().map(|i| i.reason.clone());
        let fields: Vec<Value> = details
            .bad_request()
            .map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| json!({"field": v.field, "description": v.description}))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "code": format!("{:?}", self.0.code()),
            "message": self.0.message(),
            "reason": reason,
            "fieldViolations": fields,
        })
    }
}

impl From<Status> for Refusal {
    fn from(s: Status) -> Self {
        Self(s)
    }
}

/// The caller of a console request to `method`, as a gRPC call to it would
/// be authenticated.
pub fn authorize(auth: &AuthState, method: Method, headers: &HeaderMap) -> Result<Caller, Refusal> {
    auth.authorize(method.path(), headers)?
        .ok_or_else(|| Refusal(Status::internal("a console method needs no caller")))
}

/// A request for a service handler: the message, the caller, the stated
/// purpose.
fn request<T>(msg: T, caller: Caller, headers: &HeaderMap) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(p) = headers.get(PURPOSE_HEADER) {
        if let Ok(v) = tonic::metadata::MetadataValue::try_from(p.as_bytes()) {
            r.metadata_mut().insert(PURPOSE_HEADER, v);
        }
    }
    r.extensions_mut().insert(caller);
    r
}

/// The API's JSON mapping, by the descriptors the server embeds.
pub struct Mapping {
    pool: DescriptorPool,
}

impl Mapping {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            pool: DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)?,
        })
    }

    /// A request message from its JSON (`{}` for an empty body).
    pub fn decode<M: prost::Message + Default>(&self, body: &[u8]) -> Result<M, Refusal> {
        let name = format!("complaint_ledger.v1.{}", short_name::<M>());
        let desc = self
            .pool
            .get_message_by_name(&name)
            .ok_or_else(|| Refusal(Status::internal(format!("no descriptor for {name}"))))?;
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            &b"{}"[..]
        } else {
            body
        };
        let mut de = serde_json::Deserializer::from_slice(body);
        let msg = DynamicMessage::deserialize(desc, &mut de)
            .and_then(|m| de.end().map(|_| m))
            .map_err(|e| {
                Refusal(crate::api::status::invalid_field(
                    "body",
                    format!("is not a {name} in the API's JSON mapping: {e}"),
                ))
            })?;
        msg.transcode_to::<M>()
            .map_err(|e| Refusal(Status::internal(format!("transcoding {name}: {e}"))))
    }

    /// A reply message as JSON (64-bit integers as strings, enums by name,
    /// fields in lowerCamelCase, defaults left out).
    pub fn encode<M: prost::Message + Default>(&self, msg: &M) -> Result<Value, Refusal> {
        let name = format!("complaint_ledger.v1.{}", short_name::<M>());
        let desc = self
            .pool
            .get_message_by_name(&name)
            .ok_or_else(|| Refusal(Status::internal(format!("no descriptor for {name}"))))?;
        let mut dm = DynamicMessage::new(desc);
        dm.transcode_from(msg)
            .map_err(|e| Refusal(Status::internal(format!("transcoding {name}: {e}"))))?;
        dm.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .map_err(|e| Refusal(Status::internal(format!("encoding {name}: {e}"))))
    }
}

/// The message's name without its Rust path (`CaseView`).
fn short_name<M>() -> &'static str {
    let full = std::any::type_name::<M>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Calls one method for `caller` with the JSON `body`; the reply as JSON.
/// A server-streaming read answers an array of its messages.
pub async fn call(
    services: &Services,
    mapping: &Mapping,
    method: Method,
    caller: Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, Refusal> {
    use Method::*;
    let s = services;
    // One unary read: its request decoded, the service's handler, its reply
    // encoded.
    macro_rules! unary {
        ($service:ident . $handler:ident) => {
            unary(mapping, caller, headers, body, |r| s.$service.$handler(r)).await
        };
    }
    match method {
        GetCase => unary!(cases.get_case),
        ListCases => unary!(cases.list_cases),
        GetCheckpoint => unary!(audit.get_checkpoint),
        ProveInclusion => unary!(audit.prove_inclusion),
        ExportCase => unary!(audit.export_case),
        ListPromises => unary!(policies.list_promises),
        ListWarnings => unary!(policies.list_warnings),
        GetQueue => unary!(policies.get_queue),
        GetScorecard => unary!(policies.get_scorecard),
        GetCustomerHistory => unary!(policies.get_customer_history),
        ReadCase => {
            let req = mapping.decode(body)?;
            let mut stream = s
                .reads
                .read_case(request(req, caller, headers))
                .await?
                .into_inner();
            let mut out = Vec::new();
            while let Some(event) = stream.next().await {
                out.push(mapping.encode(&event?)?);
            }
            Ok(Value::Array(out))
        }
    }
}

async fn unary<Req, Resp, F, Fut>(
    mapping: &Mapping,
    caller: Caller,
    headers: &HeaderMap,
    body: &[u8],
    handler: F,
) -> Result<Value, Refusal>
where
    Req: prost::Message + Default,
    Resp: prost::Message + Default,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let req = mapping.decode::<Req>(body)?;
    let reply = handler(request(req, caller, headers)).await?;
    mapping.encode(reply.get_ref())
}
