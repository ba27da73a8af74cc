//! The benchmark's credentials, and what checking one costs.
//!
//! Why: production callers send a JWT with every request, so the benchmark
//! does too — the ledger runs with EdDSA bearer-token authentication (the
//! default algorithm), a fresh key pair per run, and every client sends one
//! token (roles service, supervisor and ops; business line `qidian`, the
//! benchmark cases' line). The server keeps a verified token until it
//! expires (`security::tokens`), so under load the check costs what a kept
//! token costs; [`measure`] times both that and a token the server has not
//! seen, in process, for the report.

use base64::Engine;
use complaint_ledger::security::tokens::TokenVerifier;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};

/// The issuer and audience of the benchmark's tokens.
const ISSUER: &str = "bench-issuer";
const AUDIENCE: &str = "complaint-ledger";

/// Adds the benchmark's bearer token to every request of a client.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// A key pair for the server and a token for the clients.
pub struct Credentials {
    public_key_file: PathBuf,
    pub bearer: Bearer,
}

impl Credentials {
    /// A fresh key pair in `dir` and a token valid for a day.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        let (signing, public_key_file) = write_key_pair(dir, "bench-server-jwt")?;
        let token = sign(
            &signing,
            serde_json::json!({
                "sub": "bench-client",
                "iss": ISSUER,
                "aud": AUDIENCE,
                "exp": jsonwebtoken::get_current_timestamp() + 86_400,
                "roles": ["service", "supervisor", "ops"],
                "business_line": "qidian",
            }),
        )?;
        Ok(Self {
            public_key_file,
            bearer: Bearer(format!("Bearer {token}").parse()?),
        })
    }

    /// The server's options for checking the token.
    pub fn server_args(&self) -> Vec<String> {
        let file = self.public_key_file.to_string_lossy();
        [
            "--jwt-key-file",
            &file,
            "--jwt-algorithm",
            "EdDSA",
            "--jwt-issuer",
            ISSUER,
            "--jwt-audience",
            AUDIENCE,
        ]
        .map(String::from)
        .to_vec()
    }
}

/// Microseconds per check.
#[derive(Debug, Clone, Copy)]
pub struct TokenCheck {
    pub new_token_us: f64,
    pub kept_token_us: f64,
}

/// Distinct tokens checked for the first figure.
const TOKENS: usize = 2_000;
/// Checks of one token for the second.
const REPEATS: usize = 20_000;

/// A fresh Ed25519 key pair: the key to sign tokens with, and the public key
/// written as PEM to `<dir>/<name>.pub` (PKCS#8 private, SPKI public: a
/// fixed DER prefix before the 32 key bytes, RFC 8410).
fn write_key_pair(dir: &Path, name: &str) -> anyhow::Result<(jsonwebtoken::EncodingKey, PathBuf)> {
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let pem = |label: &str, prefix: &[u8], bytes: [u8; 32]| {
        let der = [prefix, &bytes[..]].concat();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
    };
    let private = pem(
        "PRIVATE KEY",
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ],
        key.to_bytes(),
    );
    let public = pem(
        "PUBLIC KEY",
        &[
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ],
        key.verifying_key().to_bytes(),
    );
    let public_path = dir.join(format!("{name}.pub"));
    std::fs::write(&public_path, public)?;
    let signing = jsonwebtoken::EncodingKey::from_ed_pem(private.as_bytes())?;
    Ok((signing, public_path))
}

/// An EdDSA-signed token with `claims`.
fn sign(key: &jsonwebtoken::EncodingKey, claims: serde_json::Value) -> anyhow::Result<String> {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    Ok(jsonwebtoken::encode(&header, &claims, key)?)
}

/// Measures both figures; key files go into `dir`.
pub fn measure(dir: &Path) -> anyhow::Result<TokenCheck> {
    let (signing, public_path) = write_key_pair(dir, "bench-check-jwt")?;
    let verifier =
        TokenVerifier::new("EdDSA", &public_path, ISSUER, AUDIENCE).map_err(anyhow::Error::msg)?;
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let tokens = (0..TOKENS)
        .map(|i| {
            sign(
                &signing,
                serde_json::json!({
                    "sub": format!("bench-service-{i}"),
                    "iss": ISSUER,
                    "aud": AUDIENCE,
                    "exp": exp,
                    "roles": ["service"],
                    "business_line": "bench",
                }),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let t = Instant::now();
    for token in &tokens {
        verifier.verify(token).map_err(anyhow::Error::msg)?;
    }
    let new_token_us = t.elapsed().as_secs_f64() * 1e6 / TOKENS as f64;
    let t = Instant::now();
    for _ in 0..REPEATS {
        verifier.verify(&tokens[0]).map_err(anyhow::Error::msg)?;
    }
    let kept_token_us = t.elapsed().as_secs_f64() * 1e6 / REPEATS as f64;
    Ok(TokenCheck {
        new_token_us,
        kept_token_us,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_generated_key_pair_signs_tokens_the_server_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let (signing, public_path) = super::write_key_pair(dir.path(), "k").unwrap();
        let verifier = super::TokenVerifier::new("EdDSA", &public_path, "i", "a").unwrap();
        let claims = serde_json::json!({
            "sub": "s", "iss": "i", "aud": "a",
            "exp": jsonwebtoken::get_current_timestamp() + 60, "roles": ["auditor"],
        });
        let token = super::sign(&signing, claims.clone()).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().actor, "s");
        // Another key pair's token is refused.
        let other = tempfile::tempdir().unwrap();
        let (other_key, _) = super::write_key_pair(other.path(), "k").unwrap();
        let forged = super::sign(&other_key, claims).unwrap();
        assert!(verifier.verify(&forged).is_err());
    }
}
