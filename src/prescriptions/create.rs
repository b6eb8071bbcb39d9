//! `POST /api/v1/prescriptions`: validate, allocate the ID, sign and store a new prescription.

use chrono::{NaiveDate, NaiveDateTime};
use prescrypt_barcode::{NhsNumber, PrescriptionId};
use prescrypt_contract::limits::MAX_ITEMS;
use prescrypt_contract::quantity::{Decimal, QuantityText};
use prescrypt_contract::signed::{issue_uuid, jws_digest};
use prescrypt_contract::views::{
    NewPrescription, Patient, Prepared, Prescriber, PrescriptionView, SignedCreate,
};
use prescrypt_contract::{Countersignature, SignedItem, SignedPrescription};
use serde_json::json;

use super::Loaded;
use super::prescriber_keys::usable_key;
use crate::audit;
use crate::auth::{Principal, Role, is_ods_code};
use crate::domain::{ItemStatus, Status, TreatmentType, birth_date, repeat, text, validity};
use crate::error::AppError;
use crate::keys::KeyRing;
use crate::signing;
use crate::store::codes::Code;
use crate::store::prescriptions::{self as rows, ItemRow, Lock, Row};
use crate::store::quantity::Thousandths;
use crate::store::signatures::{self, KeyRow, PreparedRow};
use crate::store::supplies::Supplies;
use crate::store::{DbConnection, ordered_uuid};

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
    days_supply: Option<i32>,
    start_date: Option<NaiveDate>,
    authorisation: Option<PrescriptionId>,
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
            birth_date: self.birth_date.format(BIRTH_DATE_FORMAT).to_string(),
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
            (signed.days_supply != self.days_supply, "days_supply"),
            (
                signed.start_date
                    != self
                        .start_date
                        .map(|day| day.format(BIRTH_DATE_FORMAT).to_string()),
                "start_date",
            ),
            (
                self.authorisation.is_some_and(|authorisation| {
                    signed.authorisation.as_deref() != Some(authorisation.to_string().as_str())
                }),
                "authorisation",
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
pub(super) fn text_field(value: &str, field: &str, max: usize) -> Result<String, AppError> {
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

/// `today` (on the service's clock) bounds the birth date.
pub fn validate_new(body: &NewPrescription, today: NaiveDate) -> Result<ValidNew, AppError> {
    let nhs_number = NhsNumber::parse(body.patient.nhs_number.trim()).map_err(|e| {
        AppError::invalid("invalid-nhs-number", "patient.nhs_number", e.to_string())
    })?;
    let name = text_field(&body.patient.name, "patient.name", 200)?;
    let birth_date = birth_date::parse(&body.patient.birth_date, today)
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
        repeat::MAX_ISSUES
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
    let days_supply = match (treatment_type, body.days_supply) {
        (TreatmentType::RepeatDispensing, days) => {
            let days = days.unwrap_or(repeat::DEFAULT_DAYS_SUPPLY);
            if !(1..=repeat::MAX_DAYS_SUPPLY).contains(&days) {
                return Err(AppError::field(
                    "days_supply",
                    format!("1 to {} days between issues", repeat::MAX_DAYS_SUPPLY),
                ));
            }
            Some(days)
        }
        (_, None) => None,
        (_, Some(_)) => {
            return Err(AppError::field(
                "days_supply",
                "only a repeat-dispensing prescription (0003) has a dispensing interval",
            ));
        }
    };
    let start_date = body
        .start_date
        .as_deref()
        .map(|text| {
            let day = NaiveDate::parse_from_str(text.trim(), BIRTH_DATE_FORMAT)
                .map_err(|_| AppError::field("start_date", "a date YYYY-MM-DD"))?;
            if day > today + chrono::Duration::days(365) {
                return Err(AppError::field("start_date", "at most a year ahead"));
            }
            Ok(day)
        })
        .transpose()?;
    let authorisation = body
        .authorisation
        .as_deref()
        .map(|text| {
            if treatment_type != TreatmentType::Repeat {
                return Err(AppError::field(
                    "authorisation",
                    "only a repeat prescription (0002) names an authorisation",
                ));
            }
            PrescriptionId::parse(&text.trim().to_ascii_uppercase()).map_err(|e| {
                AppError::invalid("invalid-prescription-id", "authorisation", e.to_string())
            })
        })
        .transpose()?;
    Ok(ValidNew {
        nhs_number,
        name,
        birth_date,
        items,
        nominated,
        treatment_type,
        issue_count,
        schedule: body.controlled_drug_schedule,
        days_supply,
        start_date,
        authorisation,
    })
}

/// Next value of the organisation's ID sequence (20 bits, wrapping), in the caller's transaction.
fn next_sequence(conn: &mut DbConnection, org: &str) -> Result<u32, AppError> {
    Ok(sequence_number(rows::next_sequence(conn, org)?))
}

/// The ID's sequence number for the `value`-th prescription of an organisation (values start at
/// 1, numbers at 0; 20 bits, wrapping).
pub fn sequence_number(value: i64) -> u32 {
    u32::try_from((value - 1) & i64::from(prescrypt_barcode::id::MAX_SEQUENCE)).unwrap_or(0)
}

/// The clinical content of a new prescription of the caller's: ID (from `sequence`), UUIDs and
/// times assigned.
fn new_content(
    who: &Principal,
    new: &ValidNew,
    sequence: u32,
    (issue_number, authorisation): (i32, Option<String>),
    at: NaiveDateTime,
) -> Result<SignedPrescription, AppError> {
    let id = PrescriptionId::new(rand::random::<u32>() & 0xFF_FFFF, &who.org, sequence)
        .map_err(|e| AppError::Internal(format!("building an ID: {e}")))?;
    // A repeat authorisation's first issue authorises itself.
    let authorisation = match (new.treatment_type, authorisation) {
        (TreatmentType::Repeat, None) => Some(id.to_string()),
        (_, authorisation) => authorisation,
    };
    let prescribed = prescribed_at(at, new.start_date);
    // One signature covers every issue of a repeat-dispensing prescription, and with it one
    // expiry: the batch's (EPS repeatDispenseExpiryPeriod), see docs/service.md.
    let expires_at = if new.treatment_type == TreatmentType::RepeatDispensing && new.issue_count > 1
    {
        repeat::later_issue_expiry(prescribed)
    } else {
        validity::expires_at(prescribed, new.schedule)
    };
    Ok(SignedPrescription {
        id: id.to_string(),
        uuid: ordered_uuid(at),
        prescriber: Prescriber {
            id: who.sub.clone(),
            org: who.org.clone(),
        },
        patient: new.patient(),
        items: new
            .items
            .iter()
            .zip(1..)
            .map(|(item, line)| SignedItem {
                line,
                uuid: ordered_uuid(at),
                code: item.code.clone(),
                display: item.display.clone(),
                quantity: item.quantity,
                unit: item.unit.clone(),
                dosage: item.dosage.clone(),
            })
            .collect(),
        treatment_type: new.treatment_type.code().to_owned(),
        issue_number,
        issue_count: new.issue_count,
        nominated_pharmacy: new.nominated.clone(),
        controlled_drug_schedule: new.schedule.map(i32::from),
        created_at: signing::signed_time(at),
        expires_at: signing::signed_time(expires_at),
        days_supply: new.days_supply,
        start_date: new
            .start_date
            .map(|day| day.format(BIRTH_DATE_FORMAT).to_string()),
        authorisation,
    })
}

/// When a prescription counts as prescribed for its validity and issue dates: its start date
/// when future-dated, else its creation.
fn prescribed_at(created: NaiveDateTime, start_date: Option<NaiveDate>) -> NaiveDateTime {
    start_date
        .map(|day| day.and_time(chrono::NaiveTime::MIN))
        .filter(|start| *start > created)
        .unwrap_or(created)
}

/// Repeat prescribing: the issue number the next issue of `authorisation` gets, after checking
/// the authorisation is the caller's, for the same patient, and not used up.
fn next_authorised_issue(
    conn: &mut DbConnection,
    who: &Principal,
    new: &ValidNew,
    authorisation: &PrescriptionId,
) -> Result<i32, AppError> {
    let refused =
        |detail: &str| AppError::refused("invalid-authorisation", "authorisation", detail);
    let first = rows::find_by_short_id(conn, authorisation.compact(), Lock::ForUpdate)?
        .filter(|row| row.prescriber_org == who.org)
        .ok_or_else(|| refused("no repeat prescription of your organisation has this ID"))?;
    if first.treatment_type.0 != TreatmentType::Repeat
        || first.authorisation.as_deref() != Some(authorisation.compact())
    {
        return Err(refused(
            "this prescription is not a repeat authorisation (its first issue)",
        ));
    }
    if first.patient_nhs_number != new.nhs_number.digits() {
        return Err(refused("the authorisation is for another patient"));
    }
    if first.issue_count != new.issue_count {
        return Err(AppError::field(
            "issue_count",
            format!("the authorisation allows {} issues", first.issue_count),
        ));
    }
    let issued = rows::count_authorised(conn, authorisation.compact())?;
    let next = i32::try_from(issued + 1).unwrap_or(i32::MAX);
    if next > first.issue_count {
        return Err(AppError::Conflict {
            code: "authorisation-used-up",
            detail: format!(
                "all {} issues of authorisation {authorisation} were issued",
                first.issue_count
            ),
        });
    }
    Ok(next)
}

/// The issue number and authorisation a new prescription gets: 1 and none, unless it is the
/// next issue of a repeat authorisation (read in the caller's transaction).
fn issue_of(
    conn: &mut DbConnection,
    who: &Principal,
    new: &ValidNew,
) -> Result<(i32, Option<String>), AppError> {
    match new.authorisation {
        Some(authorisation) => Ok((
            next_authorised_issue(conn, who, new, &authorisation)?,
            Some(authorisation.to_string()),
        )),
        None => Ok((1, None)),
    }
}

impl ValidNew {
    /// Whether this is a first issue (no repeat authorisation to read from the database), so it
    /// can be signed before the write transaction.
    pub fn is_first_issue(&self) -> bool {
        self.authorisation.is_none()
    }
}

const BIRTH_DATE_FORMAT: &str = "%Y-%m-%d";

fn stored_time(text: &str) -> Result<NaiveDateTime, AppError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .map_err(|e| AppError::Internal(format!("a signed time {text:?}: {e}")))
}

/// A prescription ready to be stored: content signed, token issued, rows built. Everything a
/// create needs that does not read the database happens before the write transaction, so the
/// single writer ([`crate::store`]) only inserts it ([`store_issued`]).
pub struct Issued {
    id: String,
    prescription: Loaded,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// The prescription as it is answered once stored.
    pub fn view(&self) -> PrescriptionView {
        self.prescription.view()
    }
}

/// Builds the rows of a prescription exactly as its content says, with the service's JWS (`jws`)
/// and, when the prescriber signed, their JWS; issues its token (signed here).
fn issue(
    keys: &KeyRing,
    content: &SignedPrescription,
    jws: String,
    prescriber_jws: Option<String>,
    at: NaiveDateTime,
) -> Result<Issued, AppError> {
    let id = PrescriptionId::parse(&content.id)
        .map_err(|e| AppError::Internal(format!("a signed ID {}: {e}", content.id)))?;
    let treatment_type = TreatmentType::parse(&content.treatment_type).ok_or_else(|| {
        AppError::Internal(format!(
            "a signed treatment type {}",
            content.treatment_type
        ))
    })?;
    let items: Vec<ItemRow> = content
        .items
        .iter()
        .map(|item| ItemRow {
            uuid: item.uuid.clone(),
            prescription_uuid: content.uuid.clone(),
            line: item.line,
            code: item.code.clone(),
            display: item.display.clone(),
            quantity: Thousandths::new(item.quantity),
            unit: item.unit.clone(),
            dosage: item.dosage.clone(),
            status: Code(ItemStatus::ToBeDispensed),
            dispensed_quantity: Thousandths::ZERO,
            not_dispensed_reason: None,
            supplies: Supplies::none(),
        })
        .collect();
    let token = signing::issue_token(id, keys.active());
    let start_date = content
        .start_date
        .as_deref()
        .map(|day| NaiveDate::parse_from_str(day, BIRTH_DATE_FORMAT))
        .transpose()
        .map_err(|e| AppError::Internal(format!("a signed start date: {e}")))?;
    let authorisation = content
        .authorisation
        .as_deref()
        .map(PrescriptionId::parse)
        .transpose()
        .map_err(|e| AppError::Internal(format!("a signed authorisation: {e}")))?;
    let created_at = stored_time(&content.created_at)?;
    let status = repeat::initial_status(1, start_date, at.date());
    let row = Row {
        uuid: content.uuid.clone(),
        short_id: id.compact().to_owned(),
        status: Code(status),
        pending_cancellation: false,
        cancellation_requested_by: None,
        cancel_reason: None,
        treatment_type: Code(treatment_type),
        issue_number: content.issue_number,
        issue_count: content.issue_count,
        prescriber_id: content.prescriber.id.clone(),
        prescriber_org: content.prescriber.org.clone(),
        patient_nhs_number: content.patient.nhs_number.clone(),
        patient_name: content.patient.name.clone(),
        patient_birth_date: NaiveDate::parse_from_str(
            &content.patient.birth_date,
            BIRTH_DATE_FORMAT,
        )
        .map_err(|e| AppError::Internal(format!("a signed birth date: {e}")))?,
        nominated_pharmacy: content.nominated_pharmacy.clone(),
        controlled_drug_schedule: content.controlled_drug_schedule,
        dispenser: None,
        created_at,
        expires_at: stored_time(&content.expires_at)?,
        jws,
        prescriber_jws,
        token: token.text().as_str().to_owned(),
        version: 1,
        updated_at: at,
        prescription_id: id.compact().to_owned(),
        days_supply: content.days_supply,
        start_date,
        ready_at: (status == Status::FutureDated)
            .then(|| start_date.map(|day| day.and_time(chrono::NaiveTime::MIN)))
            .flatten(),
        authorisation: authorisation.map(|id| id.compact().to_owned()),
    };
    Ok(Issued {
        id: content.id.clone(),
        prescription: Loaded { row, items },
    })
}

/// Stores an issued prescription and audits its creation (in the caller's write transaction):
/// a repeat-dispensing prescription with every later issue as a future instance (9000) under the
/// same ID and signature, each with its own row and item UUIDs; a repeat authorisation's issue
/// only if no other issue took its number meanwhile.
pub fn store_issued(
    conn: &mut DbConnection,
    who: &Principal,
    issued: &Issued,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    let Loaded { row, items } = &issued.prescription;
    if let Some(authorisation) = row
        .authorisation
        .as_deref()
        .filter(|_| row.issue_number > 1)
    {
        // Two issues prepared from one authorisation before either was issued: the second to be
        // issued is refused (it must be prepared again for the next issue number).
        let issued_before = rows::count_authorised(conn, authorisation)?;
        if issued_before + 1 != i64::from(row.issue_number) {
            return Err(AppError::Conflict {
                code: "authorisation-issue-taken",
                detail: format!(
                    "issue {} of authorisation {} was issued meanwhile; prepare again",
                    row.issue_number,
                    super::hyphenated(authorisation)
                ),
            });
        }
    }
    rows::insert(conn, row, items)?;
    let mut entries = vec![audit::Pending {
        who: who.clone(),
        action: "created",
        prescription_uuid: row.uuid.clone(),
        detail: json!({
            "id": issued.id,
            "prescriber_signed": row.prescriber_jws.is_some(),
            "status": row.status.0.code(),
            "issue_number": row.issue_number,
            "issue_count": row.issue_count,
        }),
    }];
    if row.treatment_type.0 == TreatmentType::RepeatDispensing {
        for issue_number in 2..=row.issue_count {
            let uuid = issue_uuid(&row.uuid, issue_number);
            let issue_items: Vec<ItemRow> = items
                .iter()
                .map(|item| ItemRow {
                    uuid: issue_uuid(&item.uuid, issue_number),
                    prescription_uuid: uuid.clone(),
                    ..item.clone()
                })
                .collect();
            let issue = Row {
                uuid,
                short_id: rows::issue_key(&row.prescription_id, issue_number),
                status: Code(repeat::initial_status(
                    issue_number,
                    row.start_date,
                    at.date(),
                )),
                issue_number,
                ready_at: None,
                ..row.clone()
            };
            rows::insert(conn, &issue, &issue_items)?;
            entries.push(audit::Pending {
                who: who.clone(),
                action: "created",
                prescription_uuid: issue.uuid.clone(),
                detail: json!({
                    "id": issued.id,
                    "status": issue.status.0.code(),
                    "issue_number": issue_number,
                    "issue_count": row.issue_count,
                }),
            });
        }
    }
    audit::append_each(conn, entries, at)
}

/// Whether a one-step create (no prescriber signature) is allowed: only on a `--dev` service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsigned {
    Allowed,
    Refused,
}

