//! Signed checkpoints: the state of the audit log (every chain's head seq and hash, and the
//! time) signed by the service's Ed25519 signing key, appended to a file outside the database
//! and published at `GET /api/v1/audit/checkpoints`. Anyone who kept a checkpoint can later prove
//! that the log still extends it ([`super::verify_extends`]): an insider who can write the
//! database can recompute every hash, but cannot sign a checkpoint for the rewritten log in the
//! past, nor take back the copies others hold.
//!
//! A checkpoint is one JSON line (RFC 8785 canonical form):
//! `{"at":"…Z","chains":[{"chain":1,"hash":"…","seq":12},…],"log":"prescrypt-audit-v1","signature":"…"}`.
//! `signature` is a compact JWS with a detached payload (RFC 7515 appendix F,
//! `header..signature`, `alg` EdDSA, `kid` = the service's signing key id): the payload is the
//! canonical JSON of the line without `signature`. The file format is documented in
//! docs/audit-checkpoints.md.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use data_encoding::BASE64URL_NOPAD;
use diesel::prelude::*;
use ed25519_dalek::{Signature, VerifyingKey};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use serde::{Deserialize, Serialize};

use super::CHAINS;
use crate::error::AppError;
use crate::keys::NamedKey;
use crate::store::DbConnection;
use crate::store::schema::{audit_checkpoint, audit_head};

/// The `log` every checkpoint names: what it is a checkpoint of, and the format's version.
pub const LOG: &str = "prescrypt-audit-v1";

/// The most checkpoints one `GET /api/v1/audit/checkpoints` returns.
pub const MAX_PAGE: i64 = 1000;

/// One chain's head at the time of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub chain: i32,
    /// How many entries the chain had (0: none).
    pub seq: i64,
    /// The hash of entry `seq` (64 zeros when the chain is empty).
    pub hash: String,
}

/// The signed content of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always [`LOG`].
    pub log: String,
    /// When the heads were read: RFC 3339, UTC, microseconds.
    pub at: String,
    /// Every chain's head, in chain order.
    pub chains: Vec<ChainHead>,
}

/// A checkpoint with its signature, as one line of the checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// A compact JWS with a detached payload: `header..signature`.
    pub signature: String,
}

/// Why a checkpoint is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not a checkpoint: {0}")]
    Malformed(String),
    #[error("signed by key {0}, which is not one of the service's keys")]
    UnknownKey(String),
    #[error("the signature does not verify (forged or altered)")]
    BadSignature,
}

impl SignedCheckpoint {
    /// Signs `checkpoint` with `key` (the service's active signing key).
    pub fn sign(checkpoint: Checkpoint, key: &NamedKey) -> Result<Self, AppError> {
        let jws = crate::signing::sign_jws(&checkpoint, key)?;
        let mut parts = jws.split('.');
        let (Some(header), Some(_payload), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(AppError::Internal("a JWS has three parts".into()));
        };
        Ok(Self {
            checkpoint,
            signature: format!("{header}..{signature}"),
        })
    }

