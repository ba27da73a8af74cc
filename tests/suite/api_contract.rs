//! The API as tools read it: the error-detail types reflection serves, the
//! documented reason every refusal carries, and the `personal` field option
//! against the fields the server actually seals.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, ErrorReason};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind as FieldKind, MessageDescriptor, Value};
use std::collections::BTreeMap;

#[tokio::test]
async fn reflection_serves_the_error_detail_types_and_the_reasons() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let symbols = [
        "google.rpc.BadRequest",
        "google.rpc.ErrorInfo",
        "google.rpc.PreconditionFailure",
        "google.rpc.QuotaFailure",
        "google.rpc.Status",
        "complaint_ledger.v1.ErrorReason",
    ];
    let reqs: Vec<_> = symbols
        .iter()
        .map(|s| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(s.to_string())),
        })
        .collect();
    let mut resp = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    for s in symbols {
        match resp.message().await.unwrap().unwrap().message_response {
            Some(MessageResponse::FileDescriptorResponse(f)) => {
                let file =
                    prost_types::FileDescriptorProto::decode(f.file_descriptor_proto[0].as_slice())
                        .unwrap();
                let short = s.rsplit('.').next().unwrap();
                assert!(
                    file.message_type.iter().any(|m| m.name() == short)
                        || file.enum_type.iter().any(|e| e.name() == short),
                    "{s} is not in {}",
                    file.name()
                );
            }
            other => panic!("{s}: {other:?}"),
        }
    }
}

/// The `ErrorInfo` reason of a refusal, parsed as the documented enum.
fn reason(status: &tonic::Status) -> ErrorReason {
    let d = details(status);
    let info = d.error_info().expect("every refusal carries an ErrorInfo");
    assert_eq!(info.domain, "complaint-ledger");
    ErrorReason::from_str_name(&info.reason)
        .unwrap_or_else(|| panic!("{:?} is not a documented ErrorReason", info.reason))
}