/// Whether `who` may issue a prescription without a prescriber signature: a prescriber, on a
/// `--dev` service. Checked before an ID is reserved for it.
pub fn may_create_unsigned(who: &Principal, unsigned: Unsigned) -> Result<(), AppError> {
    who.require(Role::Prescriber, "create prescriptions")?;
    if unsigned == Unsigned::Refused {
        return Err(AppError::Unprocessable {
            code: "prescriber-signature-required",
            field: None,
            detail: "a prescription must carry its prescriber's signature: POST \
                     /api/v1/prescriptions/prepare with your key's kid, sign the signing_input, \
                     then POST {prepared_id, signature} here"
                .to_owned(),
        });
    }
    Ok(())
}

/// One-step create without the database: the service alone signs the content of the
/// `sequence`-th prescription of the caller's organisation (reserved beforehand, see
/// [`crate::store::Store::reserve_sequence`]). Only a `--dev` service does this; in production a
/// prescription carries its prescriber's signature ([`prepare`], [`create_signed`]).
pub fn issue_unsigned(
    keys: &KeyRing,
    who: &Principal,
    new: &ValidNew,
    sequence_value: i64,
    this_issue: (i32, Option<String>),
    unsigned: Unsigned,
    at: NaiveDateTime,
) -> Result<Issued, AppError> {
    may_create_unsigned(who, unsigned)?;
    let content = new_content(who, new, sequence_number(sequence_value), this_issue, at)?;
    let jws = signing::sign_jws(&content, keys.active())?;
    issue(keys, &content, jws, None, at)
}

