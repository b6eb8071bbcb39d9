//! `POST /api/v1/prescriptions/{id}/claim`: the holding pharmacy claims reimbursement.

use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::views::PrescriptionView;
use serde_json::json;

use chrono::NaiveDateTime;

use super::{held, save, transition};
use crate::audit;
use crate::auth::Principal;
use crate::domain::Event;
use crate::error::AppError;
use crate::store::DbConnection;

pub fn claim(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let mut loaded = held(conn, who, id, "claim prescriptions", at)?;
    let to = transition(&loaded, Event::Claim)?;
    save(conn, &mut loaded, to, at)?;
    audit::append(conn, who, "claimed", Some(&loaded.row.uuid), &json!({}), at)?;
    Ok(loaded.view())
}
