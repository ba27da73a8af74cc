//! Memory per complaint case. The large log of notes says what the log
//! costs; it says little about what cases cost, and a case's state is kept
//! in memory for as long as the ledger runs (its rules state, its summary,
//! its part of the policy board and of the early-warning rules), so a
//! ledger's memory grows with the number of its cases, open or closed.
//! This appends copies of seed case 124545 (see [`super::seed_case`]) to a
//! fresh server, lets the policy raise the warnings they call for, closes
//! them (most of a ledger's cases are closed ones) or leaves them open (a
//! closed case is cheaper: the ledger folds what it set aside at the close
//! again when one is reopened), and reports resident memory at half the
//! cases and at all of them, and after a restart. What each added case
//! costs is the difference between the two measurements over the cases
//! added between them: the figure to size a deployment by. (Resident
//! memory divided by cases would also spread fixed costs over them: the
//! threads, sled's page cache, up to 64 MiB.)

use super::credentials::Credentials;
use super::{connect_all, seed_case, settled_resident_bytes, spawn_ledger, stats, stop};
use complaint_ledger::proto::v1 as pb;
use std::path::Path;
use std::time::Duration;

/// What the measurement found.
#[derive(Debug, Clone, Default)]
pub struct CaseMemory {
    /// The copies were closed (else left open).
    pub closed: bool,
    pub cases: u64,
    /// Events in the log at the end: the cases' own and the warnings raised.
    pub events: u64,
    /// Resident memory of the empty server, settled.
    pub empty_bytes: u64,
    /// ... with the first half of the cases appended.
    pub half_bytes: u64,
    pub filled_bytes: u64,
    pub restarted_bytes: u64,
}

impl CaseMemory {
    /// Resident bytes each case of the second half added.
    pub fn per_added_case(&self) -> f64 {
        let added = self.cases - self.cases / 2;
        (self.filled_bytes as f64 - self.half_bytes as f64) / added.max(1) as f64
    }
}

/// Appends `cases` copies of the seed case on a server of its own in
/// `data`, with 64 concurrent writers, one request per case, and closes
/// them if `closed`.
pub async fn measure(
    data: &Path,
    creds: &Credentials,
    cases: u64,
    closed: bool,
) -> anyhow::Result<CaseMemory> {
    let curve = curve(data, creds, &[cases / 2, cases], closed).await?;
    Ok(CaseMemory {
        closed,
        cases,
        events: curve.events,
        empty_bytes: curve.empty_bytes,
        half_bytes: curve.at[0].1,
        filled_bytes: curve.at[1].1,
        restarted_bytes: curve.restarted_bytes,
    })
}

/// Resident memory as copies of the seed case are added.
#[derive(Debug, Clone, Default)]
pub struct Curve {
    pub closed: bool,
    pub empty_bytes: u64,
    /// (copies, resident bytes) at each checkpoint.
    pub at: Vec<(u64, u64)>,
    /// Bytes live allocations held at each checkpoint, by the server's
    /// allocator (0 where it does not say): what the ledger keeps, apart
    /// from the allocator's partly used pages.
    pub allocated_at: Vec<u64>,
    /// After a restart with every copy.
    pub restarted_bytes: u64,
    /// Events in the log at the end.
    pub events: u64,
    /// The data directory's size at the end.
    pub disk_bytes: u64,
}

/// Appends copies of the seed case on a server of its own in `data` up to
/// each of `checkpoints` (ascending), closing them if `closed`, and takes
/// the settled resident memory at each; then once more after a restart.
pub async fn curve(
    data: &Path,
    creds: &Credentials,
    checkpoints: &[u64],
    closed: bool,
) -> anyhow::Result<Curve> {
    let server = spawn_ledger(data, creds)?;
    let mut c = Curve {
        closed,
        empty_bytes: settled_resident_bytes(&server.url, &creds.bearer).await?,
        ..Default::default()
    };
    let conns = connect_all(&server.url, 64, &creds.bearer).await?;
    let mut from = 0;
    for &to in checkpoints {
        eprintln!("bench: seed copies {from}..{to}");
        append_copies(&conns, from, to).await?;
        settle(&server.url, creds).await?;
        if closed {
            close_copies(&conns, from, to).await?;
            settle(&server.url, creds).await?;
        }
        c.at.push((
            to,
            settled_resident_bytes(&server.url, &creds.bearer).await?,
        ));
        c.allocated_at
            .push(stats(&server.url, &creds.bearer).await?.allocated_bytes);
        from = to;
    }
    drop(conns);
    c.events = settle(&server.url, creds).await?;
    c.disk_bytes = stats(&server.url, &creds.bearer).await?.disk_bytes;
    stop(server).await?;
    let restarted = spawn_ledger(data, creds)?;
    c.restarted_bytes = settled_resident_bytes(&restarted.url, &creds.bearer).await?;
    stop(restarted).await?;
    Ok(c)
}

/// Appends the copies `from..to`.
async fn append_copies(conns: &[super::Client], from: u64, to: u64) -> anyhow::Result<()> {
    on_copies(conns, from, to, seed_case::copy_of).await
}

/// Closes the copies `from..to`, as disputes end: most of a ledger's cases
/// are closed ones.
async fn close_copies(conns: &[super::Client], from: u64, to: u64) -> anyhow::Result<()> {
    on_copies(conns, from, to, |id| {
        vec![seed_case::ev(
            &format!("{id}-closed"),
            "2020-12-20T10:00:00+08:00",
            "8020",
            pb::case_event::Kind::CaseClosed(pb::CaseClosed {
                reason: "settled with the client company".into(),
            }),
        )]
    })
    .await
}

/// Appends `events(case id)` to each copy `from..to`, 64 clients at once.
async fn on_copies(
    conns: &[super::Client],
    from: u64,
    to: u64,
    events: fn(&str) -> Vec<pb::ProposedEvent>,
) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for (w, client) in conns.iter().enumerate() {
        let mut client = client.clone();
        let stride = conns.len() as u64;
        tasks.push(tokio::spawn(async move {
            let mut k = from + w as u64;
            while k < to {
                let id = format!("story-{k}");
                client
                    .append(pb::AppendRequest {
                        case_id: id.clone(),
                        expected_version: None,
                        events: events(&id),
                    })
                    .await?;
                k += stride;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Waits until the log stops growing (the early-warning process appends
/// the cases' warnings after them); returns its head.
async fn settle(url: &str, creds: &Credentials) -> anyhow::Result<u64> {
    let mut head = 0;
    loop {
        let now = stats(url, &creds.bearer).await?.head_position;
        if now == head {
            return Ok(head);
        }
        head = now;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}