#[tokio::test]
async fn every_refusal_names_a_documented_reason() {
    let server = TestServer::start_with(|c| c.ledger.limits.max_events_per_append = 3).await;
    let mut c = server.ledger().await;
    // A rule: a note on a case that was never opened.
    let e = c
        .append(append(
            "r-1",
            vec![ev("r-1-n", "2020-12-03T01:24:30+08:00", "8030", note("x"))],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&e), ErrorReason::CaseNotOpened);
    // The PreconditionFailure still names the rule as it always did.
    let d = details(&e);
    assert_eq!(
        d.precondition_failure().unwrap().violations[0].r#type,
        "case_not_opened"
    );
    // A field.
    let e = c
        .append(append(
            "r-1",
            vec![ev("", "2020-12-03T01:24:30+08:00", "8030", opened("c"))],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(reason(&e), ErrorReason::InvalidField);
    assert!(!details(&e)
        .bad_request()
        .unwrap()
        .field_violations
        .is_empty());
    // A limit.
    let many: Vec<_> = (0..4)
        .map(|i| {
            ev(
                &format!("r-1-{i}"),
                "2020-12-03T01:24:30+08:00",
                "8030",
                note("x"),
            )
        })
        .collect();
    let e = c.append(append("r-1", many)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    assert_eq!(reason(&e), ErrorReason::MaxEventsPerAppend);
    assert_eq!(
        details(&e).quota_failure().unwrap().violations[0].subject,
        "max_events_per_append"
    );
    // The expected version.
    open_case(&mut c, "r-2", "cust-r").await;
    let mut r = append(
        "r-2",
        vec![ev("r-2-n", "2020-12-03T01:25:30+08:00", "8030", note("x"))],
    );
    r.expected_version = expect_exact(7);
    let e = c.append(r).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Aborted);
    assert_eq!(reason(&e), ErrorReason::WrongExpectedVersion);
    // An event id used with other content.
    let e = c
        .append(append(
            "r-2",
            vec![ev(
                "r-2-open",
                "2020-12-03T01:25:30+08:00",
                "8030",
                note("other"),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists);
    assert_eq!(reason(&e), ErrorReason::EventIdConflict);
}

#[test]
fn every_limit_has_a_documented_reason() {
    use complaint_ledger::api::status::limit_reason;
    for limit in [
        "max_request_bytes",
        "max_events_per_append",
        "max_event_bytes",
        "max_text_bytes",
        "rate_limit_per_second",
    ] {
        assert_ne!(limit_reason(limit), ErrorReason::Unspecified, "{limit}");
    }
}

fn pool() -> DescriptorPool {
    DescriptorPool::decode(complaint_ledger::proto::FILE_DESCRIPTOR_SET).unwrap()
}

/// Fills every string field of `msg` (recursively, but not into another
/// `CaseEvent`) with its own path, and returns the paths the descriptors
/// mark personal.
fn fill(
    msg: &mut DynamicMessage,
    desc: &MessageDescriptor,
    prefix: &str,
    inherited_personal: bool,
    personal: &prost_reflect::ExtensionDescriptor,
    out: &mut Vec<String>,
) {
    for f in desc.fields() {
        let path = format!("{prefix}{}", f.name());
        let marked = inherited_personal
            || matches!(
                f.options().get_extension(personal).as_ref(),
                Value::Bool(true)
            );
        match f.kind() {
            FieldKind::String => {
                let v = Value::String(path.clone());
                if f.is_list() {
                    msg.set_field(&f, Value::List(vec![v]));
                } else {
                    msg.set_field(&f, v);
                }
                if marked {
                    out.push(path);
                }
            }
            FieldKind::Message(m)
                if !f.is_list()
                    && !f.is_map()
                    && m.full_name() != "complaint_ledger.v1.CaseEvent"
                    && !m.full_name().starts_with("google.protobuf.") =>
            {
                let mut sub = DynamicMessage::new(m.clone());
                fill(&mut sub, &m, &format!("{path}."), marked, personal, out);
                msg.set_field(&f, Value::Message(sub));
            }
            _ => {}
        }
    }
}

#[test]
fn the_personal_option_marks_exactly_the_fields_the_server_seals() {
    let pool = pool();
    let personal = pool
        .get_extension_by_name("complaint_ledger.v1.personal")
        .expect("options.proto defines the personal option");
    let case_event = pool
        .get_message_by_name("complaint_ledger.v1.CaseEvent")
        .unwrap();
    let kind = case_event.oneofs().find(|o| o.name() == "kind").unwrap();
    let mut checked = 0;
    let mut marked_total = 0;
    for variant in kind.fields() {
        let FieldKind::Message(m) = variant.kind() else {
            panic!("{} is not a message", variant.name())
        };
        // The event itself, and the event as the replacement of a correction.
        for corrected in [false, true] {
            let mut inner = DynamicMessage::new(m.clone());
            let mut expected = Vec::new();
            let prefix = if corrected { "replacement." } else { "" };
            fill(&mut inner, &m, prefix, false, &personal, &mut expected);
            let mut event = DynamicMessage::new(case_event.clone());
            event.set_field(&variant, Value::Message(inner));
            let event = if corrected {
                let corrected_desc = pool
                    .get_message_by_name("complaint_ledger.v1.EventCorrected")
                    .unwrap();
                let mut c = DynamicMessage::new(corrected_desc.clone());
                c.set_field_by_name("replacement", Value::Message(event));
                let mut outer = DynamicMessage::new(case_event.clone());
                outer.set_field_by_name("event_corrected", Value::Message(c));
                outer
            } else {
                event
            };
            let mut decoded = pb::CaseEvent::decode(event.encode_to_vec().as_slice()).unwrap();
            let sealed: BTreeMap<String, String> =
                complaint_ledger::privacy::fields::personal_fields_mut(&mut decoded)
                    .into_iter()
                    .map(|(path, v)| (path.into_owned(), v.clone()))
                    .collect();
            let mut expected_sorted = expected.clone();
            expected_sorted.sort();
            assert_eq!(
                sealed.keys().cloned().collect::<Vec<_>>(),
                expected_sorted,
                "{}{}: the fields marked personal and the fields the server seals differ",
                prefix,
                variant.name()
            );
            for (path, value) in &sealed {
                assert_eq!(
                    path, value,
                    "the sealing code reads another field for {path}"
                );
            }
            marked_total += expected.len();
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} event kinds checked");
    assert!(
        marked_total > 20,
        "only {marked_total} personal fields found"
    );
}
