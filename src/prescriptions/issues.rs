//! The issues of one prescription ID: a waiting issue becoming releasable on its day, repeat
//! dispensing's next issue after the current one completes, and what cancelling, expiring or
//! withdrawing the current issue does to the later ones. The rules are
//! [`crate::domain::repeat`]'s and the status machine's.
//!
//! Changes to later issues are audited in the entry of the operation on the current issue (one
//! audit chain per operation), naming the issues they touched.

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::json;

use super::{Loaded, save, system, with_items};
use crate::audit::{self, Pending};
use crate::auth::Principal;
use crate::domain::machine::{self, Event};
use crate::domain::{CancelReason, Status, TreatmentType, repeat};
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::codes::Code;
use crate::store::prescriptions::{self as rows, Lock};

/// A later issue an operation on the current one moved.
#[derive(Debug, Clone)]
pub(super) struct Moved {
    pub issue_number: i32,
    pub uuid: String,
    pub from: Status,
    pub to: Status,
    pub ready_at: Option<NaiveDateTime>,
}

impl Moved {
    fn of(later: &Loaded, from: Status) -> Self {
        Self {
            issue_number: later.row.issue_number,
            uuid: later.row.uuid.clone(),
            from,
            to: later.status(),
            ready_at: later.row.ready_at,
        }
    }

    /// Its own audit entry (on its own chain), by `who`, under `action`.
    pub fn entry(
        &self,
        who: &Principal,
        action: &'static str,
        extra: serde_json::Value,
    ) -> Pending {
        let mut detail = json!({
            "issue_number": self.issue_number,
            "from": self.from.code(),
            "to": self.to.code(),
        });
        if let Some(ready_at) = self.ready_at {
            detail["ready_at"] = json!(ready_at.and_utc());
        }
        if let (Some(detail), serde_json::Value::Object(extra)) = (detail.as_object_mut(), extra) {
            detail.extend(extra);
        }
        Pending {
            who: who.clone(),
            action,
            prescription_uuid: self.uuid.clone(),
            detail,
        }
    }
}

/// Makes a waiting issue (0000 nominated download date, 9001 start date) To Be Dispensed once
/// its day has come; whether it did.
pub(super) fn ready_if_due(
    conn: &mut DbConnection,
    loaded: &mut Loaded,
    at: NaiveDateTime,
) -> Result<bool, AppError> {
    let from = loaded.status();
    let due = loaded.row.ready_at.is_some_and(|ready| ready <= at);
    if !due || !matches!(from, Status::AwaitingReleaseReady | Status::FutureDated) {
        return Ok(false);
    }
    let to = machine::next(from, Event::Ready)
        .map_err(|_| AppError::illegal(Event::Ready.action(), from.to_string()))?;
    save(conn, loaded, to, at)?;
    audit::append(
        conn,
        &system(),
        "ready",
        Some(&loaded.row.uuid),
        &json!({"from": from.code(), "to": to.code(), "issue_number": loaded.row.issue_number}),
        at,
    )?;
    Ok(true)
}

/// The refusal of a release of an issue that is not releasable yet, saying from when it is.
pub(super) fn not_yet_releasable(loaded: &Loaded) -> Option<AppError> {
    let status = loaded.status();
    let when = loaded
        .row
        .ready_at
        .map(|at| format!(" It becomes releasable on {}.", at.date()))
        .unwrap_or_default();
    let why = match status {
        Status::FutureDated => "is future-dated",
        Status::AwaitingReleaseReady => {
            "is awaiting its nominated download date (the previous issue was dispensed recently)"
        }
        Status::RepeatDispenseFutureInstance => "is a future issue: the previous one comes first",
        _ => return None,
    };
    Some(AppError::Conflict {
        code: "not-yet-releasable",
        detail: format!(
            "issue {} of {} {why} (status {}).{when}",
            loaded.row.issue_number,
            loaded.row.issue_count,
            status.code()
        ),
    })
}

/// The day a prescription counts as prescribed on: its start date when future-dated.
fn prescribed_on(loaded: &Loaded) -> NaiveDate {
    let created = loaded.row.created_at.date();
    loaded
        .row
        .start_date
        .filter(|start| *start > created)
        .unwrap_or(created)
}

