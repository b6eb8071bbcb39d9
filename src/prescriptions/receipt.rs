//! `GET /api/v1/prescriptions/{id}/receipt`: the holding pharmacy gets the service's signed
//! record of what was handed over and claimed, to keep and to print for the patient.

use chrono::NaiveDateTime;
use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::signed::RECEIPT_JWS_TYP;
use prescrypt_contract::views::ReceiptView;
use prescrypt_contract::{DispenseReceipt, ReceiptItem};

use super::held;
use super::read::{full_view, record_read};
use crate::auth::Principal;
use crate::domain::Status;
use crate::error::AppError;
use crate::keys::KeyRing;
use crate::signing;
use crate::store::DbConnection;

pub fn receipt(
    conn: &mut DbConnection,
    keys: &KeyRing,
    who: &Principal,
    id: &PrescriptionId,
    at: NaiveDateTime,
) -> Result<ReceiptView, AppError> {
    let loaded = held(conn, who, id, "get dispense receipts", at)?;
    let status = loaded.status();
    if !matches!(
        status,
        Status::WithDispenserActive | Status::Dispensed | Status::NotDispensed | Status::Claimed
    ) {
        return Err(AppError::illegal(
            "issue a receipt (nothing dispensed yet)",
            status.to_string(),
        ));
    }
    let view = full_view(conn, &loaded)?;
    record_read(conn, who, &loaded.row.uuid, "receipt-issued", at)?;
    let content = DispenseReceipt {
        id: view.id,
        uuid: view.uuid,
        patient: view.patient,
        prescriber: view.prescriber,
        dispenser: who.org.clone(),
        status: view.status,
        items: view
            .items
            .into_iter()
            .map(|item| ReceiptItem {
                line: item.line,
                code: item.code,
                display: item.display,
                quantity: item.quantity,
                unit: item.unit,
                dosage: item.dosage,
                status: item.status,
                supplies: item.supplies,
            })
            .collect(),
        claim: view.claim,
        issued_at: signing::signed_time(at),
    };
    Ok(ReceiptView {
        jws: signing::sign_typed(&content, RECEIPT_JWS_TYP, keys.active())?,
    })
}
