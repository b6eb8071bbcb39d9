//! `GET /api/v1/prescriptions/{id}/token.{format}`: what the printed token shows.

use prescrypt_barcode::render::{Dpi, SheetItem, TokenSheet};
use prescrypt_barcode::{NhsNumber, PrescriptionId, Token};
use serde_json::json;

use chrono::NaiveDateTime;

use super::own;
use crate::audit;
use crate::auth::{Principal, Role};
use crate::error::AppError;
use crate::store::DbConnection;

/// The token sheet of a prescription, for the prescribers of the prescribing organisation only.
pub fn token_sheet(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    dpi: Dpi,
    at: NaiveDateTime,
) -> Result<TokenSheet, AppError> {
    who.require(Role::Prescriber, "print prescription tokens")?;
    let loaded = own(conn, who, id, at)?;
    let token = Token::parse(&loaded.row.token)
        .map_err(|e| AppError::Internal(format!("stored token: {e}")))?;
    audit::append(
        conn,
        who,
        "token-printed",
        Some(&loaded.row.uuid),
        &json!({}),
        at,
    )?;
    let mut sheet = TokenSheet::new(&token, dpi);
    sheet.patient_name = Some(loaded.row.patient_name.clone());
    sheet.nhs_number = NhsNumber::parse(&loaded.row.patient_nhs_number).ok();
    sheet.items = loaded
        .items
        .iter()
        .map(|item| {
            SheetItem::new(
                &item.display,
                format!("{} {}", item.quantity.get(), item.unit),
                &item.dosage,
            )
        })
        .collect();
    sheet.prescriber = Some(format!(
        "{} ({})",
        loaded.row.prescriber_id, loaded.row.prescriber_org
    ));
    sheet.date = Some(loaded.row.created_at.format("%Y-%m-%d").to_string());
    Ok(sheet)
}
