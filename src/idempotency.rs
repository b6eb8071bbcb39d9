//! Idempotency keys: a replayed request (same organisation, same key, same request) gets the
//! original response and changes nothing; the same key with a different request (or from
//! another caller) is refused. Keys are forgotten after `--idempotency-retention`.

use diesel::prelude::*;
use prescrypt_contract::limits::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_KEY_MAX_LEN};
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::store::schema::idempotency_keys;
use crate::store::{DbConnection, on_backend, update_where};

/// A validated `Idempotency-Key` header value: 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<Self, AppError> {
        if (1..=IDEMPOTENCY_KEY_MAX_LEN).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_graphic())
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(AppError::invalid(
                "invalid-field",
                IDEMPOTENCY_KEY_HEADER,
                format!(
                    "an Idempotency-Key is 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an earlier use of the key says.
#[derive(Debug)]
pub enum Earlier {
    None,
    Replay { status: u16, body: String },
}

/// Claims the key for this request inside the caller's transaction. On PostgreSQL the
/// `(org, key)` primary key does the work across processes: a placeholder row is inserted, a
/// concurrent request with the same key waits on the unique index until this transaction ends,
/// then finds the committed response and replays it. On SQLite a write transaction excludes
/// every other writer, so looking the key up is enough and [`record`] inserts the row whole.
/// `Earlier::None` means this transaction owns the key and must [`record`] its response.
pub fn claim(
    conn: &mut DbConnection,
    org: &str,
    key: &IdempotencyKey,
    request_hash: &str,
    now: chrono::NaiveDateTime,
) -> Result<Earlier, AppError> {
    if let DbConnection::Sqlite(_) = conn {
        return lookup(conn, org, key, request_hash);
    }
    let placeholder = (
        idempotency_keys::org.eq(org),
        idempotency_keys::key.eq(key.as_str()),
        idempotency_keys::request_hash.eq(request_hash),
        idempotency_keys::response_status.eq(0),
        idempotency_keys::response_body.eq(""),
        idempotency_keys::created_at.eq(now),
    );
    let insert = diesel::insert_into(idempotency_keys::table)
        .values(placeholder)
        .on_conflict_do_nothing();
    let inserted = on_backend!(conn, |c| insert.execute(c)?);
    if inserted == 1 {
        return Ok(Earlier::None);
    }
    match lookup(conn, org, key, request_hash)? {
        Earlier::Replay { status: 0, .. } => Err(AppError::Unavailable(
            "a request with this Idempotency-Key is still in progress".into(),
        )),
        earlier => Ok(earlier),
    }
}

pub fn lookup(
    conn: &mut DbConnection,
    org: &str,
    key: &IdempotencyKey,
    request_hash: &str,
) -> Result<Earlier, AppError> {
    let query = idempotency_keys::table
        .filter(idempotency_keys::org.eq(org))
        .filter(idempotency_keys::key.eq(key.as_str()))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_status,
            idempotency_keys::response_body,
        ));
    let found: Option<(String, i32, String)> = on_backend!(conn, |c| query.first(c).optional()?);
    match found {
        None => Ok(Earlier::None),
        Some((hash, status, body)) => {
            if bool::from(hash.as_bytes().ct_eq(request_hash.as_bytes())) {
                Ok(Earlier::Replay {
                    status: u16::try_from(status).unwrap_or(200),
                    body,
                })
            } else {
                Err(AppError::IdempotencyKeyReused)
            }
        }
    }
}

/// Stores the response of the request that [`claim`]ed the key (on SQLite: the whole row, in
/// one insert; an UPDATE would be parsed again every time, diesel never caches them).
pub fn record(
    conn: &mut DbConnection,
    org: &str,
    key: &IdempotencyKey,
    request_hash: &str,
    now: chrono::NaiveDateTime,
    status: u16,
    body: &str,
) -> Result<(), AppError> {
    if let DbConnection::Sqlite(sqlite) = conn {
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::org.eq(org),
                idempotency_keys::key.eq(key.as_str()),
                idempotency_keys::request_hash.eq(request_hash),
                idempotency_keys::response_status.eq(i32::from(status)),
                idempotency_keys::response_body.eq(body),
                idempotency_keys::created_at.eq(now),
            ))
            .execute(sqlite)?;
        return Ok(());
    }
    let update = update_where(
        &idempotency_keys::table,
        idempotency_keys::org
            .eq(org)
            .and(idempotency_keys::key.eq(key.as_str())),
        (
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_body.eq(body),
        ),
    );
    let updated = on_backend!(conn, |c| update.execute(c)?);
    if updated == 1 {
        Ok(())
    } else {
        Err(AppError::Internal(
            "the claimed idempotency key is gone".into(),
        ))
    }
}

/// Forgets the keys (and the responses kept for replay, which carry patient data) claimed before
/// `before`; how many.
pub fn prune(conn: &mut DbConnection, before: chrono::NaiveDateTime) -> Result<usize, AppError> {
    let delete =
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)));
    Ok(on_backend!(conn, |c| delete.execute(c)?))
}
