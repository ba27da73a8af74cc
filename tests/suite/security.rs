//! Authentication and authorization through real servers: every RPC × every
//! role, missing and bad credentials, actors stamped from the token, business
//! line scopes, the per-caller rate limit, TLS with client certificates, and
//! the refusal to listen beyond loopback without authentication.

use crate::common::auth::{self, now, token_with, verifier, Claims, AUDIENCE, ISSUER, SECRET};
use crate::common::*;
use complaint_ledger::config::{ServerConfig, TlsFiles};
use complaint_ledger::proto::v1::{self as pb, case_event::Kind};
use prost::Message;
use std::time::Duration;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::Code;

async fn secured(f: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let keys = tempfile::tempdir().unwrap();
    let v = verifier(keys.path());
    TestServer::start_with(move |c| {
        c.auth.tokens = Some(v);
        f(c);
    })
    .await
}

fn token(sub: &str, roles: &[&str], line: Option<&str>) -> String {
    auth::token(sub, roles, line, &[])
}

/// A unary call of any method with an empty request, as `token`; the code
/// it ends with (OK when it passed and its handler answered, or kept
/// streaming past the deadline).
async fn call(url: &str, path: &'static str, token: Option<&str>) -> Code {
    let channel = Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(());
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match tokio::time::timeout(
        Duration::from_secs(2),
        grpc.unary(req, PathAndQuery::from_static(path), codec),
    )
    .await
    {
        Ok(Ok(_)) => Code::Ok,
        Ok(Err(s)) => s.code(),
        Err(_) => Code::Ok,
    }
}

/// The documented access matrix (README), independent of the code.
const MATRIX: &[(&str, &[&str])] = &[
    (
        "/complaint_ledger.v1.Ledger/Append",
        &["agent", "supervisor", "service"],
    ),
    (
        "/complaint_ledger.v1.Ledger/ReadCase",
        &["agent", "supervisor", "auditor", "service"],
    ),
    (
        "/complaint_ledger.v1.Ledger/ReadAll",
        &["supervisor", "auditor"],
    ),
    (
        "/complaint_ledger.v1.Ledger/Subscribe",
        &["supervisor", "auditor"],
    ),
    (
        "/complaint_ledger.v1.Cases/GetCase",
        &["agent", "supervisor", "auditor", "service"],
    ),
    (
        "/complaint_ledger.v1.Cases/ListCases",
        &["agent", "supervisor", "auditor", "ops", "service"],
    ),
    (
        "/complaint_ledger.v1.Policies/ListPromises",
        &["supervisor", "auditor", "ops"],
    ),
    (
        "/complaint_ledger.v1.Policies/ListWarnings",
        &["supervisor", "auditor", "ops"],
    ),
    (
        "/complaint_ledger.v1.Policies/GetQueue",
        &["supervisor", "auditor", "ops"],
    ),
    (
        "/complaint_ledger.v1.Policies/GetFactorStatistics",
        &["supervisor", "auditor", "ops"],
    ),
    (
        "/complaint_ledger.v1.Policies/GetScorecard",
        &["supervisor", "auditor", "ops"],
    ),
    (
        "/complaint_ledger.v1.Policies/GetCustomerHistory",
        &["supervisor", "auditor", "ops"],
    ),
    ("/complaint_ledger.v1.Audit/GetCheckpoint", &["auditor"]),
    ("/complaint_ledger.v1.Audit/ProveInclusion", &["auditor"]),
    ("/complaint_ledger.v1.Audit/ProveConsistency", &["auditor"]),
    ("/complaint_ledger.v1.Audit/VerifyLog", &["auditor"]),
    ("/complaint_ledger.v1.Audit/ExportCase", &["auditor"]),
    ("/complaint_ledger.v1.Ops/GetStats", &["ops"]),
    ("/complaint_ledger.v1.Ops/RebuildProjections", &["ops"]),
    (
        "/complaint_ledger.v1.Privacy/EraseCustomerData",
        &["supervisor"],
    ),
    (
        "/complaint_ledger.v1.Privacy/FindCustomerCases",
        &["agent", "supervisor", "auditor", "service"],
    ),
    ("/complaint_ledger.v1.Privacy/ListPiiAccess", &["auditor"]),
];

