//! Signed checkpoints: the ledger's commitment to its whole history.
//!
//! A checkpoint is a C2SP `tlog-checkpoint` (origin, tree size, base64 root
//! hash, and one extension line with the signing time) inside a C2SP
//! `signed-note`, signed with Ed25519. Standard transparency-log tools read
//! this form. Verification uses `ed25519-dalek`'s `verify_strict`, which
//! rejects the malleable and small-order signatures plain `verify` accepts.
//!
//! The signing key comes from configuration or is generated at first start
//! into the data directory, readable by its owner only. Its public half (a
//! signed-note verifier key, `name+id+base64`) is printed at start, written
//! beside it, and served by `GetCheckpoint`.

use base64::prelude::*;
use ed25519_dalek::{Signature, VerifyingKey};
use signed_note::{Note, Signer, StandardSigner, Verifier, VerifierList};
use std::path::{Path, PathBuf};
use tlog_tiles::checkpoint::Checkpoint;
use tlog_tiles::tlog::Hash;

/// File of the generated signing key in the data directory.
pub const KEY_FILE: &str = "checkpoint-signing.key";
/// File of its public verifier key, for convenience.
pub const PUBLIC_KEY_FILE: &str = "checkpoint-signing.pub";
/// Origin (and key name) of a ledger that configures none.
pub const DEFAULT_ORIGIN: &str = "complaint-ledger.local/ledger";

const ALG_ED25519: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("signing key: {0}")]
    Key(String),
    #[error("checkpoint is malformed: {0}")]
    Malformed(String),
    #[error("checkpoint signature does not verify with the given public key: {0}")]
    Signature(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Signs checkpoints for one log.
pub struct CheckpointSigner {
    signer: StandardSigner,
    origin: String,
    public_key: String,
}

impl CheckpointSigner {
    /// Loads the key from `key_file`, or from the data directory, or
    /// generates one there (owner-only permissions). The key's name is the
    /// log's origin; a key made for another origin is refused.
    pub fn load_or_generate(
        data_dir: &Path,
        key_file: Option<&Path>,
        origin: &str,
    ) -> Result<Self, CheckpointError> {
        if !signed_note::is_key_name_valid(origin) {
            return Err(CheckpointError::Key(format!(
                "origin {origin:?} cannot name a key: it must be non-empty, without spaces or '+'"
            )));
        }
        let path: PathBuf = key_file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| data_dir.join(KEY_FILE));
        let skey = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && key_file.is_none() => {
                let (skey, vkey) = signed_note::generate_key(&mut rand_core::OsRng, origin);
                write_private(&path, &skey)?;
                std::fs::write(data_dir.join(PUBLIC_KEY_FILE), format!("{vkey}\n"))?;
                tracing::info!(path = %path.display(), "generated a checkpoint signing key");
                skey
            }
            Err(e) => {
                return Err(CheckpointError::Key(format!(
                    "reading {}: {e}",
                    path.display()
                )))
            }
        };
        Self::from_skey(&skey, origin)
    }

    /// A signer from a signed-note private key (`PRIVATE+KEY+name+id+base64`).
    pub fn from_skey(skey: &str, origin: &str) -> Result<Self, CheckpointError> {
        let signer = StandardSigner::new(skey).map_err(|e| CheckpointError::Key(e.to_string()))?;
        if signer.name() != origin {
            return Err(CheckpointError::Key(format!(
                "the key is named {:?} but the log's origin is {origin:?}",
                signer.name()
            )));
        }
        // PRIVATE+KEY+name+id+base64: the base64 itself may contain '+'.
        let seed = skey
            .splitn(5, '+')
            .nth(4)
            .and_then(|b| BASE64_STANDARD.decode(b).ok())
            .filter(|k| k.len() == 33 && k[0] == ALG_ED25519)
            .ok_or_else(|| CheckpointError::Key("not an Ed25519 signed-note key".into()))?;
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed[1..].try_into().expect("32 bytes"));
        let public_key = signed_note::new_ed25519_verifier_key(origin, &sk.verifying_key());
        Ok(Self {
            signer,
            origin: origin.to_string(),
            public_key,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key auditors pin: `origin+keyid+base64(0x01 ‖ key)`.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Signs a checkpoint of `size` records with `root`, at `time` (RFC 3339).
    pub fn sign(&self, size: u64, root: [u8; 32], time: &str) -> Result<Vec<u8>, CheckpointError> {
        let extension = format!("time {time}\n");
        let cp = Checkpoint::new(&self.origin, size, Hash(root), &extension)
            .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        let mut note = Note::new(&cp.to_bytes(), &[])
            .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| CheckpointError::Key(e.to_string()))?;
        Ok(note.to_bytes())
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), CheckpointError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

/// A verifier key parsed for strict Ed25519 verification.
struct StrictVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl Verifier for StrictVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(sig) else {
            return false;
        };
        self.key
            .verify_strict(msg, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

fn parse_public_key(vkey: &str) -> Result<StrictVerifier, CheckpointError> {
    let bad = |why: &str| CheckpointError::Key(format!("public key {vkey:?}: {why}"));
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected name+keyid+base64"));
    };
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key id is not hex"))?;
    let raw = BASE64_STANDARD
        .decode(key_b64)
        .map_err(|_| bad("key is not base64"))?;
    if id_hex.len() != 8 || !signed_note::is_key_name_valid(name) {
        return Err(bad("malformed"));
    }
    if raw.len() != 33 || raw[0] != ALG_ED25519 {
        return Err(bad("not an Ed25519 key"));
    }
    if signed_note::key_id(name, &raw) != id {
        return Err(bad("key id does not match the key"));
    }
    let key = VerifyingKey::from_bytes(&raw[1..].try_into().expect("32 bytes"))
        .map_err(|_| bad("not a valid Ed25519 point"))?;
    Ok(StrictVerifier {
        name: name.to_string(),
        id,
        key,
    })
}

/// A checkpoint whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
    /// The `time` extension line, if present.
    pub time: Option<String>,
}

