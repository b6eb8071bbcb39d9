//! Idempotency keys: a replayed request (same organisation, same key, same request) gets the
//! original response and changes nothing; the same key with a different request is refused.

use diesel::prelude::*;
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::schema::idempotency_keys;

/// A validated `Idempotency-Key` header value: 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<Self, AppError> {
        if (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(AppError::invalid(
                "invalid-field",
                "Idempotency-Key",
                "an Idempotency-Key is 1 to 128 visible ASCII characters",
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

pub fn lookup(
    conn: &mut DbConnection,
    org: &str,
    key: &IdempotencyKey,
    request_hash: &str,
) -> Result<Earlier, AppError> {
    let found: Option<(String, i32, String)> = idempotency_keys::table
        .filter(idempotency_keys::org.eq(org))
        .filter(idempotency_keys::key.eq(key.as_str()))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_status,
            idempotency_keys::response_body,
        ))
        .first(conn)
        .optional()?;
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

pub fn record(
    conn: &mut DbConnection,
    org: &str,
    key: &IdempotencyKey,
    request_hash: &str,
    status: u16,
    body: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::org.eq(org),
            idempotency_keys::key.eq(key.as_str()),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_body.eq(body),
            idempotency_keys::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
