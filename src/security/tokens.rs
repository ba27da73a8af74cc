//! Bearer tokens: a JWT in `authorization: Bearer …`, checked for signature,
//! issuer, audience and expiry with `jsonwebtoken`, and turned into a
//! [`Caller`]. Claims: `sub` (the actor), `roles` (agent, supervisor,
//! auditor, ops, service), `business_line` (required for agent and service),
//! `permissions` (`pii:read`).

use super::roles::{Caller, Role, PII_READ};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// How tokens are checked.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
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
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    business_line: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
}

impl TokenVerifier {
    /// `algorithm`: HS256 (the file holds the shared secret), EdDSA, RS256 or
    /// ES256 (the file holds the PEM public key).
    pub fn new(
        algorithm: &str,
        key_file: &Path,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, String> {
        let bytes = std::fs::read(key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
        let (alg, key) = match algorithm {
            "HS256" => {
                let secret = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
                if secret.len() < 32 {
                    return Err("an HS256 secret must be at least 32 bytes".into());
                }
                (Algorithm::HS256, DecodingKey::from_secret(&secret))
            }
            "EdDSA" => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_pem(&bytes).map_err(|e| e.to_string())?,
            ),
            "RS256" => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(&bytes).map_err(|e| e.to_string())?,
            ),
            "ES256" => (
                Algorithm::ES256,
                DecodingKey::from_ec_pem(&bytes).map_err(|e| e.to_string())?,
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
        validation.leeway = 30;
        Ok(Self { key, validation })
    }

    /// The caller a bearer token names, or why it does not.
    pub fn verify(&self, token: &str) -> Result<Caller, String> {
        let data = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| format!("invalid token: {e}"))?;
        let c = data.claims;
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
        Ok(Caller {
            actor: c.sub,
            roles,
            business_line: line,
            pii_read: c.permissions.iter().any(|p| p == PII_READ),
            development: false,
        })
    }
}