/// After the current issue of a repeat-dispensing prescription completed (dispensed or not
/// dispensed): the next issue leaves 9000, To Be Dispensed when its nominated download date has
/// passed, else Awaiting Release Ready until then. Answers the next issue's number and status.
pub(super) fn activate_next(
    conn: &mut DbConnection,
    current: &Loaded,
    at: NaiveDateTime,
) -> Result<Option<Moved>, AppError> {
    if current.row.treatment_type.0 != TreatmentType::RepeatDispensing {
        return Ok(None);
    }
    let Some(next) = repeat::next_issue(
        prescribed_on(current),
        current
            .row
            .days_supply
            .unwrap_or(repeat::DEFAULT_DAYS_SUPPLY),
        current.row.issue_number,
        current.row.issue_count,
        at.date(),
    ) else {
        return Ok(None);
    };
    let Some(row) = rows::find_issue(
        conn,
        &current.row.prescription_id,
        current.row.issue_number + 1,
        Lock::ForUpdate,
    )?
    else {
        return Err(AppError::Internal(
            "a repeat-dispensing issue is missing".into(),
        ));
    };
    let mut later = with_items(conn, row)?;
    let Ok(to) = machine::next(later.status(), Event::Activate { due: next.due }) else {
        // Already activated (a withdrawn and repeated completion), cancelled or expired.
        return Ok(None);
    };
    let from = later.status();
    later.row.ready_at = (!next.due).then_some(next.ready_at);
    save(conn, &mut later, to, at)?;
    Ok(Some(Moved::of(&later, from)))
}

/// Withdrawing the completion of the current issue: the next issue, if it was activated and not
/// released yet, is a future instance again; if it was released, the withdrawal is refused.
pub(super) fn recall_next(
    conn: &mut DbConnection,
    current: &Loaded,
    at: NaiveDateTime,
) -> Result<Option<Moved>, AppError> {
    if current.row.treatment_type.0 != TreatmentType::RepeatDispensing
        || current.row.issue_number >= current.row.issue_count
    {
        return Ok(None);
    }
    let Some(row) = rows::find_issue(
        conn,
        &current.row.prescription_id,
        current.row.issue_number + 1,
        Lock::ForUpdate,
    )?
    else {
        return Ok(None);
    };
    let mut later = with_items(conn, row)?;
    match later.status() {
        Status::RepeatDispenseFutureInstance | Status::Cancelled | Status::Expired => Ok(None),
        from => {
            let to = machine::next(from, Event::Recall).map_err(|_| {
                AppError::illegal(
                    format!(
                        "withdraw (issue {} was already released)",
                        later.row.issue_number
                    ),
                    from.to_string(),
                )
            })?;
            later.row.ready_at = None;
            save(conn, &mut later, to, at)?;
            Ok(Some(Moved::of(&later, from)))
        }
    }
}

/// The issues after the current one that `event` (Cancel or Expire) moves, moved.
pub(super) fn settle_later(
    conn: &mut DbConnection,
    current: &Loaded,
    event: Event,
    reason: Option<CancelReason>,
    at: NaiveDateTime,
) -> Result<Vec<Moved>, AppError> {
    if current.row.treatment_type.0 != TreatmentType::RepeatDispensing {
        return Ok(Vec::new());
    }
    let mut settled = Vec::new();
    for issue_number in current.row.issue_number + 1..=current.row.issue_count {
        let Some(row) = rows::find_issue(
            conn,
            &current.row.prescription_id,
            issue_number,
            Lock::ForUpdate,
        )?
        else {
            continue;
        };
        let mut later = with_items(conn, row)?;
        let from = later.status();
        let Ok(to) = machine::next(from, event) else {
            continue;
        };
        match event {
            Event::Cancel => {
                later.map_items(machine::cancel_item);
                later.row.cancel_reason = reason.map(Code);
                later.row.cancellation_requested_by = current.row.cancellation_requested_by.clone();
            }
            _ => later.map_items(machine::expire_item),
        }
        later.row.ready_at = None;
        save(conn, &mut later, to, at)?;
        settled.push(Moved::of(&later, from));
    }
    Ok(settled)
}
