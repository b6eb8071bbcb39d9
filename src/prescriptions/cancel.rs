//! `POST /api/v1/prescriptions/{id}/cancel`: the prescriber cancels, or marks the prescription
//! pending cancellation while a dispenser holds it.

use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::views::CancelResult;
use serde_json::json;

use chrono::NaiveDateTime;

use super::{issues, own, save, transition};
use crate::audit::{self, Pending};
use crate::auth::{Principal, Role};
use crate::domain::CancelReason;
use crate::domain::machine::{self, CancelDecision, Event};
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::codes::Code;

pub fn cancel(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    reason: Option<&str>,
    at: NaiveDateTime,
) -> Result<CancelResult, AppError> {
    who.require(Role::Prescriber, "cancel prescriptions")?;
    let reason = match reason {
        None => CancelReason::PrescribingError,
        Some(code) => CancelReason::parse(code.trim())
            .ok_or_else(|| AppError::field("reason", "a cancellation reason 0001 to 0009"))?,
    };
    let mut loaded = own(conn, who, id, at)?;
    let status = loaded.status();
    let decision = machine::cancel(
        status,
        loaded.row.cancellation_requested_by.as_deref(),
        &who.sub,
    );
    // Of a repeat-dispensing prescription, the issues after the current one are cancelled
    // outright whatever the current one's answer (EPS cancels the remaining issues).
    let cancel_later = |conn: &mut DbConnection, loaded: &super::Loaded| {
        let mut current = loaded.clone();
        current.row.cancellation_requested_by = Some(who.sub.clone());
        issues::settle_later(conn, &current, Event::Cancel, Some(reason), at)
    };
    let entry = |action: &'static str, detail: serde_json::Value, uuid: &str| Pending {
        who: who.clone(),
        action,
        prescription_uuid: uuid.to_owned(),
        detail,
    };
    let mut entries = Vec::new();
    let response = match decision {
        CancelDecision::Cancel => {
            let to = transition(&loaded, Event::Cancel)?;
            loaded.map_items(machine::cancel_item);
            loaded.row.cancel_reason = Some(Code(reason));
            loaded.row.cancellation_requested_by = Some(who.sub.clone());
            loaded.row.ready_at = None;
            save(conn, &mut loaded, to, at)?;
            entries.push(entry(
                "cancelled",
                json!({"reason": reason.code(), "issue_number": loaded.row.issue_number}),
                &loaded.row.uuid,
            ));
            None
        }
        CancelDecision::MarkPending(code) => {
            if !loaded.row.pending_cancellation {
                loaded.row.pending_cancellation = true;
                loaded.row.cancel_reason = Some(Code(reason));
                loaded.row.cancellation_requested_by = Some(who.sub.clone());
                save(conn, &mut loaded, status, at)?;
                entries.push(entry(
                    "cancellation-requested",
                    json!({"reason": reason.code(), "response": code.code()}),
                    &loaded.row.uuid,
                ));
            }
            Some(code.coded())
        }
        CancelDecision::Refuse(code) => {
            entries.push(entry(
                "cancellation-refused",
                json!({"response": code.code()}),
                &loaded.row.uuid,
            ));
            Some(code.coded())
        }
    };
    // A current issue with a dispenser or already completed does not stop the later ones.
    for later in cancel_later(conn, &loaded)? {
        entries.push(later.entry(who, "cancelled", json!({"reason": reason.code()})));
    }
    audit::append_each(conn, entries, at)?;
    Ok(CancelResult {
        response,
        prescription: loaded.view(),
    })
}
