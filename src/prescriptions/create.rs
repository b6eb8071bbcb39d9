//! `POST /api/v1/prescriptions`: validate, allocate the ID, sign and store a new prescription.

use chrono::{NaiveDate, Utc};
use prescrypt_barcode::{NhsNumber, PrescriptionId};
use prescrypt_contract::limits::MAX_ITEMS;
use prescrypt_contract::quantity::{Decimal, QuantityText};
use prescrypt_contract::views::{NewPrescription, Patient, Prescriber, PrescriptionView};
use prescrypt_contract::{SignedItem, SignedPrescription};
use serde_json::json;

use super::{Loaded, now};
use crate::audit;
use crate::auth::{Principal, Role, is_ods_code};
use crate::domain::{ItemStatus, Status, TreatmentType, birth_date, text, validity};
use crate::error::AppError;
use crate::keys::KeyRing;
use crate::signing;
use crate::store::DbConnection;
use crate::store::codes::Code;
use crate::store::prescriptions::{self as rows, ItemRow, Row};
use crate::store::quantity::Thousandths;

/// A create request, checked; everything is validated before anything is written.
pub struct ValidNew {
    nhs_number: NhsNumber,
    name: String,
    birth_date: NaiveDate,
    items: Vec<ValidItem>,
    nominated: Option<String>,
    treatment_type: TreatmentType,
    issue_count: i32,
    schedule: Option<u8>,
}

impl std::fmt::Debug for ValidNew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidNew").finish_non_exhaustive()
    }
}

impl ValidNew {
    /// The patient as signed and shown.
    pub fn patient(&self) -> Patient {
        Patient {
            nhs_number: self.nhs_number.digits().to_owned(),
            name: self.name.clone(),
            birth_date: self.birth_date.format("%Y-%m-%d").to_string(),
        }
    }

    /// The first way `signed` differs from what this request asked for (patient, items, treatment
    /// type, issue count, nomination, schedule), if any: a prescriber's system checks a prepared
    /// prescription with it before signing.
    pub fn difference_from(&self, signed: &SignedPrescription) -> Option<String> {
        if signed.patient != self.patient() {
            return Some("patient".to_owned());
        }
        if signed.items.len() != self.items.len() {
            return Some(format!(
                "items: {} asked for, {} prepared",
                self.items.len(),
                signed.items.len()
            ));
        }
        for ((asked, prepared), line) in self.items.iter().zip(&signed.items).zip(1..) {
            let same = prepared.line == line
                && prepared.code == asked.code
                && prepared.display == asked.display
                && prepared.quantity == asked.quantity
                && prepared.unit == asked.unit
                && prepared.dosage == asked.dosage;
            if !same {
                return Some(format!("items[{}]", line - 1));
            }
        }
        let differing = [
            (
                signed.treatment_type != self.treatment_type.code(),
                "treatment_type",
            ),
            (signed.issue_count != self.issue_count, "issue_count"),
            (
                signed.nominated_pharmacy != self.nominated,
                "nominated_pharmacy",
            ),
            (
                signed.controlled_drug_schedule != self.schedule.map(i32::from),
                "controlled_drug_schedule",
            ),
        ];
        differing
            .into_iter()
            .find(|(differs, _)| *differs)
            .map(|(_, field)| field.to_owned())
    }
}

/// One checked line item (trimmed texts, a positive quantity).
#[derive(Debug, Clone)]
pub struct ValidItem {
    pub code: String,
    pub display: String,
    pub quantity: Decimal,
    pub unit: String,
    pub dosage: String,
}

/// A free-text field under THE text rule ([`text::free_text`]), or a 422 naming the field.
fn text_field(value: &str, field: &str, max: usize) -> Result<String, AppError> {
    text::free_text(value, max).map_err(|e| AppError::field(field, format!("{field} {e}")))
}

fn ods_field(value: &str, field: &str) -> Result<String, AppError> {
    let code = value.trim().to_ascii_uppercase();
    if is_ods_code(&code) {
        Ok(code)
    } else {
        Err(AppError::invalid(
            "invalid-ods-code",
            field,
            "an ODS code is 1 to 6 letters or digits",
        ))
    }
}

/// A quantity under THE quantity rule ([`quantity::parse`]), or a 400 naming the field.
pub(super) fn quantity_field(value: &QuantityText, field: &str) -> Result<Decimal, AppError> {
    value
        .parse()
        .map_err(|e| AppError::field(field, e.to_string()))
}

