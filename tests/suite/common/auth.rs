//! Bearer tokens for the tests of secured servers: one HS256 secret, issuer
//! and audience, a verifier for the server, tokens for callers.

use complaint_ledger::security::tokens::TokenVerifier;

pub const SECRET: &str = "a-test-secret-of-at-least-32-bytes-0123456789";
pub const ISSUER: &str = "https://sso.example.test";
pub const AUDIENCE: &str = "complaint-ledger";

/// The server's verifier, its secret written into `dir`.
pub fn verifier(dir: &std::path::Path) -> TokenVerifier {
    let path = dir.join("jwt.secret");
    std::fs::write(&path, SECRET).unwrap();
    TokenVerifier::new("HS256", &path, ISSUER, AUDIENCE).unwrap()
}

#[derive(serde::Serialize)]
pub struct Claims<'a> {
    pub sub: &'a str,
    pub iss: &'a str,
    pub aud: &'a str,
    pub exp: u64,
    pub roles: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_line: Option<&'a str>,
    pub permissions: Vec<&'a str>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn token_with(claims: &Claims<'_>, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A valid token for ten minutes.
pub fn token(sub: &str, roles: &[&str], line: Option<&str>, permissions: &[&str]) -> String {
    token_with(
        &Claims {
            sub,
            iss: ISSUER,
            aud: AUDIENCE,
            exp: now() + 600,
            roles: roles.to_vec(),
            business_line: line,
            permissions: permissions.to_vec(),
        },
        SECRET,
    )
}

/// A request carrying a bearer token.
pub fn bearer<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}
