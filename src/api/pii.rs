//! Personal data on the way out: every event a response carries passes
//! here, is decrypted for callers allowed to see personal data or masked for
//! the others (and reads `"[erased]"` for erased customers), and each response
//! that revealed personal data is written to the PII-access log with the
//! caller, case, fields, RPC and stated purpose (`x-purpose` header).

use crate::ledger::Ledger;
use crate::privacy::reveal::present;
use crate::proto::v1 as pb;
use crate::security::roles::Caller;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Metadata header stating why personal data is read.
pub const PURPOSE_HEADER: &str = "x-purpose";

/// Presents the events of one response.
pub struct Presenter {
    ledger: Arc<Ledger>,
    reveal: bool,
    actor: String,
    purpose: String,
    rpc: &'static str,
    /// Fields of each case this response has already logged: a stream logs
    /// each case's fields once, not once per chunk.
    logged: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl Presenter {
    pub fn new<T>(
        ledger: Arc<Ledger>,
        caller: &Caller,
        req: &tonic::Request<T>,
        rpc: &'static str,
    ) -> Self {
        let purpose = req
            .metadata()
            .get(PURPOSE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        Self {
            ledger,
            reveal: caller.sees_personal_data(),
            actor: caller.actor.clone(),
            purpose,
            rpc,
            logged: Mutex::new(HashMap::new()),
        }
    }

    /// Decrypts or masks a batch of events in place and logs what it revealed
    /// (one access-log entry per case and response, naming the fields; a
    /// later batch of a stream logs only fields not logged before).
    /// Blocking (the access log is written to the store).
    pub fn present(&self, events: &mut [pb::RecordedEvent]) -> Result<(), tonic::Status> {
        // Per batch: each case's customer looked up once, and the revealed
        // (event type, field) pairs of each case.
        type Revealed = BTreeSet<(&'static str, Cow<'static, str>)>;
        let mut customers: HashMap<String, String> = HashMap::new();
        let mut revealed: BTreeMap<String, Revealed> = BTreeMap::new();
        for e in events.iter_mut() {
            let Some(event) = e.event.as_mut() else {
                continue;
            };
            let Some(kind) = event.kind.as_ref() else {
                continue;
            };
            let event_type = crate::domain::event_type_name(kind);
            if !customers.contains_key(&e.case_id) {
                let c = self
                    .ledger
                    .index()
                    .customer_id(&e.case_id)
                    .map_err(|e| super::status::to_status(e.into()))?
                    .unwrap_or_default();
                customers.insert(e.case_id.clone(), c);
            }
            let customer = &customers[&e.case_id];
            let fields = present(event, customer, self.ledger.keys(), self.reveal);
            if fields.is_empty() {
                continue;
            }
            if !revealed.contains_key(&e.case_id) {
                revealed.insert(e.case_id.clone(), BTreeSet::new());
            }
            let set = revealed.get_mut(&e.case_id).expect("inserted above");
            for f in fields {
                set.insert((event_type, f));
            }
        }
        let revealed = revealed.into_iter().map(|(case, set)| {
            let names: Vec<String> = set.into_iter().map(|(t, f)| format!("{t}.{f}")).collect();
            (case, names)
        });
        let mut entries = Vec::new();
        {
            let mut logged = self.logged.lock().expect("presenter lock");
            for (case_id, fields) in revealed {
                let seen = logged.entry(case_id.clone()).or_default();
                let fields: Vec<String> = fields
                    .into_iter()
                    .filter(|f| seen.insert(f.clone()))
                    .collect();
                if fields.is_empty() {
                    continue;
                }
                entries.push(pb::PiiAccess {
                    at: Some(crate::time::now_ts()),
                    actor: self.actor.clone(),
                    case_id,
                    fields,
                    rpc: self.rpc.to_string(),
                    purpose: self.purpose.clone(),
                    ..Default::default()
                });
            }
        }
        // Durable before the response that reveals the data leaves.
        self.ledger.record_access_blocking(entries).map_err(|e| {
            tonic::Status::unavailable(format!(
                "the PII-access log could not be written, so nothing is revealed: {e}"
            ))
        })?;
        Ok(())
    }
}
