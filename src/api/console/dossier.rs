//! The dossier: one case as a single self-contained HTML file for a
//! dispute file — the picture, the events with their envelopes, and the
//! case's verifiable bundle, which the file checks itself in the reader's
//! browser against the key the reader pins.
//!
//! It is the console page with its style, its script and the case's data
//! inlined: it opens from disk, years later, with no server and no network.
//! Its own Content-Security-Policy allows only its two inline blocks, by
//! hash. The data is read through the same bridged methods as the page
//! (`GetCase`, `ReadCase`, `ExportCase`), so the caller's roles, masking and
//! the PII-access log apply to it exactly as to the page.

use super::rpc::{self, Method, Refusal};
use super::{assets, calendar, Console};
use axum::http::HeaderMap;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Days drawn before the first and after the last time of the case.
const MARGIN_DAYS: i64 = 2;

/// The dossier of `case_id`, as HTML.
pub async fn build(c: &Console, case_id: &str, headers: &HeaderMap) -> Result<String, Refusal> {
    let body = serde_json::to_vec(&json!({"caseId": case_id})).expect("json");
    let read = |method: Method| {
        let body = body.clone();
        async move {
            let caller = rpc::authorize(&c.auth, method, headers)?;
            c.read(method, caller, headers, &body).await
        }
    };
    let view = read(Method::GetCase).await?;
    let events = read(Method::ReadCase).await?;
    let bundle = read(Method::ExportCase).await?;
    let line = view["businessLine"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let days = match span_of(&view, &events) {
        Some((from, to)) => calendar::days(
            c.ledger.policy(),
            &calendar::DaysQuery {
                line,
                from: from.to_string(),
                to: to.to_string(),
            },
        )?,
        None => Value::Null,
    };
    let data = json!({
        "exportedAt": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "origin": c.ledger.origin(),
        "publicKey": c.ledger.public_key(),
        "view": view,
        "events": events,
        "bundle": bundle,
        "calendar": days,
    });
    Ok(page(case_id, &data))
}

/// The local dates the case's picture spans: its events' business times
/// and its promises' due times, with a margin, at most the calendar
/// endpoint's longest range.
fn span_of(view: &Value, events: &Value) -> Option<(time::Date, time::Date)> {
    let mut times: Vec<time::OffsetDateTime> = Vec::new();
    let mut take = |v: &Value| {
        if let Some(s) = v.as_str() {
            if let Ok(t) =
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            {
                times.push(t);
            }
        }
    };
    for e in events.as_array().into_iter().flatten() {
        take(&e["occurredAt"]);
    }
    for p in view["promises"].as_array().into_iter().flatten() {
        take(&p["promise"]["dueAt"]);
    }
    let (first, last) = (times.iter().min()?, times.iter().max()?);
    // UTC dates, widened by the margin, cover the local dates of any offset.
    let from = first.date() - time::Duration::days(MARGIN_DAYS);
    let to = (last.date() + time::Duration::days(MARGIN_DAYS))
        .min(from + time::Duration::days(calendar::MAX_DAYS - 1));
    Some((from, to))
}

/// `sha256-…` of an inline block, for the CSP.
fn csp_hash(block: &str) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(block.as_bytes()))
    )
}

/// JSON safe inside a `<script>` element: no `</script>`, no `<!--`.
fn script_safe(v: &Value) -> String {
    serde_json::to_string(v)
        .expect("json")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn page(case_id: &str, data: &Value) -> String {
    let style = assets::STYLE;
    let script = assets::SCRIPT;
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; img-src data:; base-uri 'none'; form-action 'none'",
        csp_hash(script),
        csp_hash(style)
    );
    let title = html_escape(case_id);
    format!(
        "<!doctype html>\n<html lang=\"zh-Hans\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>Case {title} — dossier</title>\n<style>{style}</style>\n</head>\n\
<body class=\"dossier\">\n<header class=\"top\"><h1>complaint-ledger · dossier of case {title}</h1></header>\n\
<main id=\"main\"></main>\n\
<script type=\"application/json\" id=\"dossier-data\">{}</script>\n\
<script>{script}</script>\n</body>\n</html>\n",
        script_safe(data)
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