const ROLES: [&str; 5] = ["agent", "supervisor", "auditor", "ops", "service"];

/// Every RPC the server serves (from its descriptor set), but health,
/// reflection and the benchmark's Noop.
fn served_methods() -> Vec<String> {
    let fds = prost_types::FileDescriptorSet::decode(complaint_ledger::proto::FILE_DESCRIPTOR_SET)
        .unwrap();
    let mut out = Vec::new();
    for f in &fds.file {
        for s in &f.service {
            if s.name() == "Noop" {
                continue;
            }
            for m in &s.method {
                out.push(format!("/{}.{}/{}", f.package(), s.name(), m.name()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_rpc_times_every_role() {
    let mut listed: Vec<String> = MATRIX.iter().map(|(p, _)| p.to_string()).collect();
    listed.sort();
    assert_eq!(listed, served_methods(), "the matrix must name every RPC");
    let server = secured(|_| {}).await;
    let url = server.url();
    for (path, allowed) in MATRIX {
        // No credential at all.
        assert_eq!(
            call(&url, path, None).await,
            Code::Unauthenticated,
            "{path} without a token"
        );
        for role in ROLES {
            let t = token(&format!("who-{role}"), &[role], Some("qidian"));
            let code = call(&url, path, Some(&t)).await;
            if allowed.contains(&role) {
                assert!(
                    !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                    "{role} must reach {path}, got {code:?}"
                );
            } else {
                assert_eq!(code, Code::PermissionDenied, "{role} must not reach {path}");
            }
        }
    }
    // Health and reflection need no credential.
    assert_eq!(
        call(&url, "/grpc.health.v1.Health/Check", None).await,
        Code::Ok
    );
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let server = secured(|_| {}).await;
    let url = server.url();
    let path = "/complaint_ledger.v1.Cases/ListCases";
    let claims = |iss, aud, exp| Claims {
        sub: "8030",
        iss,
        aud,
        exp,
        roles: vec!["supervisor"],
        business_line: None,
        permissions: vec![],
    };
    for (why, t) in [
        (
            "expired",
            token_with(&claims(ISSUER, AUDIENCE, now() - 3600), SECRET),
        ),
        (
            "other issuer",
            token_with(&claims("https://evil.test", AUDIENCE, now() + 600), SECRET),
        ),
        (
            "other audience",
            token_with(&claims(ISSUER, "another-service", now() + 600), SECRET),
        ),
        (
            "other key",
            token_with(
                &claims(ISSUER, AUDIENCE, now() + 600),
                "another-secret-of-at-least-32-bytes-xxxxxx",
            ),
        ),
        ("not a JWT", "hello".to_string()),
        (
            "not valid before tomorrow (nbf)",
            timed_token(serde_json::json!({"nbf": now() + 86_400})),
        ),
        (
            "issued tomorrow (iat)",
            timed_token(serde_json::json!({"iat": now() + 86_400})),
        ),
        ("unknown role", token("8030", &["janitor"], None)),
        ("agent without a line", token("8030", &["agent"], None)),
    ] {
        assert_eq!(
            call(&url, path, Some(&t)).await,
            Code::Unauthenticated,
            "{why}"
        );
    }
}

/// A supervisor's token for ten minutes with extra time claims.
fn timed_token(extra: serde_json::Value) -> String {
    let mut claims = serde_json::json!({
        "sub": "8030", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600,
        "roles": ["supervisor"], "permissions": [],
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// One event of every kind, with default fields.
fn every_kind() -> Vec<Kind> {
    let kinds = vec![
        Kind::CaseOpened(Default::default()),
        Kind::ContactLogged(Default::default()),
        Kind::DemandRecorded(Default::default()),
        Kind::PromiseMade(Default::default()),
        Kind::TicketSubmitted(Default::default()),
        Kind::TicketRejected(Default::default()),
        Kind::TicketAppended(Default::default()),
        Kind::TicketResultGiven(Default::default()),
        Kind::CallbackAttempted(Default::default()),
        Kind::CallbackCompleted(Default::default()),
        Kind::DissatisfactionClassified(Default::default()),
        Kind::SurveyDone(Default::default()),
        Kind::Escalated(Default::default()),
        Kind::WarningRaised(Default::default()),
        Kind::ExternalComplaintReceived(Default::default()),
        Kind::ViolationJudged(Default::default()),
        Kind::ViolationAppealed(Default::default()),
        Kind::AppealDecided(Default::default()),
        Kind::NoteAdded(Default::default()),
        Kind::EventCorrected(Default::default()),
        Kind::CaseResolved(Default::default()),
        Kind::CaseClosed(Default::default()),
        Kind::CaseReopened(Default::default()),
        Kind::ExternalComplaintAnswered(Default::default()),
        Kind::PersonalDataErased(Default::default()),
        Kind::DemandDeclined(Default::default()),
        Kind::DemandWithdrawn(Default::default()),
        Kind::OwnerAssigned(Default::default()),
        Kind::WarningWithdrawn(Default::default()),
    ];
    // A new kind must be added here too.
    let names: Vec<_> = kinds
        .iter()
        .map(complaint_ledger::domain::event_type_name)
        .collect();
    assert_eq!(names, complaint_ledger::domain::EVENT_TYPES);
    kinds
}

fn corrected(kind: Kind) -> Kind {
    Kind::EventCorrected(Box::new(pb::EventCorrected {
        corrected_event_id: "kx-open".into(),
        reason: "wrong".into(),
        replacement: Some(Box::new(pb::CaseEvent { kind: Some(kind) })),
    }))
}

/// A correction is authorized as the kind it carries, at any depth: for
/// every kind × role, a correction carrying it is refused with
/// PERMISSION_DENIED exactly when the role may not append that kind itself
/// (or may not append at all). Other refusals (the corrected event, the
/// rules) come after, and are not this test's.
#[tokio::test]
async fn a_correction_is_authorized_as_the_kind_it_carries() {
    let server = secured(|_| {}).await;
    let mut c = server.ledger().await;
    let supervisor = token("lead-7", &["supervisor"], None);
    c.append(with_token(
        append(
            "kx",
            vec![ev(
                "kx-open",
                "2020-12-03T01:24:30+08:00",
                "8030",
                opened("cust-x"),
            )],
        ),
        &supervisor,
    ))
    .await
    .unwrap();
    let supervisors_only = [
        "Escalated",
        "ViolationJudged",
        "AppealDecided",
        "WarningWithdrawn",
    ];
    let roles = [
        ("agent", Some("qidian")),
        ("supervisor", None),
        ("auditor", None),
        ("ops", None),
        ("service", Some("qidian")),
    ];
    let mut checked = 0;
    for kind in every_kind() {
        let name = complaint_ledger::domain::event_type_name(&kind);
        for (role, line) in roles {
            let t = token("actor-1", &[role], line);
            for (depth, event) in [
                (1, corrected(kind.clone())),
                (2, corrected(corrected(kind.clone()))),
            ] {
                let code = match c
                    .append(with_token(
                        append(
                            "kx",
                            vec![ev(
                                &format!("kx-c-{name}-{role}-{depth}"),
                                "2020-12-03T02:00:00+08:00",
                                "8030",
                                event,
                            )],
                        ),
                        &t,
                    ))
                    .await
                {
                    Ok(_) => Code::Ok,
                    Err(s) => s.code(),
                };
                let may_append = matches!(role, "agent" | "supervisor" | "service");
                let denied =
                    !may_append || (supervisors_only.contains(&name) && role != "supervisor");
                assert_eq!(
                    code == Code::PermissionDenied,
                    denied,
                    "{role} correcting (depth {depth}) with a {name}: {code:?}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 29 * 5 * 2);
    // The reported hole: an agent's correction that would undo a
    // supervisor's judgement, or an escalation.
    let agent = token("8030", &["agent"], Some("qidian"));
    for kind in [
        Kind::ViolationJudged(pb::ViolationJudged {
            established: false,
            ..Default::default()
        }),
        Kind::Escalated(Default::default()),
    ] {
        let err = c
            .append(with_token(
                append(
                    "kx",
                    vec![ev(
                        "kx-undo",
                        "2020-12-03T02:00:00+08:00",
                        "8030",
                        corrected(kind),
                    )],
                ),
                &agent,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(err.message().contains("supervisor"), "{}", err.message());
    }
    // Nor a fact of another business line: an agent of another line
    // cannot correct this case's events at all.
    let other = token("9001", &["agent"], Some("other-line"));
    let err = c
        .append(with_token(
            append(
                "kx",
                vec![ev(
                    "kx-other",
                    "2020-12-03T02:00:00+08:00",
                    "9001",
                    corrected(note("x")),
                )],
            ),
            &other,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
}

fn with_token<T>(msg: T, t: &str) -> tonic::Request<T> {
    auth::bearer(msg, t)
}

#[tokio::test]
async fn the_actor_comes_from_the_token_and_agents_stay_in_their_line() {
    let server = secured(|_| {}).await;
    let mut c = server.ledger().await;
    let agent = token("8030", &["agent"], Some("qidian"));
    let supervisor = token("lead-7", &["supervisor"], None);
    // A forged actor header is ignored: the actor is the token's subject.
    let mut req = with_token(
        append(
            "q1",
            vec![ev(
                "q1-open",
                "2020-12-03T01:24:30+08:00",
                "8030",
                opened("u1"),
            )],
        ),
        &agent,
    );
    req.metadata_mut()
        .insert("x-actor", "boss".parse().unwrap());
    c.append(req).await.unwrap();
    let mut read = c
        .read_case(with_token(
            pb::ReadCaseRequest {
                case_id: "q1".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = read.message().await.unwrap().unwrap();
    assert_eq!(first.actor, "8030");
    assert_eq!(first.acted_for_agent, "8030");

    // A case of another line: neither opened, read nor appended to by the agent.
    let other = || {
        let mut k = opened("u2");
        if let Kind::CaseOpened(o) = &mut k {
            o.business_line = "other-line".into();
        }
        k
    };
    let e = c
        .append(with_token(
            append(
                "x1",
                vec![ev("x1-open", "2020-12-03T01:24:30+08:00", "", other())],
            ),
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    c.append(with_token(
        append(
            "x1",
            vec![ev("x1-open", "2020-12-03T01:24:30+08:00", "", other())],
        ),
        &supervisor,
    ))
    .await
    .unwrap();
    let e = c
        .append(with_token(
            append(
                "x1",
                vec![ev("x1-n", "2020-12-03T02:00:00+08:00", "", note("n"))],
            ),
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Named: the caller's own line, never the other one.
    assert!(e.message().contains("qidian"), "{}", e.message());
    assert!(!e.message().contains("other-line"), "{}", e.message());
    let e = server
        .cases()
        .await
        .get_case(with_token(
            pb::GetCaseRequest {
                case_id: "x1".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let listed = server
        .cases()
        .await
        .list_cases(with_token(pb::ListCasesRequest::default(), &agent))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .cases
            .iter()
            .map(|c| c.case_id.as_str())
            .collect::<Vec<_>>(),
        ["q1"]
    );

    // Escalation is a supervisor's; the refused request wrote nothing.
    let escalate = || {
        append(
            "q1",
            vec![ev(
                "q1-esc",
                "2020-12-03T03:00:00+08:00",
                "8030",
                Kind::Escalated(pb::Escalated {
                    from_level: pb::EscalationLevel::Agent as i32,
                    to_level: pb::EscalationLevel::TeamLead as i32,
                    reason: "三通电话".into(),
                    ..Default::default()
                }),
            )],
        )
    };
    let e = c.append(with_token(escalate(), &agent)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let r = c
        .append(with_token(escalate(), &supervisor))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.case_version, 2);
}

#[tokio::test]
async fn the_rate_limit_is_per_caller_and_named() {
    let server = secured(|c| c.auth.rate_limit_per_second = 5).await;
    let ops = token("ops-1", &["ops"], None);
    let mut codes = Vec::new();
    for _ in 0..20 {
        let r = server
            .cases()
            .await
            .list_cases(with_token(pb::ListCasesRequest::default(), &ops))
            .await;
        codes.push(r.map(|_| Code::Ok).unwrap_or_else(|s| {
            if s.code() == Code::ResourceExhausted {
                assert!(s.message().contains("rate limit"), "{}", s.message());
                let d = details(&s);
                assert_eq!(
                    d.quota_failure().unwrap().violations[0].subject,
                    "rate_limit_per_second"
                );
            }
            s.code()
        }));
    }
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
    assert!(
        codes.iter().filter(|c| **c == Code::Ok).count() >= 5,
        "{codes:?}"
    );
    // Another caller has its own budget.
    let other = token("ops-2", &["ops"], None);
    server
        .cases()
        .await
        .list_cases(with_token(pb::ListCasesRequest::default(), &other))
        .await
        .unwrap();
}

#[tokio::test]
async fn listening_beyond_loopback_without_authentication_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), false);
    c.listen = "0.0.0.0:0".parse().unwrap();
    let e = complaint_ledger::api::server::start(c)
        .await
        .err()
        .expect("must refuse");
    assert!(
        e.to_string()
            .contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{e}"
    );
    // The binary says so and exits non-zero.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_complaint-ledger"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env("COMPLAINT_LEDGER_HTTP_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to listen"));
}

#[tokio::test]
async fn tls_with_client_certificates() {
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    let ca = crate::common::pki::Pki::new(p);
    ca.issue("localhost", "server");
    let (client_cert, client_key) = ca.issue("crm-service", "client");
    let files = TlsFiles {
        cert: p.join("server.pem"),
        key: p.join("server.key"),
        client_ca: Some(p.join("ca.pem")),
    };
    let server = secured(move |c| c.auth.tls = Some(files)).await;
    let url = format!(
        "https://localhost:{}",
        server.server.as_ref().unwrap().addr.port()
    );
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca.ca_pem()))
        .domain_name("localhost");
    // With a client certificate signed by the CA, and a token: served.
    let channel = Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(tls.clone().identity(tonic::transport::Identity::from_pem(
            client_cert,
            client_key,
        )))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut cases = pb::cases_client::CasesClient::new(channel);
    cases
        .list_cases(with_token(
            pb::ListCasesRequest::default(),
            &token("crm", &["service"], Some("qidian")),
        ))
        .await
        .unwrap();
    // Without a client certificate: the handshake or the call fails.
    let refused = async {
        let channel = Channel::from_shared(url.clone())
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await?;
        pb::cases_client::CasesClient::new(channel)
            .list_cases(with_token(
                pb::ListCasesRequest::default(),
                &token("crm", &["service"], Some("qidian")),
            ))
            .await
            .map_err(|s| anyhow_like(s.to_string()))?;
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    assert!(
        refused.is_err(),
        "a client without a certificate was served"
    );
}

fn anyhow_like(s: String) -> Box<dyn std::error::Error> {
    s.into()
}