    /// The JSON object: the checkpoint's fields and `signature`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.checkpoint).unwrap_or_default();
        if let serde_json::Value::Object(fields) = &mut value {
            fields.insert("signature".into(), self.signature.clone().into());
        }
        value
    }

    /// The canonical one-line form (no newline).
    pub fn to_line(&self) -> Result<String, AppError> {
        crate::signing::canonical_json(&self.to_json())
    }

    /// Reads the JSON object form; the signature is not checked here ([`Self::verify`]).
    pub fn from_json(value: serde_json::Value) -> Result<Self, Refused> {
        let serde_json::Value::Object(mut fields) = value else {
            return Err(Refused::Malformed("not a JSON object".into()));
        };
        let Some(serde_json::Value::String(signature)) = fields.remove("signature") else {
            return Err(Refused::Malformed("no \"signature\" string".into()));
        };
        let checkpoint: Checkpoint = serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|e| Refused::Malformed(e.to_string()))?;
        if checkpoint.log != LOG {
            return Err(Refused::Malformed(format!(
                "\"log\" is {:?}, not {LOG:?}",
                checkpoint.log
            )));
        }
        chrono::DateTime::parse_from_rfc3339(&checkpoint.at)
            .map_err(|e| Refused::Malformed(format!("\"at\" is not RFC 3339: {e}")))?;
        let mut previous = 0;
        for head in &checkpoint.chains {
            if head.chain <= previous || head.chain > CHAINS {
                return Err(Refused::Malformed(format!(
                    "chains must be ascending within 1..={CHAINS}, found {}",
                    head.chain
                )));
            }
            if head.seq < 0 || head.hash.len() != 64 {
                return Err(Refused::Malformed(format!(
                    "chain {}: a head is a seq >= 0 and a 64-digit hash",
                    head.chain
                )));
            }
            previous = head.chain;
        }
        Ok(Self {
            checkpoint,
            signature,
        })
    }

    /// Checks the signature against the service's keys.
    pub fn verify(&self, keys: &VerifyingKeys) -> Result<(), Refused> {
        let mut parts = self.signature.split('.');
        let (Some(header_b64), Some(""), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refused::Malformed(
                "\"signature\" is not a detached compact JWS (header..signature)".into(),
            ));
        };
        let header: serde_json::Value = BASE64URL_NOPAD
            .decode(header_b64.as_bytes())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| Refused::Malformed("unreadable JWS header".into()))?;
        if header["alg"] != "EdDSA" {
            return Err(Refused::Malformed(format!(
                "JWS alg is {}, not EdDSA",
                header["alg"]
            )));
        }
        let kid = header["kid"]
            .as_str()
            .ok_or_else(|| Refused::Malformed("JWS header without kid".into()))?;
        let key = keys
            .0
            .get(kid)
            .ok_or_else(|| Refused::UnknownKey(kid.to_owned()))?;
        let payload = crate::signing::canonical_json(&self.checkpoint)
            .map_err(|e| Refused::Malformed(e.to_string()))?;
        let message = format!(
            "{header_b64}.{}",
            BASE64URL_NOPAD.encode(payload.as_bytes())
        );
        let signature = BASE64URL_NOPAD
            .decode(signature_b64.as_bytes())
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or(Refused::BadSignature)?;
        key.verify_strict(message.as_bytes(), &signature)
            .map_err(|_| Refused::BadSignature)
    }
}

/// The public keys checkpoints are verified with, by key id: the service's published JWKS.
#[derive(Debug, Default)]
pub struct VerifyingKeys(HashMap<String, VerifyingKey>);

impl VerifyingKeys {
    /// The Ed25519 keys of a JWK set (others are ignored).
    pub fn from_jwks(jwks: &JwkSet) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let (Some(kid), AlgorithmParameters::OctetKeyPair(okp)) =
                (&jwk.common.key_id, &jwk.algorithm)
            else {
                continue;
            };
            if okp.curve != EllipticCurve::Ed25519 {
                continue;
            }
            let bytes: [u8; 32] = BASE64URL_NOPAD
                .decode(okp.x.trim_end_matches('=').as_bytes())?
                .try_into()
                .map_err(|_| anyhow::anyhow!("JWK {kid}: x is not 32 bytes"))?;
            keys.insert(kid.clone(), VerifyingKey::from_bytes(&bytes)?);
        }
        if keys.is_empty() {
            anyhow::bail!("the JWK set has no Ed25519 key with a kid");
        }
        Ok(Self(keys))
    }

    /// A JWKS file, as served at `/.well-known/jwks.json`.
    pub fn from_jwks_file(path: &Path) -> anyhow::Result<Self> {
        let jwks: JwkSet = serde_json::from_slice(&fs::read(path)?)
            .map_err(|e| anyhow::anyhow!("{}: not a JWK set: {e}", path.display()))?;
        Self::from_jwks(&jwks)
    }
}

/// Every chain's head, read in one statement (so one consistent state of the log).
pub fn heads(conn: &mut DbConnection) -> Result<Vec<ChainHead>, AppError> {
    let rows: Vec<(i32, i64, String)> = audit_head::table
        .order(audit_head::id.asc())
        .select((audit_head::id, audit_head::seq, audit_head::hash))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(chain, seq, hash)| ChainHead { chain, seq, hash })
        .collect())
}

/// The checkpoint of `heads` read at `at`.
pub fn checkpoint_of(heads: Vec<ChainHead>, at: chrono::DateTime<Utc>) -> Checkpoint {
    Checkpoint {
        log: LOG.to_owned(),
        at: at.to_rfc3339_opts(SecondsFormat::Micros, true),
        chains: heads,
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_checkpoint)]
struct NewRow<'a> {
    at: NaiveDateTime,
    signed: &'a str,
}

/// Stores a checkpoint for `GET /api/v1/audit/checkpoints`.
pub fn publish(conn: &mut DbConnection, signed: &SignedCheckpoint) -> Result<(), AppError> {
    let at = chrono::DateTime::parse_from_rfc3339(&signed.checkpoint.at)
        .map_err(|e| AppError::Internal(e.to_string()))?
        .naive_utc();
    diesel::insert_into(audit_checkpoint::table)
        .values(NewRow {
            at,
            signed: &signed.to_line()?,
        })
        .execute(conn)?;
    Ok(())
}