/// One-step create in one transaction (sequence, signatures and insert): [`issue_unsigned`] +
/// [`store_issued`]. The server reserves the sequence and signs before its write transaction.
pub fn create(
    conn: &mut DbConnection,
    keys: &KeyRing,
    who: &Principal,
    new: &ValidNew,
    unsigned: Unsigned,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    may_create_unsigned(who, unsigned)?;
    let this_issue = issue_of(conn, who, new)?;
    let sequence_value = rows::next_sequence(conn, &who.org)?;
    let issued = issue_unsigned(keys, who, new, sequence_value, this_issue, unsigned, at)?;
    store_issued(conn, who, &issued, at)?;
    Ok(issued.view())
}

/// `POST /api/v1/prescriptions/prepare`: assigns the ID and UUIDs and answers the signing input
/// of the prescriber's JWS. Nothing is issued until [`create_signed`].
pub fn prepare(
    conn: &mut DbConnection,
    who: &Principal,
    new: &ValidNew,
    kid: &str,
    ttl: chrono::Duration,
    at: NaiveDateTime,
) -> Result<Prepared, AppError> {
    who.require(Role::Prescriber, "prepare prescriptions")?;
    let key = usable_key(conn, who, kid, at, "kid")?;
    let this_issue = issue_of(conn, who, new)?;
    let content = new_content(who, new, next_sequence(conn, &who.org)?, this_issue, at)?;
    let signing_input = signing::prescriber_signing_input(&key.kid, &content)?;
    let row = PreparedRow {
        prepared_id: uuid::Uuid::new_v4().to_string(),
        sub: who.sub.clone(),
        org: who.org.clone(),
        kid: key.kid,
        signing_input,
        created_at: at,
        expires_at: at + ttl,
        signature: None,
        prescription_uuid: None,
    };
    signatures::insert_prepared(conn, &row)?;
    audit::append(
        conn,
        who,
        "prepared",
        Some(&content.uuid),
        &json!({"id": content.id, "kid": row.kid, "prepared_id": row.prepared_id}),
        at,
    )?;
    Ok(Prepared {
        prepared_id: row.prepared_id,
        signing_input: row.signing_input,
        prescription: content,
        expires_at: row.expires_at.and_utc(),
    })
}

