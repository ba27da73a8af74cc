//! Bearer tokens: a JWT in `authorization: Bearer …`, checked for signature,
//! issuer, audience and expiry with `jsonwebtoken`, and turned into a
//! [`Caller`]. Claims: `sub` (the actor), `roles` (agent, supervisor,
//! auditor, ops, service), `business_line` (required for agent and service),
//! `permissions` (`pii:read`).
//!
//! Verified tokens are kept until they expire: a service sends the same
//! token with every request, and checking an EdDSA signature costs about
//! 55 µs of CPU (measured on the development machine) — more than the rest
//! of a single-event append's handling. A kept token is the same string,
//! already verified with the same key and rules; it is answered from the
//! cache only before its `exp` (without the leeway a fresh check allows, so
//! never more permissively than one), and refusals are never kept.

use super::roles::{Caller, Role, PII_READ};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Most verified tokens kept. Only tokens signed with the configured key get
/// in, typically well under 1 KB each: a few MB.
const KEPT_TOKENS: usize = 10_000;

/// A verified token's caller, and its `exp` (seconds since the epoch).
#[derive(Clone)]
struct Verified {
    caller: Caller,
    exp: u64,
}

/// How tokens are checked.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    /// Shared by clones.
    verified: Arc<Mutex<HashMap<String, Verified>>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("iss", &self.validation.iss)
            .field("aud", &self.validation.aud)
            .finish()
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    business_line: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    /// Issued at: a token from the future (beyond the leeway) is refused.
    #[serde(default)]
    iat: Option<u64>,
}

/// Seconds of clock difference allowed between the token's issuer and this
/// server, for `exp`, `nbf` and `iat` alike.
const LEEWAY_SECONDS: u64 = 30;

impl TokenVerifier {
    /// `algorithm`: HS256 (the file holds the shared secret), EdDSA, RS256 or
    /// ES256 (the file holds the PEM public key).
    pub fn new(
        algorithm: &str,
        key_file: &Path,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, String> {
        let bytes = std::fs::read(key_file).map_err(|e| {
            format!(
                "the JWT verification key file {} cannot be read ({e}): mount or write the key there, or give it in COMPLAINT_LEDGER_JWT_KEY",
                key_file.display()
            )
        })?;
        Self::from_key(algorithm, &bytes, issuer, audience)
    }

    /// A verifier of tokens signed with `key`: the HS256 secret, or the PEM
    /// public key of the other algorithms.
    pub fn from_key(
        algorithm: &str,
        bytes: &[u8],
        issuer: &str,
        audience: &str,
    ) -> Result<Self, String> {
        let (alg, key) = match algorithm {
            "HS256" => {
                let secret = String::from_utf8_lossy(bytes).trim().as_bytes().to_vec();
                if secret.len() < 32 {
                    return Err("an HS256 secret must be at least 32 bytes".into());
                }
                (Algorithm::HS256, DecodingKey::from_secret(&secret))
            }
            "EdDSA" => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_pem(bytes).map_err(|e| e.to_string())?,
            ),
            "RS256" => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(bytes).map_err(|e| e.to_string())?,
            ),
            "ES256" => (
                Algorithm::ES256,
                DecodingKey::from_ec_pem(bytes).map_err(|e| e.to_string())?,
            ),
            other => {
                return Err(format!(
                    "unsupported JWT algorithm {other:?} (HS256, EdDSA, RS256, ES256)"
                ))
            }
        };
        if issuer.is_empty() || audience.is_empty() {
            return Err("JWT verification needs an issuer and an audience".into());
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        // A token valid from later (`nbf`) is not valid now.
        validation.validate_nbf = true;
        Ok(Self {
            key,
            validation,
            verified: Arc::default(),
        })
    }