/// Published checkpoints after `after` (an id from an earlier page), oldest first, at most `limit`.
pub fn published(
    conn: &mut DbConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, serde_json::Value)>, AppError> {
    let rows: Vec<(i64, String)> = audit_checkpoint::table
        .filter(audit_checkpoint::id.gt(after))
        .order(audit_checkpoint::id.asc())
        .limit(limit.clamp(1, MAX_PAGE))
        .select((audit_checkpoint::id, audit_checkpoint::signed))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, line)| {
            serde_json::from_str(&line)
                .map(|value| (id, value))
                .map_err(|e| AppError::Internal(format!("stored checkpoint {id}: {e}")))
        })
        .collect()
}

/// Appends one line to the checkpoint file (created 0600) and fsyncs it before returning.
pub fn append_to_file(path: &Path, signed: &SignedCheckpoint) -> anyhow::Result<()> {
    let mut line = signed.to_line()?;
    line.push('\n');
    let created = !path.exists();
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // One write of the whole line: concurrent appenders (O_APPEND) never interleave within it.
    file.write_all(line.as_bytes())?;
    file.sync_all()?;
    if created && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The new file's directory entry must survive a crash too.
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Reads a checkpoint file and checks every line's signature; the error names the line.
pub fn read_file(path: &Path, keys: &VerifyingKeys) -> anyhow::Result<Vec<Checkpoint>> {
    let file = fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut checkpoints = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let at_line = |why: String| anyhow::anyhow!("{} line {}: {why}", path.display(), index + 1);
        let value = serde_json::from_str(&line).map_err(|e| at_line(e.to_string()))?;
        let signed = SignedCheckpoint::from_json(value).map_err(|e| at_line(e.to_string()))?;
        signed.verify(keys).map_err(|e| at_line(e.to_string()))?;
        checkpoints.push(signed.checkpoint);
    }
    Ok(checkpoints)
}

/// Reads the heads, signs them with `key`, appends the checkpoint to `file` (outside the
/// database first: that is the copy an insider cannot rewrite) and publishes it.
pub fn take(
    conn: &mut DbConnection,
    key: &NamedKey,
    file: &Path,
    at: DateTime<Utc>,
) -> anyhow::Result<SignedCheckpoint> {
    let checkpoint = checkpoint_of(heads(conn)?, at);
    let signed = SignedCheckpoint::sign(checkpoint, key)?;
    append_to_file(file, &signed)?;
    publish(conn, &signed)?;
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::genesis_hash;

    fn signed(dir: &Path) -> (SignedCheckpoint, VerifyingKeys) {
        let ring = crate::keys::KeyRing::load_or_create(dir).unwrap();
        let heads = (1..=CHAINS)
            .map(|chain| ChainHead {
                chain,
                seq: 0,
                hash: genesis_hash(),
            })
            .collect();
        let signed =
            SignedCheckpoint::sign(checkpoint_of(heads, Utc::now()), ring.active()).unwrap();
        (
            signed,
            VerifyingKeys::from_jwks(&ring.jwks().unwrap()).unwrap(),
        )
    }

    #[test]
    fn a_checkpoint_round_trips_through_its_line_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (signed, keys) = signed(dir.path());
        let line = signed.to_line().unwrap();
        assert!(!line.contains('\n'));
        let back = SignedCheckpoint::from_json(serde_json::from_str(&line).unwrap()).unwrap();
        assert_eq!(back, signed);
        back.verify(&keys).unwrap();
    }

    #[test]
    fn an_altered_checkpoint_or_a_stranger_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (signed, keys) = signed(dir.path());
        let mut altered = signed.clone();
        altered.checkpoint.chains[0].seq = 1;
        assert!(matches!(altered.verify(&keys), Err(Refused::BadSignature)));
        let other = tempfile::tempdir().unwrap();
        let (_, stranger_keys) = self::signed(other.path());
        assert!(matches!(
            signed.verify(&stranger_keys),
            Err(Refused::UnknownKey(_))
        ));
    }

    #[test]
    fn the_file_is_created_owner_only_and_appended_to() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (signed, keys) = signed(&dir.path().join("keys"));
        let path = dir.path().join("checkpoints.jsonl");
        append_to_file(&path, &signed).unwrap();
        append_to_file(&path, &signed).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_file(&path, &keys).unwrap().len(), 2);
    }
}
