//! `POST /api/v1/prescriptions/{id}/return`: the dispenser hands a prescription back.

use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::views::PrescriptionView;
use serde_json::json;

use chrono::NaiveDateTime;

use super::{held, save, transition};
use crate::audit;
use crate::auth::Principal;
use crate::domain::ReturnReason;
use crate::domain::machine::{self, Event};
use crate::error::AppError;
use crate::store::DbConnection;

pub fn return_to_spine(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    reason: &str,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let reason = ReturnReason::parse(reason.trim())
        .ok_or_else(|| AppError::field("reason", "a return reason 0001 to 0008"))?;
    let mut loaded = held(conn, who, id, "return prescriptions", at)?;
    let mut to = transition(&loaded, Event::Return)?;
    loaded.map_items(machine::return_item);
    loaded.row.dispenser = None;
    let mut detail = json!({"reason": reason.code()});
    if loaded.row.pending_cancellation {
        // The dispenser has been told; handing it back completes the cancellation.
        to = machine::next(to, Event::Cancel)
            .map_err(|_| AppError::illegal("cancel", to.to_string()))?;
        loaded.map_items(machine::cancel_item);
        loaded.row.pending_cancellation = false;
        detail["cancelled"] = json!(true);
    }
    save(conn, &mut loaded, to, at)?;
    audit::append(conn, who, "returned", Some(&loaded.row.uuid), &detail, at)?;
    Ok(loaded.view())
}