pub fn validate_new(body: &NewPrescription) -> Result<ValidNew, AppError> {
    let nhs_number = NhsNumber::parse(body.patient.nhs_number.trim()).map_err(|e| {
        AppError::invalid("invalid-nhs-number", "patient.nhs_number", e.to_string())
    })?;
    let name = text_field(&body.patient.name, "patient.name", 200)?;
    let birth_date = birth_date::parse(&body.patient.birth_date, Utc::now().date_naive())
        .map_err(|e| AppError::field("patient.birth_date", e.to_string()))?;
    if body.items.is_empty() || body.items.len() > MAX_ITEMS {
        return Err(AppError::field(
            "items",
            format!("a prescription has 1 to {MAX_ITEMS} items"),
        ));
    }
    let items = body
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |name: &str| format!("items[{i}].{name}");
            Ok(ValidItem {
                code: text_field(&item.code, &at("code"), 64)?,
                display: text_field(&item.display, &at("display"), 256)?,
                quantity: quantity_field(&item.quantity, &at("quantity"))?,
                unit: text_field(&item.unit, &at("unit"), 64)?,
                dosage: text_field(&item.dosage, &at("dosage"), 512)?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let nominated = body
        .nominated_pharmacy
        .as_deref()
        .map(|code| ods_field(code, "nominated_pharmacy"))
        .transpose()?;
    let treatment_type = match body.treatment_type.as_deref() {
        None => TreatmentType::Acute,
        Some(code) => TreatmentType::parse(code).ok_or_else(|| {
            AppError::field(
                "treatment_type",
                "0001 (acute), 0002 (repeat) or 0003 (eRD)",
            )
        })?,
    };
    let issue_count = body.issue_count.unwrap_or(1);
    let max_issues = if treatment_type == TreatmentType::Acute {
        1
    } else {
        99
    };
    if !(1..=max_issues).contains(&issue_count) {
        return Err(AppError::field(
            "issue_count",
            format!("1 to {max_issues} for this treatment type"),
        ));
    }
    if let Some(schedule) = body.controlled_drug_schedule
        && !(2..=5).contains(&schedule)
    {
        return Err(AppError::field(
            "controlled_drug_schedule",
            "a schedule from 2 to 5",
        ));
    }
    Ok(ValidNew {
        nhs_number,
        name,
        birth_date,
        items,
        nominated,
        treatment_type,
        issue_count,
        schedule: body.controlled_drug_schedule,
    })
}

/// Next value of the organisation's ID sequence (20 bits, wrapping), in the caller's transaction.
fn next_sequence(conn: &mut DbConnection, org: &str) -> Result<u32, AppError> {
    let value = rows::next_sequence(conn, org)?;
    Ok(u32::try_from((value - 1) & i64::from(prescrypt_barcode::id::MAX_SEQUENCE)).unwrap_or(0))
}

/// Creates and signs a prescription.
pub fn create(
    conn: &mut DbConnection,
    keys: &KeyRing,
    who: &Principal,
    new: &ValidNew,
) -> Result<PrescriptionView, AppError> {
    who.require(Role::Prescriber, "create prescriptions")?;
    let at = now();
    let sequence = next_sequence(conn, &who.org)?;
    let id = PrescriptionId::new(rand::random::<u32>() & 0xFF_FFFF, &who.org, sequence)
        .map_err(|e| AppError::Internal(format!("building an ID: {e}")))?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let expires_at = validity::expires_at(at, new.schedule);
    let item_rows: Vec<ItemRow> = new
        .items
        .iter()
        .zip(1..)
        .map(|(item, line)| ItemRow {
            uuid: uuid::Uuid::new_v4().to_string(),
            prescription_uuid: uuid.clone(),
            line,
            code: item.code.clone(),
            display: item.display.clone(),
            quantity: Thousandths::new(item.quantity),
            unit: item.unit.clone(),
            dosage: item.dosage.clone(),
            status: Code(ItemStatus::ToBeDispensed),
            dispensed_quantity: Thousandths::ZERO,
            not_dispensed_reason: None,
        })
        .collect();
    let prescriber = Prescriber {
        id: who.sub.clone(),
        org: who.org.clone(),
    };
    let patient = Patient {
        nhs_number: new.nhs_number.digits().to_owned(),
        name: new.name.clone(),
        birth_date: new.birth_date.format("%Y-%m-%d").to_string(),
    };
    let content = SignedPrescription {
        id: id.to_string(),
        uuid: uuid.clone(),
        prescriber: prescriber.clone(),
        patient: patient.clone(),
        items: item_rows
            .iter()
            .map(|i| SignedItem {
                line: i.line,
                uuid: i.uuid.clone(),
                code: i.code.clone(),
                display: i.display.clone(),
                quantity: i.quantity.get(),
                unit: i.unit.clone(),
                dosage: i.dosage.clone(),
            })
            .collect(),
        treatment_type: new.treatment_type.code().to_owned(),
        issue_number: 1,
        issue_count: new.issue_count,
        nominated_pharmacy: new.nominated.clone(),
        controlled_drug_schedule: new.schedule.map(i32::from),
        created_at: at
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        expires_at: expires_at
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    };
    let key = keys.active();
    let jws = signing::sign_jws(&content, key)?;
    let token = signing::issue_token(id, key);
    let row = Row {
        uuid: uuid.clone(),
        short_id: id.compact().to_owned(),
        status: Code(Status::ToBeDispensed),
        pending_cancellation: false,
        cancellation_requested_by: None,
        cancel_reason: None,
        treatment_type: Code(new.treatment_type),
        issue_number: 1,
        issue_count: new.issue_count,
        prescriber_id: prescriber.id,
        prescriber_org: prescriber.org,
        patient_nhs_number: patient.nhs_number,
        patient_name: patient.name,
        patient_birth_date: new.birth_date,
        nominated_pharmacy: new.nominated.clone(),
        controlled_drug_schedule: new.schedule.map(i32::from),
        dispenser: None,
        created_at: at,
        expires_at,
        jws,
        token: token.text().as_str().to_owned(),
        version: 1,
        updated_at: at,
    };
    rows::insert(conn, &row, &item_rows)?;
    audit::append(
        conn,
        who,
        "created",
        Some(&uuid),
        &json!({"id": id.to_string()}),
        at,
    )?;
    Ok(Loaded {
        row,
        items: item_rows,
    }
    .view())
}
