//! Expiry: lazily when a prescription is loaded, and the periodic sweep.

use chrono::NaiveDateTime;
use serde_json::json;

use super::{Loaded, save, system, with_items};
use crate::audit;
use crate::domain::Status;
use crate::domain::machine::{self, Event};
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::prescriptions as rows;

/// Expires the prescription if its time is up and it is still active; whether it did.
pub(super) fn expire_if_due(
    conn: &mut DbConnection,
    loaded: &mut Loaded,
    at: NaiveDateTime,
) -> Result<bool, AppError> {
    let status = loaded.status();
    if at < loaded.row.expires_at || !machine::is_active(status) {
        return Ok(false);
    }
    let to = machine::next(status, Event::Expire)
        .map_err(|_| AppError::illegal("expire", status.to_string()))?;
    loaded.map_items(machine::expire_item);
    save(conn, loaded, to, at)?;
    audit::append(
        conn,
        &system(),
        "expired",
        Some(&loaded.row.uuid),
        &json!({"from": status.code(), "to": to.code()}),
        at,
    )?;
    Ok(true)
}

/// How long a used or expired prepared prescription is kept: a prescriber's system that retries
/// a signed create within it gets the prescription it issued back.
const KEEP_PREPARED: chrono::Duration = chrono::Duration::hours(24);

/// Expires every prescription whose time is up (the periodic sweep) and forgets prepared
/// prescriptions past [`KEEP_PREPARED`]; returns how many prescriptions expired.
pub fn sweep_expired(
    conn: &mut DbConnection,
    at: NaiveDateTime,
    limit: i64,
) -> Result<usize, AppError> {
    crate::store::signatures::prune_prepared(conn, at - KEEP_PREPARED)?;
    let active: Vec<Status> = Status::ALL
        .iter()
        .copied()
        .filter(|s| machine::is_active(*s))
        .collect();
    let mut due = rows::lock_due(conn, &active, at, limit)?;
    due.sort_by_key(|row| audit::chain_of(Some(&row.uuid), ""));
    let mut expired = 0;
    for row in due {
        let mut loaded = with_items(conn, row)?;
        if expire_if_due(conn, &mut loaded, at)? {
            expired += 1;
        }
    }
    Ok(expired)
}