/// What a signed create found before its write transaction ([`check_signed`]).
#[derive(Debug)]
pub enum SignedCheck {
    /// Verified, countersigned and issued; [`store_signed`] stores it if the prepared ID is
    /// still unused when the write transaction runs.
    Issue(Issued),
    /// This very signature issued the prescription before: answered as it is.
    AlreadyIssued(PrescriptionView),
}

/// The caller's prepared prescription `prepared_id`, or a 422 naming the field.
fn callers_prepared(
    conn: &mut DbConnection,
    who: &Principal,
    prepared_id: &str,
) -> Result<PreparedRow, AppError> {
    signatures::find_prepared(conn, prepared_id)?
        .filter(|p| p.sub == who.sub && p.org == who.org)
        .ok_or_else(|| {
            AppError::refused(
                "unknown-prepared-id",
                "prepared_id",
                "no prepared prescription of yours has this prepared_id",
            )
        })
}

/// A prepared prescription that issued already: the same signature again answers what it issued
/// (a retry); any other is refused, so a prepared ID never issues other content.
fn already_used(
    conn: &mut DbConnection,
    prepared: &PreparedRow,
    content: &SignedPrescription,
    signature: &str,
) -> Result<PrescriptionView, AppError> {
    if prepared.signature.as_deref() == Some(signature) {
        let id = PrescriptionId::parse(&content.id)
            .map_err(|e| AppError::Internal(format!("a signed ID: {e}")))?;
        return match super::load(conn, &id, Lock::None)? {
            Some(loaded) => Ok(loaded.view()),
            None => Err(AppError::Internal(
                "an issued prescription is missing".into(),
            )),
        };
    }
    Err(AppError::Conflict {
        code: "prepared-already-used",
        detail: "this prepared prescription was already signed and issued; prepare again"
            .to_owned(),
    })
}