/// Verifies a signed checkpoint against a pinned public key (strictly), and
/// that it is the checkpoint of that key's log (origin = key name).
pub fn verify_checkpoint(
    signed: &[u8],
    public_key: &str,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let verifier = parse_public_key(public_key)?;
    let name = verifier.name.clone();
    let note = Note::from_bytes(signed).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| CheckpointError::Signature(e.to_string()))?;
    let cp = Checkpoint::from_bytes(note.text())
        .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    if cp.origin() != name {
        return Err(CheckpointError::Malformed(format!(
            "checkpoint of log {:?}, but the key is for {name:?}",
            cp.origin()
        )));
    }
    let time = cp
        .extension()
        .lines()
        .find_map(|l| l.strip_prefix("time "))
        .map(str::to_string);
    Ok(VerifiedCheckpoint {
        origin: cp.origin().to_string(),
        size: cp.size(),
        root: cp.hash().0,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_and_any_change_breaks_it() {
        let (skey, vkey) = signed_note::generate_key(&mut rand_core::OsRng, "example.org/log");
        let signer = CheckpointSigner::from_skey(&skey, "example.org/log").unwrap();
        assert_eq!(signer.public_key(), vkey);
        let note = signer.sign(42, [7; 32], "2026-11-22T20:00:00Z").unwrap();
        let text = String::from_utf8(note.clone()).unwrap();
        assert!(text.starts_with("example.org/log\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\ntime 2026-11-22T20:00:00Z\n\n— example.org/log "), "{text}");
        let cp = verify_checkpoint(&note, &vkey).unwrap();
        assert_eq!(
            (cp.size, cp.root, cp.time.as_deref()),
            (42, [7; 32], Some("2026-11-22T20:00:00Z"))
        );
        let forged = text.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            verify_checkpoint(forged.as_bytes(), &vkey),
            Err(CheckpointError::Signature(_))
        ));
        let (_, other) = signed_note::generate_key(&mut rand_core::OsRng, "example.org/log");
        assert!(verify_checkpoint(&note, &other).is_err());
        assert!(CheckpointSigner::from_skey(&skey, "another.org/log").is_err());
    }
}
