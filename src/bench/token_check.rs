//! What checking a bearer token costs per request, measured in process.
//!
//! Why: the benchmark's servers run in development mode (no credentials), so
//! the load figures leave out the one per-request cost a production caller
//! adds: its JWT. This measures the server's own check
//! ([`TokenVerifier::verify`]) with an EdDSA key — the default algorithm —
//! for tokens it has not seen (signature, issuer, audience, expiry, claims)
//! and for one it verified before (kept until it expires).

use crate::security::tokens::TokenVerifier;
use base64::Engine;
use std::path::Path;
use std::time::Instant;

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

/// Writes a fresh Ed25519 key pair as PEM files into `dir` (PKCS#8 private,
/// SPKI public: a fixed DER prefix before the 32 key bytes, RFC 8410).
fn write_key_pair(dir: &Path) -> anyhow::Result<(Vec<u8>, std::path::PathBuf)> {
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
    let public_path = dir.join("bench-jwt.pub");
    std::fs::write(&public_path, public)?;
    Ok((private.into_bytes(), public_path))
}

/// Measures both figures; key files go into `dir`.
pub fn measure(dir: &Path) -> anyhow::Result<TokenCheck> {
    let (private_pem, public_path) = write_key_pair(dir)?;
    let verifier = TokenVerifier::new("EdDSA", &public_path, "bench-issuer", "complaint-ledger")
        .map_err(anyhow::Error::msg)?;
    let signing = jsonwebtoken::EncodingKey::from_ed_pem(&private_pem)?;
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let tokens = (0..TOKENS)
        .map(|i| {
            let claims = serde_json::json!({
                "sub": format!("bench-service-{i}"),
                "iss": "bench-issuer",
                "aud": "complaint-ledger",
                "exp": exp,
                "roles": ["service"],
                "business_line": "bench",
            });
            jsonwebtoken::encode(&header, &claims, &signing)
        })
        .collect::<Result<Vec<_>, _>>()?;
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
        let (private_pem, public_path) = super::write_key_pair(dir.path()).unwrap();
        let verifier = super::TokenVerifier::new("EdDSA", &public_path, "i", "a").unwrap();
        let signing = jsonwebtoken::EncodingKey::from_ed_pem(&private_pem).unwrap();
        let claims = serde_json::json!({
            "sub": "s", "iss": "i", "aud": "a",
            "exp": jsonwebtoken::get_current_timestamp() + 60, "roles": ["auditor"],
        });
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
            &claims,
            &signing,
        )
        .unwrap();
        assert_eq!(verifier.verify(&token).unwrap().actor, "s");
        // Another key pair's token is refused.
        let other = tempfile::tempdir().unwrap();
        let (other_pem, _) = super::write_key_pair(other.path()).unwrap();
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_pem(&other_pem).unwrap(),
        )
        .unwrap();
        assert!(verifier.verify(&forged).is_err());
    }
}
