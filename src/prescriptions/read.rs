//! `GET /api/v1/prescriptions/{id}` and `…/history`: audited reads, with the read-only half a
//! replica can serve.

use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::views::{History, HistoryEvent, PrescriptionView};
use serde_json::json;

use chrono::NaiveDateTime;

use super::{Loaded, can_view, load, visible};
use crate::audit;
use crate::auth::Principal;
use crate::domain::machine;
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::prescriptions::{self as rows, Lock};

pub fn get(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let loaded = visible(conn, who, id, at)?;
    record_read(conn, who, &loaded.row.uuid, "viewed", at)?;
    full_view(conn, &loaded)
}

/// The prescription as a reader sees it: with the pharmacy's claim once claimed.
pub fn full_view(conn: &mut DbConnection, loaded: &Loaded) -> Result<PrescriptionView, AppError> {
    let mut view = loaded.view();
    view.claim = super::claim::recorded(conn, loaded)?;
    Ok(view)
}

/// The read-only half of [`get`] and [`history`], for a read replica: the prescription when the
/// caller may see it and nothing about it is due to change. `None` (not visible here, or due to
/// expire or to become ready) sends the request down the primary path, which also gives the
/// authoritative 404.
pub fn peek(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    at: NaiveDateTime,
) -> Result<Option<Loaded>, AppError> {
    let Some(loaded) = load(conn, id, Lock::None)? else {
        return Ok(None);
    };
    let due = (at >= loaded.row.expires_at && machine::is_active(loaded.status()))
        || (loaded.row.ready_at.is_some_and(|ready| ready <= at)
            && machine::next(loaded.status(), machine::Event::Ready).is_ok());
    Ok((can_view(who, &loaded.row) && !due).then_some(loaded))
}

/// Audits a read: one served here, or one that [`peek`] served from a replica (the chain lives on
/// the primary).
pub fn record_read(
    conn: &mut DbConnection,
    who: &Principal,
    prescription_uuid: &str,
    action: &str,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    audit::append(conn, who, action, Some(prescription_uuid), &json!({}), at)
}

pub fn history(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    at: NaiveDateTime,
) -> Result<History, AppError> {
    let loaded = visible(conn, who, id, at)?;
    record_read(conn, who, &loaded.row.uuid, "history-viewed", at)?;
    events(conn, &loaded.row.prescription_id)
}

/// Every event of every issue of the prescription `prescription_id` (compact), oldest first
/// (reads are audited but not listed).
pub fn events(conn: &mut DbConnection, prescription_id: &str) -> Result<History, AppError> {
    let mut events = Vec::new();
    for issue in rows::issues_of(conn, prescription_id)? {
        events.extend(
            audit::for_prescription(conn, &issue.uuid)?
                .into_iter()
                .filter(|entry| !entry.action.ends_with("viewed"))
                .map(|entry| HistoryEvent {
                    issue_number: issue.issue_number,
                    at: entry.at.and_utc(),
                    actor: entry.actor,
                    org: entry.org,
                    role: entry.role,
                    action: entry.action,
                    detail: serde_json::from_str(&entry.detail).unwrap_or(serde_json::Value::Null),
                }),
        );
    }
    // Stable: events at the same time keep their issue's order.
    events.sort_by_key(|event| event.at);
    Ok(History { events })
}
