//! Prescriber keys: a prescriber enrols Ed25519 public keys bound to their `sub` and `org`,
//! revokes them (owner or an admin of the organisation), and everyone reads the key set.
//! Private keys never reach the service; enrolment and revocation are audited.

use chrono::NaiveDateTime;
use prescrypt_contract::views::{PrescriberJwk, PrescriberKey, PrescriberKeySet, PublicJwk};
use serde_json::json;

use crate::audit;
use crate::auth::{Principal, Role};
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::signatures::{self as rows, KeyRow};

/// Whether [`enrol`] stored a new key or found the caller's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolled {
    New,
    AlreadyYours,
}

impl KeyRow {
    pub fn view(&self) -> PrescriberKey {
        PrescriberKey {
            kid: self.kid.clone(),
            sub: self.sub.clone(),
            org: self.org.clone(),
            created_at: self.created_at.and_utc(),
            revoked_at: self.revoked_at.map(|at| at.and_utc()),
        }
    }

    fn jwk(&self) -> PrescriberJwk {
        PrescriberJwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: self.x.clone(),
            alg: "EdDSA".to_owned(),
            use_: "sig".to_owned(),
            key: self.view(),
        }
    }

    fn owned_by(&self, who: &Principal) -> bool {
        self.sub == who.sub && self.org == who.org
    }

    /// The Ed25519 key the signatures are checked with.
    pub fn verifying_key(&self) -> Result<ed25519_dalek::VerifyingKey, AppError> {
        let jwk = PublicJwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: self.x.clone(),
            d: None,
        };
        let bytes = jwk
            .ed25519_bytes()
            .map_err(|e| AppError::Internal(format!("stored prescriber key {}: {e}", self.kid)))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|e| AppError::Internal(format!("stored prescriber key {}: {e}", self.kid)))
    }
}

/// `POST /api/v1/prescriber-keys`: the caller's new key (or their own, enrolled before).
pub fn enrol(
    conn: &mut DbConnection,
    who: &Principal,
    jwk: &PublicJwk,
    at: NaiveDateTime,
) -> Result<(PrescriberKey, Enrolled), AppError> {
    who.require(Role::Prescriber, "enrol prescriber keys")?;
    let bytes = jwk.ed25519_bytes().map_err(|detail| {
        let field = format!("jwk.{}", detail.split(':').next().unwrap_or("x"));
        AppError::invalid("invalid-jwk", field, detail)
    })?;
    // A point not on the curve (or of small order) could never verify anything.
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .ok()
        .filter(|key| !key.is_weak())
        .ok_or_else(|| AppError::invalid("invalid-jwk", "jwk.x", "x: not an Ed25519 public key"))?;
    let canonical = PublicJwk::ed25519(&bytes);
    let kid = canonical.thumbprint();
    if let Some(existing) = rows::find_key(conn, &kid)? {
        return if !existing.owned_by(who) {
            Err(AppError::Conflict {
                code: "prescriber-key-taken",
                detail: "this public key is enrolled by another prescriber; generate a new key"
                    .to_owned(),
            })
        } else if existing.revoked_at.is_some() {
            Err(AppError::Conflict {
                code: "prescriber-key-revoked",
                detail: format!("key {kid} was revoked; a revoked key cannot be enrolled again"),
            })
        } else {
            Ok((existing.view(), Enrolled::AlreadyYours))
        };
    }
    let row = KeyRow {
        kid: kid.clone(),
        sub: who.sub.clone(),
        org: who.org.clone(),
        x: canonical.x,
        created_at: at,
        revoked_at: None,
    };
    rows::insert_key(conn, &row)?;
    audit::append(
        conn,
        who,
        "prescriber-key-enrolled",
        None,
        &json!({"kid": kid}),
        at,
    )?;
    Ok((row.view(), Enrolled::New))
}

/// `DELETE /api/v1/prescriber-keys/{kid}`: by its owner or an admin of its organisation; anyone
/// else gets 404, as for a key that does not exist. Revoking twice keeps the first time.
pub fn revoke(
    conn: &mut DbConnection,
    who: &Principal,
    kid: &str,
    at: NaiveDateTime,
) -> Result<PrescriberKey, AppError> {
    let mut key = rows::find_key(conn, kid)?
        .filter(|key| key.owned_by(who) || (who.role == Role::Admin && who.org == key.org))
        .ok_or(AppError::NotFound)?;
    if key.revoked_at.is_none() {
        rows::revoke_key(conn, kid, at)?;
        key.revoked_at = Some(at);
        audit::append(
            conn,
            who,
            "prescriber-key-revoked",
            None,
            &json!({"kid": kid, "owner": key.sub, "org": key.org}),
            at,
        )?;
    }
    Ok(key.view())
}

/// `GET /api/v1/prescriber-keys.json`: every key, revoked ones included.
pub fn key_set(conn: &mut DbConnection) -> Result<PrescriberKeySet, AppError> {
    Ok(PrescriberKeySet {
        keys: rows::all_keys(conn)?.iter().map(KeyRow::jwk).collect(),
    })
}

/// The caller's own key `kid`, good at `at`, or a 422 naming `field`. Someone else's key is
/// "unknown", not "forbidden": whose keys exist is no business of the caller.
pub(super) fn usable_key(
    conn: &mut DbConnection,
    who: &Principal,
    kid: &str,
    at: NaiveDateTime,
    field: &str,
) -> Result<KeyRow, AppError> {
    let key = rows::find_key(conn, kid)?
        .filter(|key| key.owned_by(who))
        .ok_or_else(|| {
            AppError::refused(
                "unknown-prescriber-key",
                field,
                format!("{kid} is not one of your enrolled keys"),
            )
        })?;
    if !prescrypt_contract::signed::key_valid_at(key.revoked_at.map(|r| r.and_utc()), at.and_utc())
    {
        return Err(AppError::refused(
            "prescriber-key-revoked",
            field,
            format!("key {kid} is revoked"),
        ));
    }
    Ok(key)
}
