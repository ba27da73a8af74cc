//! NATS decentralized authentication for the clustered store's tests: an
//! operator, a system account and the ledger's account (JetStream on) as
//! JWTs the servers preload, and a user's credentials file (its JWT and
//! NKey seed) as `--nats-credentials` takes it.

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub struct NatsAuth {
    /// Server configuration: the operator, the system account, the
    /// preloaded accounts.
    pub server_config: String,
    /// A credentials file's text for a user of the ledger's account.
    pub user_creds: String,
}

/// The JWT of `claims` for `subject`, issued and signed by `issuer` (the
/// NATS JWT v2 form: `ed25519-nkey`, the id a hash of the claims).
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: Value) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut claims = json!({
        "iat": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        "iss": issuer.public_key(),
        "jti": "",
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let id = base32hex(&Sha256::digest(claims.to_string().as_bytes()));
    claims["jti"] = Value::String(id);
    let head = format!(
        "{}.{}",
        b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#),
        b64(claims.to_string().as_bytes())
    );
    let sig = issuer.sign(head.as_bytes()).unwrap();
    format!("{head}.{}", b64(&sig))
}

/// RFC 4648 base32 with the extended hex alphabet, no padding.
fn base32hex(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let (mut out, mut buf, mut bits) = (String::new(), 0u32, 0);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

impl NatsAuth {
    pub fn new() -> Self {
        let operator = nkeys::KeyPair::new_operator();
        let system = nkeys::KeyPair::new_account();
        let ledger = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let operator_jwt = jwt(
            &operator,
            &operator.public_key(),
            "ledger-test",
            json!({"type": "operator", "version": 2, "system_account": system.public_key()}),
        );
        let unlimited = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
        });
        let system_jwt = jwt(
            &operator,
            &system.public_key(),
            "SYS",
            json!({"limits": unlimited, "type": "account", "version": 2}),
        );
        let mut with_jetstream = unlimited.clone();
        for (k, v) in [
            ("mem_storage", -1),
            ("disk_storage", -1),
            ("streams", -1),
            ("consumer", -1),
        ] {
            with_jetstream[k] = json!(v);
        }
        let ledger_jwt = jwt(
            &operator,
            &ledger.public_key(),
            "LEDGER",
            json!({"limits": with_jetstream, "type": "account", "version": 2}),
        );
        let user_jwt = jwt(
            &ledger,
            &user.public_key(),
            "complaint-ledger",
            json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                   "type": "user", "version": 2}),
        );
        let server_config = format!(
            "operator: \"{operator_jwt}\"\nsystem_account: \"{}\"\nresolver: MEMORY\n\
             resolver_preload: {{\n  {}: \"{system_jwt}\"\n  {}: \"{ledger_jwt}\"\n}}\n",
            system.public_key(),
            system.public_key(),
            ledger.public_key(),
        );
        let user_creds = format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().unwrap()
        );
        Self {
            server_config,
            user_creds,
        }
    }
}
