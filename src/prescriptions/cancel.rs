//! `POST /api/v1/prescriptions/{id}/cancel`: the prescriber cancels, or marks the prescription
//! pending cancellation while a dispenser holds it.

use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::views::CancelResult;
use serde_json::json;

use chrono::NaiveDateTime;

use super::{own, save, transition};
use crate::audit;
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
    let response = match decision {
        CancelDecision::Cancel => {
            let to = transition(&loaded, Event::Cancel)?;
            loaded.map_items(machine::cancel_item);
            loaded.row.cancel_reason = Some(Code(reason));
            loaded.row.cancellation_requested_by = Some(who.sub.clone());
            save(conn, &mut loaded, to, at)?;
            audit::append(
                conn,
                who,
                "cancelled",
                Some(&loaded.row.uuid),
                &json!({"reason": reason.code()}),
                at,
            )?;
            None
        }
        CancelDecision::MarkPending(code) => {
            if !loaded.row.pending_cancellation {
                loaded.row.pending_cancellation = true;
                loaded.row.cancel_reason = Some(Code(reason));
                loaded.row.cancellation_requested_by = Some(who.sub.clone());
                save(conn, &mut loaded, status, at)?;
                audit::append(
                    conn,
                    who,
                    "cancellation-requested",
                    Some(&loaded.row.uuid),
                    &json!({"reason": reason.code(), "response": code.code()}),
                    at,
                )?;
            }
            Some(code.coded())
        }
        CancelDecision::Refuse(code) => {
            audit::append(
                conn,
                who,
                "cancellation-refused",
                Some(&loaded.row.uuid),
                &json!({"response": code.code()}),
                at,
            )?;
            Some(code.coded())
        }
    };
    Ok(CancelResult {
        response,
        prescription: loaded.view(),
    })
}
