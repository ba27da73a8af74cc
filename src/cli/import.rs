//! `complaint-ledger import FILE`: loads a history recorded elsewhere (an
//! older system, another ledger) through the same validation, rules and
//! early warning as everything else, so nothing enters the log that the API
//! would refuse.
//!
//! The file is JSON Lines, one event per line, in the API's own JSON (the
//! proto3 JSON mapping of `RecordedEvent`, as `ReadCase` and `ReadAll`
//! answer it through grpcurl): `caseId`, `eventId`, `occurredAt`,
//! `actedForAgent`, `correlationId`, `causationId` and `event` are taken;
//! the source's own envelope (position, versions, hashes, recorded time,
//! actor) is not, since this ledger stamps its own. Lines of one case come
//! together, in the order they happened.
//!
//! Each case's run of lines is appended in one request (in batches of
//! `--batch` for a longer run), marked `imported`: the early-warning
//! process judges the facts at their own times and raises only the
//! warnings that were true then, each marked found on import. Event ids
//! are kept, so running an import again appends nothing twice.

use super::client::{explain, Authed, ServerArgs};
use crate::proto::v1 as pb;
use crate::proto::v1::ledger_client::LedgerClient;
use anyhow::{bail, Context};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use std::io::BufRead;
use std::path::Path;

/// One line read: the case it belongs to and the event to propose.
fn parse_line(
    recorded_event: &MessageDescriptor,
    line: &str,
) -> anyhow::Result<(String, pb::ProposedEvent)> {
    let mut de = serde_json::Deserializer::from_str(line);
    let msg = DynamicMessage::deserialize(recorded_event.clone(), &mut de)?;
    de.end()?;
    let e = pb::RecordedEvent::decode(msg.encode_to_vec().as_slice())?;
    if e.case_id.is_empty() {
        bail!("caseId is missing");
    }
    Ok((
        e.case_id,
        pb::ProposedEvent {
            event_id: e.event_id,
            occurred_at: e.occurred_at,
            acted_for_agent: e.acted_for_agent,
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            event: e.event,
            imported: true,
        },
    ))
}

/// Appends one case's run of lines; returns how many events were appended
/// and how many were there already. The run is one request; when some of
/// its events are stored and others not (an import that stopped midway, a
/// file grown since), the ledger refuses it as a partial retry
/// (`ALREADY_EXISTS`), and the run goes again event by event, each stored
/// one answered as a retry, the rest appended.
async fn append_run(
    mut ledger: LedgerClient<Authed>,
    case_id: String,
    events: Vec<(usize, pb::ProposedEvent)>,
) -> anyhow::Result<(usize, usize)> {
    let first_line = events.first().map(|(n, _)| *n).unwrap_or(0);
    let last_line = events.last().map(|(n, _)| *n).unwrap_or(0);
    let refused = |lines: String, s: tonic::Status| {
        explain(s).context(format!(
            "{lines} (case {case_id}) were refused; lines before them are imported"
        ))
    };
    let request = |events: Vec<pb::ProposedEvent>| pb::AppendRequest {
        case_id: case_id.clone(),
        expected_version: None,
        events,
    };
    let count = events.len();
    let whole = request(events.iter().map(|(_, e)| e.clone()).collect());
    match ledger.append(whole).await {
        Ok(r) if r.get_ref().duplicate => return Ok((0, count)),
        Ok(_) => return Ok((count, 0)),
        Err(s) if s.code() == tonic::Code::AlreadyExists && count > 1 => {}
        Err(s) => return Err(refused(format!("lines {first_line}-{last_line}"), s)),
    }
    let (mut appended, mut already) = (0, 0);
    for (line, e) in events {
        match ledger.append(request(vec![e])).await {
            Ok(r) if r.get_ref().duplicate => already += 1,
            Ok(_) => appended += 1,
            Err(s) => return Err(refused(format!("line {line}"), s)),
        }
    }
    Ok((appended, already))
}

/// What an import did.
#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    appended: usize,
    already: usize,
}

/// Imports `file` ("-" for standard input) into a running server.
pub async fn run(server: &ServerArgs, file: &Path, batch: usize) -> anyhow::Result<()> {
    let batch = batch.clamp(1, 1000);
    let recorded_event = DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)
        .context("decoding the API's descriptors")?
        .get_message_by_name("complaint_ledger.v1.RecordedEvent")
        .context("the API's descriptors name no RecordedEvent")?;
    let reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
        ))
    };
    let connection = server.connect().await?;
    let ledger = connection.ledger();
    let mut tally = Tally::default();
    // The run of the case being read: its id, its events, and the line
    // each came from.
    let mut run: Option<(String, Vec<(usize, pb::ProposedEvent)>)> = None;
    let mut seen = std::collections::HashSet::new();
    let send = |case_id: String, events: Vec<(usize, pb::ProposedEvent)>| {
        let ledger = ledger.clone();
        async move { append_run(ledger, case_id, events).await }
    };
    let mut lines = reader.lines().enumerate();
    loop {
        let next = match lines.next() {
            Some((i, line)) => {
                let line = line.with_context(|| format!("reading line {}", i + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                let (case_id, e) = parse_line(&recorded_event, &line)
                    .with_context(|| format!("line {}", i + 1))?;
                Some((i + 1, case_id, e))
            }
            None => None,
        };
        let flush = match (&run, &next) {
            (Some((case, events)), Some((_, case_id, _))) => {
                case != case_id || events.len() == batch
            }
            (Some(_), None) => true,
            _ => false,
        };
        if flush {
            let (case_id, events) = run.take().expect("a run to flush");
            let (appended, already) = send(case_id, events).await?;
            tally.appended += appended;
            tally.already += already;
        }
        let Some((n, case_id, e)) = next else { break };
        match &mut run {
            Some((_, events)) => events.push((n, e)),
            None => {
                if seen.insert(case_id.clone()) {
                    tally.cases += 1;
                }
                run = Some((case_id, vec![(n, e)]));
            }
        }
    }
    println!(
        "imported {} events of {} cases ({} were already there)",
        tally.appended, tally.cases, tally.already
    );
    Ok(())
}