/// Checks that the prepared prescription can still be issued at `at` with its prescriber key.
fn usable_prepared(
    conn: &mut DbConnection,
    who: &Principal,
    prepared: &PreparedRow,
    at: NaiveDateTime,
) -> Result<KeyRow, AppError> {
    if prepared.expires_at <= at {
        return Err(AppError::refused(
            "prepared-expired",
            "prepared_id",
            "the prepared prescription expired before it was signed; prepare again",
        ));
    }
    usable_key(conn, who, &prepared.kid, at, "prepared_id")
}

/// The part of a signed create that changes nothing, run before the write transaction (on a read
/// connection, off the single writer): finds the caller's prepared prescription, checks the
/// prescriber's signature over the prepared signing input, countersigns and issues the token.
pub fn check_signed(
    conn: &mut DbConnection,
    keys: &KeyRing,
    who: &Principal,
    signed: &SignedCreate,
    at: NaiveDateTime,
) -> Result<SignedCheck, AppError> {
    who.require(Role::Prescriber, "create prescriptions")?;
    let prepared = callers_prepared(conn, who, &signed.prepared_id)?;
    let content: SignedPrescription = signing::payload_of(&prepared.signing_input)?;
    if prepared.prescription_uuid.is_some() {
        return already_used(conn, &prepared, &content, &signed.signature)
            .map(SignedCheck::AlreadyIssued);
    }
    let key = usable_prepared(conn, who, &prepared, at)?;
    let signature = data_encoding::BASE64URL_NOPAD
        .decode(signed.signature.as_bytes())
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .ok_or_else(|| {
            AppError::refused(
                "invalid-signature",
                "signature",
                "64 bytes in BASE64URL without padding",
            )
        })?;
    key.verifying_key()?
        .verify_strict(
            prepared.signing_input.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .map_err(|_| {
            AppError::refused(
                "invalid-signature",
                "signature",
                format!(
                    "the signature does not verify with key {} over the prepared signing_input",
                    key.kid
                ),
            )
        })?;
    let prescriber_jws = format!("{}.{}", prepared.signing_input, signed.signature);
    let countersignature = Countersignature {
        id: content.id.clone(),
        uuid: content.uuid.clone(),
        prescriber_kid: key.kid,
        prescriber_jws_sha256: jws_digest(&prescriber_jws),
        accepted_at: signing::signed_time(at),
    };
    let jws = signing::countersign(&countersignature, keys.active())?;
    issue(keys, &content, jws, Some(prescriber_jws), at).map(SignedCheck::Issue)
}

/// The write of a signed create checked by [`check_signed`]: in the write transaction the
/// prepared prescription must still be the caller's, unused and unexpired and its key still
/// usable (not revoked meanwhile); then it is marked used and the prescription stored.
pub fn store_signed(
    conn: &mut DbConnection,
    who: &Principal,
    signed: &SignedCreate,
    issued: &Issued,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let prepared = callers_prepared(conn, who, &signed.prepared_id)?;
    if prepared.prescription_uuid.is_some() {
        let content: SignedPrescription = signing::payload_of(&prepared.signing_input)?;
        return already_used(conn, &prepared, &content, &signed.signature);
    }
    usable_prepared(conn, who, &prepared, at)?;
    let uuid = &issued.prescription.row.uuid;
    if !signatures::mark_used(conn, &prepared.prepared_id, &signed.signature, uuid)? {
        return Err(AppError::ConcurrentUpdate);
    }
    store_issued(conn, who, issued, at)?;
    Ok(issued.view())
}

/// `POST /api/v1/prescriptions` with `{prepared_id, signature}` in one transaction:
/// [`check_signed`] then [`store_signed`]. Sending the same signature again answers the
/// prescription it issued; any other use of a used prepared ID is refused.
pub fn create_signed(
    conn: &mut DbConnection,
    keys: &KeyRing,
    who: &Principal,
    signed: &SignedCreate,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    match check_signed(conn, keys, who, signed, at)? {
        SignedCheck::AlreadyIssued(view) => Ok(view),
        SignedCheck::Issue(issued) => store_signed(conn, who, signed, &issued, at),
    }
}