    /// The caller a bearer token names, or why it does not.
    pub fn verify(&self, token: &str) -> Result<Caller, String> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(v) = self.kept().get(token) {
            if now < v.exp {
                return Ok(v.caller.clone());
            }
        }
        let v = self.check(token)?;
        let mut kept = self.kept();
        if kept.len() >= KEPT_TOKENS {
            kept.retain(|_, v| now < v.exp);
            if kept.len() >= KEPT_TOKENS {
                kept.clear();
            }
        }
        kept.insert(token.to_string(), v.clone());
        Ok(v.caller)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, Verified>> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signature, issuer, audience, expiry and claims, every time.
    fn check(&self, token: &str) -> Result<Verified, String> {
        let data = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| format!("invalid token: {e}"))?;
        let c = data.claims;
        let now = jsonwebtoken::get_current_timestamp();
        if c.iat.is_some_and(|iat| iat > now + LEEWAY_SECONDS) {
            return Err(format!(
                "invalid token: issued in the future (iat {} is {} s ahead of this server's clock)",
                c.iat.unwrap_or_default(),
                c.iat.unwrap_or_default() - now
            ));
        }
        if let Some(p) = crate::domain::ids::id_problem(&c.sub) {
            return Err(format!("the token's subject {p}"));
        }
        let mut roles = BTreeSet::new();
        for r in &c.roles {
            roles.insert(Role::parse(r).ok_or_else(|| format!("unknown role {r:?} in the token"))?);
        }
        if roles.is_empty() {
            return Err("the token grants no role".into());
        }
        let scoped = roles
            .iter()
            .any(|r| matches!(r, Role::Agent | Role::Service));
        let line = c.business_line.filter(|l| !l.is_empty());
        if scoped && line.is_none() {
            return Err("an agent or service token must name its business_line".into());
        }
        Ok(Verified {
            caller: Caller {
                actor: c.sub,
                roles,
                business_line: line,
                pii_read: c.permissions.iter().any(|p| p == PII_READ),
                development: false,
            },
            exp: c.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const SECRET: &str = "a-unit-test-secret-of-at-least-32-bytes";

    fn verifier() -> TokenVerifier {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, SECRET).unwrap();
        TokenVerifier::new("HS256", &path, "iss", "aud").unwrap()
    }

    fn token(sub: &str, exp: u64) -> String {
        let claims = serde_json::json!({
            "sub": sub, "iss": "iss", "aud": "aud", "exp": exp, "roles": ["auditor"],
        });
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn token_with(extra: serde_json::Value) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = serde_json::json!({
            "sub": "auditor-1", "iss": "iss", "aud": "aud", "exp": now + 600, "roles": ["auditor"],
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn not_before_and_issued_at_are_checked_with_the_leeway_of_expiry() {
        let v = verifier();
        let now = jsonwebtoken::get_current_timestamp();
        for (claims, ok) in [
            (serde_json::json!({"nbf": now + 86_400}), false),
            (serde_json::json!({"nbf": now + LEEWAY_SECONDS + 60}), false),
            (serde_json::json!({"nbf": now + 10}), true),
            (serde_json::json!({"nbf": now - 60}), true),
            (serde_json::json!({"iat": now + 86_400}), false),
            (serde_json::json!({"iat": now + LEEWAY_SECONDS + 60}), false),
            (serde_json::json!({"iat": now + 10}), true),
            (serde_json::json!({"iat": now - 60}), true),
        ] {
            let t = token_with(claims.clone());
            let verdict = v.verify(&t);
            assert_eq!(verdict.is_ok(), ok, "{claims}: {verdict:?}");
            if !ok {
                // Never kept: the same token is checked afresh next time.
                assert!(!v.kept().contains_key(&t), "{claims}");
            }
        }
    }

    #[test]
    fn a_verified_token_is_kept_until_it_expires_and_refusals_never() {
        let v = verifier();
        let now = jsonwebtoken::get_current_timestamp();
        let t = token("auditor-1", now + 600);
        let caller = v.verify(&t).unwrap();
        assert_eq!(caller.actor, "auditor-1");
        assert_eq!(v.kept().get(&t).map(|k| k.exp), Some(now + 600));
        // Answered from the cache: the kept caller comes back as it is.
        v.kept().get_mut(&t).unwrap().caller.actor = "from-the-cache".into();
        assert_eq!(v.verify(&t).unwrap().actor, "from-the-cache");
        // Past its exp a kept token is checked afresh (and here refused:
        // expired beyond the leeway).
        let old = token("auditor-2", now - 100);
        v.kept().insert(
            old.clone(),
            Verified {
                caller: caller.clone(),
                exp: now - 1,
            },
        );
        assert!(v.verify(&old).unwrap_err().contains("invalid token"));
        // A refused token is not kept; nor is a forged one.
        let forged = format!("{}x", &t[..t.len() - 1]);
        assert!(v.verify(&forged).is_err());
        assert!(v.kept().get(&forged).is_none());
        // Clones share what is kept.
        assert!(v.clone().kept().contains_key(&t));
    }

    #[test]
    fn at_most_kept_tokens_are_kept_expired_ones_going_first() {
        let v = verifier();
        let now = jsonwebtoken::get_current_timestamp();
        let caller = v.verify(&token("a", now + 600)).unwrap();
        let kept = |exp| Verified {
            caller: caller.clone(),
            exp,
        };
        v.kept().clear();
        for i in 0..KEPT_TOKENS {
            let exp = if i % 2 == 0 { now - 1 } else { now + 600 };
            v.kept().insert(format!("t{i}"), kept(exp));
        }
        // Full: the expired half goes.
        v.verify(&token("b", now + 600)).unwrap();
        assert_eq!(v.kept().len(), KEPT_TOKENS / 2 + 1);
        // Full of live tokens: all go, the new one stays.
        for i in 0..KEPT_TOKENS {
            v.kept().insert(format!("u{i}"), kept(now + 600));
        }
        let c = token("c", now + 600);
        v.verify(&c).unwrap();
        assert_eq!(v.kept().len(), 1);
        assert!(v.kept().contains_key(&c));
    }
}
