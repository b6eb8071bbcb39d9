//! The prescription operations. Each runs inside one write transaction (see [`crate::store`]),
//! applies THE status machine, writes the change with a version check and appends the audit
//! entry in the same transaction. Handlers only call these.

use chrono::{NaiveDate, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use prescrypt_barcode::token::TOKEN_LEN;
use prescrypt_barcode::{NhsNumber, PrescriptionId, Token};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::auth::{Principal, Role, is_ods_code};
use crate::domain::machine::{self, CancelDecision, DispenseOutcome, Event};
use crate::domain::{
    CancelReason, ItemStatus, NotDispensedReason, ReturnReason, Status, TreatmentType, validity,
};
use crate::error::AppError;
use crate::keys::KeyRing;
use crate::signing;
use crate::store::DbConnection;
use crate::store::schema::{dispense_notifications, items, org_sequences, prescriptions};
use crate::views::{
    CancelResult, DispenseRequest, History, HistoryEvent, ItemView, NewPrescription,
    NominatedRelease, Outcome, Patient, Prescriber, PrescriptionView, ReleaseRequest,
};

/// Most prescriptions one nominated release hands out (EPS: 25).
pub const NOMINATED_BATCH: i64 = 25;
/// Most items on one prescription (FP10).
pub const MAX_ITEMS: usize = 4;

/// Now, truncated to microseconds so SQLite and PostgreSQL store the same value.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// The actor of changes the service makes by itself (expiry).
pub fn system() -> Principal {
    Principal {
        sub: "prescrypt".into(),
        role: Role::Admin,
        org: "SYSTEM".into(),
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = prescriptions, treat_none_as_null = true)]
pub struct Row {
    pub uuid: String,
    pub short_id: String,
    pub status: String,
    pub pending_cancellation: bool,
    pub cancellation_requested_by: Option<String>,
    pub cancel_reason: Option<String>,
    pub treatment_type: String,
    pub issue_number: i32,
    pub issue_count: i32,
    pub prescriber_id: String,
    pub prescriber_org: String,
    pub patient_nhs_number: String,
    pub patient_name: String,
    pub patient_birth_date: NaiveDate,
    pub nominated_pharmacy: Option<String>,
    pub controlled_drug_schedule: Option<i32>,
    pub dispenser: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub jws: String,
    pub token: String,
    pub version: i64,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = items)]
pub struct ItemRow {
    pub uuid: String,
    pub prescription_uuid: String,
    pub line: i32,
    pub code: String,
    pub display: String,
    pub quantity: f64,
    pub unit: String,
    pub dosage: String,
    pub status: String,
    pub dispensed_quantity: f64,
    pub not_dispensed_reason: Option<String>,
}

/// A prescription with its items, as loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub row: Row,
    pub items: Vec<ItemRow>,
}

impl Loaded {
    pub fn status(&self) -> Status {
        Status::parse(&self.row.status).unwrap_or(Status::ToBeDispensed)
    }

    pub fn view(&self) -> PrescriptionView {
        let id = PrescriptionId::parse(&self.row.short_id)
            .map(|id| id.to_string())
            .unwrap_or_else(|_| self.row.short_id.clone());
        PrescriptionView {
            id,
            uuid: self.row.uuid.clone(),
            status: self.status().coded(),
            pending_cancellation: self.row.pending_cancellation,
            treatment_type: TreatmentType::parse(&self.row.treatment_type)
                .unwrap_or(TreatmentType::Acute)
                .coded(),
            issue_number: self.row.issue_number,
            issue_count: self.row.issue_count,
            prescriber: Prescriber {
                id: self.row.prescriber_id.clone(),
                org: self.row.prescriber_org.clone(),
            },
            patient: Patient {
                nhs_number: self.row.patient_nhs_number.clone(),
                name: self.row.patient_name.clone(),
                birth_date: self.row.patient_birth_date.format("%Y-%m-%d").to_string(),
            },
            items: self
                .items
                .iter()
                .map(|item| ItemView {
                    line: item.line,
                    uuid: item.uuid.clone(),
                    code: item.code.clone(),
                    display: item.display.clone(),
                    quantity: item.quantity,
                    unit: item.unit.clone(),
                    dosage: item.dosage.clone(),
                    status: ItemStatus::parse(&item.status)
                        .unwrap_or(ItemStatus::ToBeDispensed)
                        .coded(),
                    dispensed_quantity: item.dispensed_quantity,
                    not_dispensed_reason: item
                        .not_dispensed_reason
                        .as_deref()
                        .and_then(NotDispensedReason::parse)
                        .map(NotDispensedReason::coded),
                })
                .collect(),
            nominated_pharmacy: self.row.nominated_pharmacy.clone(),
            controlled_drug_schedule: self.row.controlled_drug_schedule,
            dispenser: self.row.dispenser.clone(),
            created_at: self.row.created_at.and_utc(),
            expires_at: self.row.expires_at.and_utc(),
            jws: self.row.jws.clone(),
            token: self.row.token.clone(),
        }
    }

    fn item_statuses(&self) -> Vec<ItemStatus> {
        self.items
            .iter()
            .map(|i| ItemStatus::parse(&i.status).unwrap_or(ItemStatus::ToBeDispensed))
            .collect()
    }
}

/// The signed clinical content (the JWS payload).
#[derive(Debug, Serialize)]
struct ClinicalContent<'a> {
    id: String,
    uuid: &'a str,
    prescriber: Prescriber,
    patient: Patient,
    items: Vec<SignedItem<'a>>,
    treatment_type: &'a str,
    issue_number: i32,
    issue_count: i32,
    nominated_pharmacy: Option<&'a str>,
    controlled_drug_schedule: Option<i32>,
    created_at: String,
    expires_at: String,
}

#[derive(Debug, Serialize)]
struct SignedItem<'a> {
    line: i32,
    uuid: &'a str,
    code: &'a str,
    display: &'a str,
    quantity: f64,
    unit: &'a str,
    dosage: &'a str,
}

fn text_field(value: &str, field: &str, max: usize) -> Result<String, AppError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max || trimmed.chars().any(char::is_control)
    {
        return Err(AppError::field(
            field,
            format!("{field} must be 1 to {max} printable characters"),
        ));
    }
    Ok(trimmed.to_owned())
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

fn quantity_field(value: f64, field: &str) -> Result<f64, AppError> {
    if value.is_finite() && value > 0.0 && value <= 1_000_000.0 {
        Ok(value)
    } else {
        Err(AppError::field(
            field,
            "a quantity is a number greater than 0",
        ))
    }
}

/// Next value of the organisation's ID sequence (20 bits, wrapping), in the caller's transaction.
fn next_sequence(conn: &mut DbConnection, org: &str) -> Result<u32, AppError> {
    // One upsert, so two instances creating an organisation's first prescription at once
    // cannot both insert its row.
    let upsert = diesel::insert_into(org_sequences::table)
        .values((
            org_sequences::org.eq(org),
            org_sequences::next_value.eq(1_i64),
        ))
        .on_conflict(org_sequences::org)
        .do_update()
        .set(org_sequences::next_value.eq(org_sequences::next_value + 1));
    match conn {
        DbConnection::Postgresql(pg) => upsert.execute(pg)?,
        DbConnection::Sqlite(sqlite) => upsert.execute(sqlite)?,
    };
    let value: i64 = org_sequences::table
        .filter(org_sequences::org.eq(org))
        .select(org_sequences::next_value)
        .first(conn)?;
    Ok(u32::try_from((value - 1) & i64::from(prescrypt_barcode::id::MAX_SEQUENCE)).unwrap_or(0))
}

/// Checks a create request; everything is validated before anything is written.
pub struct ValidNew {
    nhs_number: NhsNumber,
    name: String,
    birth_date: NaiveDate,
    items: Vec<(String, String, f64, String, String)>,
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

pub fn validate_new(body: &NewPrescription) -> Result<ValidNew, AppError> {
    let nhs_number = NhsNumber::parse(body.patient.nhs_number.trim()).map_err(|e| {
        AppError::invalid("invalid-nhs-number", "patient.nhs_number", e.to_string())
    })?;
    let name = text_field(&body.patient.name, "patient.name", 200)?;
    let birth_date = NaiveDate::parse_from_str(body.patient.birth_date.trim(), "%Y-%m-%d")
        .map_err(|_| AppError::field("patient.birth_date", "a date as YYYY-MM-DD"))?;
    if birth_date > Utc::now().date_naive() {
        return Err(AppError::field(
            "patient.birth_date",
            "the birth date is in the future",
        ));
    }
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
            Ok((
                text_field(&item.code, &at("code"), 64)?,
                text_field(&item.display, &at("display"), 256)?,
                quantity_field(item.quantity, &at("quantity"))?,
                text_field(&item.unit, &at("unit"), 64)?,
                text_field(&item.dosage, &at("dosage"), 512)?,
            ))
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
        .map(|((code, display, quantity, unit, dosage), line)| ItemRow {
            uuid: uuid::Uuid::new_v4().to_string(),
            prescription_uuid: uuid.clone(),
            line,
            code: code.clone(),
            display: display.clone(),
            quantity: *quantity,
            unit: unit.clone(),
            dosage: dosage.clone(),
            status: ItemStatus::ToBeDispensed.code().to_owned(),
            dispensed_quantity: 0.0,
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
    let content = ClinicalContent {
        id: id.to_string(),
        uuid: &uuid,
        prescriber: prescriber.clone(),
        patient: patient.clone(),
        items: item_rows
            .iter()
            .map(|i| SignedItem {
                line: i.line,
                uuid: &i.uuid,
                code: &i.code,
                display: &i.display,
                quantity: i.quantity,
                unit: &i.unit,
                dosage: &i.dosage,
            })
            .collect(),
        treatment_type: new.treatment_type.code(),
        issue_number: 1,
        issue_count: new.issue_count,
        nominated_pharmacy: new.nominated.as_deref(),
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
        status: Status::ToBeDispensed.code().to_owned(),
        pending_cancellation: false,
        cancellation_requested_by: None,
        cancel_reason: None,
        treatment_type: new.treatment_type.code().to_owned(),
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
    diesel::insert_into(prescriptions::table)
        .values(&row)
        .execute(conn)?;
    for item in &item_rows {
        diesel::insert_into(items::table)
            .values(item)
            .execute(conn)?;
    }
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

/// Parses the `{id}` of a path: short form, any case, with or without hyphens.
pub fn parse_id(text: &str) -> Result<PrescriptionId, AppError> {
    PrescriptionId::parse(&text.trim().to_ascii_uppercase())
        .map_err(|e| AppError::invalid("invalid-prescription-id", "id", e.to_string()))
}

/// Whether a load locks the prescription until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// Every write decides its change from what it read: on PostgreSQL the row is locked
    /// (`FOR UPDATE`), so a racing instance waits and then decides from the outcome. (SQLite has
    /// one writer at a time, so its reads inside a write are already exclusive.)
    ForUpdate,
    /// Read-only paths (the replica cannot lock).
    None,
}

fn load_by_short_id(
    conn: &mut DbConnection,
    id: &PrescriptionId,
    lock: Lock,
) -> Result<Option<Loaded>, AppError> {
    let query = prescriptions::table.filter(prescriptions::short_id.eq(id.compact()));
    let row: Option<Row> = match &mut *conn {
        DbConnection::Postgresql(pg) if lock == Lock::ForUpdate => query
            .select(Row::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        other => query.select(Row::as_select()).first(other).optional()?,
    };
    row.map(|row| load_items(conn, row)).transpose()
}

fn load_items(conn: &mut DbConnection, row: Row) -> Result<Loaded, AppError> {
    let items = items::table
        .filter(items::prescription_uuid.eq(&row.uuid))
        .order(items::line.asc())
        .select(ItemRow::as_select())
        .load(conn)?;
    Ok(Loaded { row, items })
}

/// Loads a prescription, expiring it first if its time is up (lazy expiry).
fn load_live(conn: &mut DbConnection, id: &PrescriptionId) -> Result<Option<Loaded>, AppError> {
    let Some(mut loaded) = load_by_short_id(conn, id, Lock::ForUpdate)? else {
        return Ok(None);
    };
    expire_if_due(conn, &mut loaded, now())?;
    Ok(Some(loaded))
}

fn expire_if_due(
    conn: &mut DbConnection,
    loaded: &mut Loaded,
    at: NaiveDateTime,
) -> Result<bool, AppError> {
    let status = loaded.status();
    if at < loaded.row.expires_at || !machine::is_active(status) {
        return Ok(false);
    }
    let to = machine::next(status, Event::Expire)
        .map_err(|_| AppError::illegal("expire", status.to_string()))?;
    for item in &mut loaded.items {
        let current = ItemStatus::parse(&item.status).unwrap_or(ItemStatus::ToBeDispensed);
        item.status = machine::expire_item(current).code().to_owned();
    }
    save(conn, loaded, to, at)?;
    audit::append(
        conn,
        &system(),
        "expired",
        Some(&loaded.row.uuid),
        &json!({"from": status.code(), "to": to.code()}),
        at,
    )?;
    Ok(true)
}

/// Writes the new status and items, only if nobody changed the prescription meanwhile.
fn save(
    conn: &mut DbConnection,
    loaded: &mut Loaded,
    to: Status,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    let expected = loaded.row.version;
    loaded.row.status = to.code().to_owned();
    loaded.row.version = expected + 1;
    loaded.row.updated_at = at;
    let changed = diesel::update(
        prescriptions::table
            .filter(prescriptions::uuid.eq(&loaded.row.uuid))
            .filter(prescriptions::version.eq(expected)),
    )
    .set(&loaded.row)
    .execute(conn)?;
    if changed != 1 {
        return Err(AppError::ConcurrentUpdate);
    }
    for item in &loaded.items {
        diesel::update(items::table.filter(items::uuid.eq(&item.uuid)))
            .set((
                items::status.eq(&item.status),
                items::dispensed_quantity.eq(item.dispensed_quantity),
                items::not_dispensed_reason.eq(&item.not_dispensed_reason),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn can_view(who: &Principal, row: &Row) -> bool {
    who.role == Role::Admin
        || who.org == row.prescriber_org
        || row.dispenser.as_deref() == Some(who.org.as_str())
}

fn transition(loaded: &Loaded, event: Event) -> Result<Status, AppError> {
    let from = loaded.status();
    machine::next(from, event).map_err(|_| AppError::illegal(event.action(), from.to_string()))
}

/// A prescription the caller may see, or 404.
fn visible(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
) -> Result<Loaded, AppError> {
    match load_live(conn, id)? {
        Some(loaded) if can_view(who, &loaded.row) => Ok(loaded),
        _ => Err(AppError::PrescriptionNotFound),
    }
}

/// A prescription held by the caller's pharmacy, or 404 (403 for non-pharmacists).
fn held(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    action: &'static str,
) -> Result<Loaded, AppError> {
    who.require(Role::Pharmacist, action)?;
    match load_live(conn, id)? {
        Some(loaded) if loaded.row.dispenser.as_deref() == Some(who.org.as_str()) => Ok(loaded),
        _ => Err(AppError::PrescriptionNotFound),
    }
}

pub fn get(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
) -> Result<PrescriptionView, AppError> {
    let loaded = visible(conn, who, id)?;
    record_read(conn, who, &loaded.row.uuid, "viewed")?;
    Ok(loaded.view())
}

/// The read-only half of [`get`] and [`history`], for a read replica: the prescription when the
/// caller may see it and nothing about it is due to change. `None` (not visible here, or due to
/// expire) sends the request down the primary path, which also gives the authoritative 404.
pub fn peek(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
) -> Result<Option<Loaded>, AppError> {
    let Some(loaded) = load_by_short_id(conn, id, Lock::None)? else {
        return Ok(None);
    };
    let due = now() >= loaded.row.expires_at && machine::is_active(loaded.status());
    Ok((can_view(who, &loaded.row) && !due).then_some(loaded))
}

/// Audits a read: one served here, or one that [`peek`] served from a replica (the chain lives on
/// the primary).
pub fn record_read(
    conn: &mut DbConnection,
    who: &Principal,
    prescription_uuid: &str,
    action: &str,
) -> Result<(), AppError> {
    audit::append(
        conn,
        who,
        action,
        Some(prescription_uuid),
        &json!({}),
        now(),
    )
}

pub fn history(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
) -> Result<History, AppError> {
    let loaded = visible(conn, who, id)?;
    record_read(conn, who, &loaded.row.uuid, "history-viewed")?;
    events(conn, &loaded.row.uuid)
}

/// Every event of a prescription, oldest first (reads are audited but not listed).
pub fn events(conn: &mut DbConnection, prescription_uuid: &str) -> Result<History, AppError> {
    let events = audit::for_prescription(conn, prescription_uuid)?
        .into_iter()
        .filter(|entry| !entry.action.ends_with("viewed"))
        .map(|entry| HistoryEvent {
            at: entry.at.and_utc(),
            actor: entry.actor,
            org: entry.org,
            role: entry.role,
            action: entry.action,
            detail: serde_json::from_str(&entry.detail).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(History { events })
}

/// What the scanned text names.
enum Scanned {
    Token(PrescriptionId),
    BareId(PrescriptionId),
}

fn read_scanned(keys: &KeyRing, text: &str) -> Result<Scanned, AppError> {
    let text = text.trim();
    if text.len() == TOKEN_LEN || text.starts_with("RX") {
        let token = Token::parse(text)
            .map_err(|e| AppError::invalid("invalid-token", "token", e.to_string()))?;
        // A token we cannot verify names nothing the caller may have: 404, as for a bare ID.
        let key = keys
            .find(token.key_id().as_str())
            .ok_or(AppError::PrescriptionNotFound)?;
        token
            .verify(&key.signing.verifying_key())
            .map_err(|_| AppError::PrescriptionNotFound)?;
        return Ok(Scanned::Token(token.prescription_id()));
    }
    let id = PrescriptionId::parse(&text.to_ascii_uppercase())
        .map_err(|e| AppError::invalid("invalid-prescription-id", "token", e.to_string()))?;
    Ok(Scanned::BareId(id))
}

fn release_loaded(
    conn: &mut DbConnection,
    who: &Principal,
    loaded: &mut Loaded,
    how: &str,
) -> Result<(), AppError> {
    let status = loaded.status();
    if matches!(status, Status::WithDispenser | Status::WithDispenserActive) {
        return match loaded.row.dispenser.as_deref() {
            // Nothing changes, but the holder reads it again: audited like any read.
            Some(holder) if holder == who.org => record_read(conn, who, &loaded.row.uuid, "viewed"),
            Some(holder) => Err(AppError::HeldByAnotherDispenser {
                holder: holder.to_owned(),
            }),
            None => Err(AppError::Internal("held without a dispenser".into())),
        };
    }
    let to = transition(loaded, Event::Release)?;
    for item in &mut loaded.items {
        if item.status == ItemStatus::ToBeDispensed.code() {
            item.status = ItemStatus::WithDispenser.code().to_owned();
        }
    }
    loaded.row.dispenser = Some(who.org.clone());
    let at = now();
    save(conn, loaded, to, at)?;
    audit::append(
        conn,
        who,
        "released",
        Some(&loaded.row.uuid),
        &json!({"via": how}),
        at,
    )?;
    Ok(())
}

pub fn release(
    conn: &mut DbConnection,
    keys: &KeyRing,
    who: &Principal,
    body: &ReleaseRequest,
) -> Result<PrescriptionView, AppError> {
    who.require(Role::Pharmacist, "release prescriptions")?;
    let (id, nominated_only) = match read_scanned(keys, &body.token)? {
        Scanned::Token(id) => (id, false),
        Scanned::BareId(id) => (id, true),
    };
    let mut loaded = load_live(conn, &id)?.ok_or(AppError::PrescriptionNotFound)?;
    if nominated_only
        && loaded.row.nominated_pharmacy.as_deref() != Some(who.org.as_str())
        && loaded.row.dispenser.as_deref() != Some(who.org.as_str())
    {
        return Err(AppError::PrescriptionNotFound);
    }
    release_loaded(
        conn,
        who,
        &mut loaded,
        if nominated_only { "id" } else { "token" },
    )?;
    Ok(loaded.view())
}

pub fn release_nominated(
    conn: &mut DbConnection,
    who: &Principal,
) -> Result<NominatedRelease, AppError> {
    who.require(Role::Pharmacist, "release prescriptions")?;
    let at = now();
    let query = prescriptions::table
        .filter(prescriptions::nominated_pharmacy.eq(&who.org))
        .filter(prescriptions::status.eq(Status::ToBeDispensed.code()))
        .filter(prescriptions::expires_at.gt(at))
        .order(prescriptions::created_at.asc())
        .limit(NOMINATED_BATCH + 1);
    // Lock the whole batch before the first audit append (which locks a chain head): taking
    // row locks one by one while holding a head could deadlock with a single-row write. The
    // batch is then released in chain order (audit::append's rule for several chains).
    // Rows another transaction holds are skipped; they are not To Be Dispensed for long.
    let rows: Vec<Row> = match &mut *conn {
        DbConnection::Postgresql(pg) => query
            .select(Row::as_select())
            .for_update()
            .skip_locked()
            .load(pg)?,
        other => query.select(Row::as_select()).load(other)?,
    };
    let more = rows.len() > usize::try_from(NOMINATED_BATCH).unwrap_or(25);
    let mut batch: Vec<(usize, Row)> = rows
        .into_iter()
        .take(usize::try_from(NOMINATED_BATCH).unwrap_or(25))
        .enumerate()
        .collect();
    batch.sort_by_key(|(oldest_first, row)| (audit::chain_of(Some(&row.uuid), ""), *oldest_first));
    let mut released = Vec::with_capacity(batch.len());
    for (oldest_first, row) in batch {
        let mut loaded = load_items(conn, row)?;
        release_loaded(conn, who, &mut loaded, "nominated")?;
        released.push((oldest_first, loaded.view()));
    }
    released.sort_by_key(|(oldest_first, _)| *oldest_first);
    Ok(NominatedRelease {
        prescriptions: released.into_iter().map(|(_, view)| view).collect(),
        more,
    })
}

pub fn return_to_spine(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    reason: &str,
) -> Result<PrescriptionView, AppError> {
    let reason = ReturnReason::parse(reason.trim())
        .ok_or_else(|| AppError::field("reason", "a return reason 0001 to 0008"))?;
    let mut loaded = held(conn, who, id, "return prescriptions")?;
    let mut to = transition(&loaded, Event::Return)?;
    for item in &mut loaded.items {
        if item.status == ItemStatus::WithDispenser.code() {
            item.status = ItemStatus::ToBeDispensed.code().to_owned();
        }
    }
    loaded.row.dispenser = None;
    let at = now();
    let mut detail = json!({"reason": reason.code()});
    if loaded.row.pending_cancellation {
        // The dispenser has been told; handing it back completes the cancellation.
        to = machine::next(to, Event::Cancel)
            .map_err(|_| AppError::illegal("cancel", to.to_string()))?;
        cancel_items(&mut loaded);
        loaded.row.pending_cancellation = false;
        detail["cancelled"] = json!(true);
    }
    save(conn, &mut loaded, to, at)?;
    audit::append(conn, who, "returned", Some(&loaded.row.uuid), &detail, at)?;
    Ok(loaded.view())
}

fn cancel_items(loaded: &mut Loaded) {
    for item in &mut loaded.items {
        item.status = ItemStatus::Cancelled.code().to_owned();
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ItemSnapshot {
    uuid: String,
    status: String,
    dispensed_quantity: f64,
    not_dispensed_reason: Option<String>,
}

pub fn dispense(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    body: &DispenseRequest,
) -> Result<PrescriptionView, AppError> {
    let mut loaded = held(conn, who, id, "dispense prescriptions")?;
    if loaded.row.pending_cancellation {
        return Err(AppError::PendingCancellation);
    }
    if body.items.is_empty() {
        return Err(AppError::field(
            "items",
            "a notification names at least one item",
        ));
    }
    let prior_status = loaded.status();
    let prior_items: Vec<ItemSnapshot> = loaded
        .items
        .iter()
        .map(|i| ItemSnapshot {
            uuid: i.uuid.clone(),
            status: i.status.clone(),
            dispensed_quantity: i.dispensed_quantity,
            not_dispensed_reason: i.not_dispensed_reason.clone(),
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (index, line) in body.items.iter().enumerate() {
        let field = |name: &str| format!("items[{index}].{name}");
        if !seen.insert(line.line) {
            return Err(AppError::field(field("line"), "each line at most once"));
        }
        let item = loaded
            .items
            .iter_mut()
            .find(|i| i.line == line.line)
            .ok_or_else(|| AppError::field(field("line"), format!("no line {}", line.line)))?;
        let current = ItemStatus::parse(&item.status).unwrap_or(ItemStatus::ToBeDispensed);
        if !matches!(
            current,
            ItemStatus::WithDispenser | ItemStatus::PartiallyDispensed
        ) {
            return Err(AppError::illegal(
                format!("dispense line {}", line.line),
                current.to_string(),
            ));
        }
        match line.outcome {
            Outcome::Complete => {
                item.status = ItemStatus::FullyDispensed.code().to_owned();
                item.dispensed_quantity = item.quantity;
            }
            Outcome::Partial => {
                let supplied = quantity_field(
                    line.quantity.ok_or_else(|| {
                        AppError::field(field("quantity"), "a partial supply names its quantity")
                    })?,
                    &field("quantity"),
                )?;
                if item.dispensed_quantity + supplied >= item.quantity {
                    return Err(AppError::field(
                        field("quantity"),
                        "that completes the item: send outcome complete",
                    ));
                }
                item.status = ItemStatus::PartiallyDispensed.code().to_owned();
                item.dispensed_quantity += supplied;
            }
            Outcome::NotDispensed => {
                let reason = line
                    .reason
                    .as_deref()
                    .and_then(NotDispensedReason::parse)
                    .ok_or_else(|| {
                        AppError::field(field("reason"), "a not-dispensed reason 0001 to 0011")
                    })?;
                item.status = ItemStatus::NotDispensed.code().to_owned();
                item.not_dispensed_reason = Some(reason.code().to_owned());
            }
        }
        if line.outcome != Outcome::Partial && line.quantity.is_some() {
            return Err(AppError::field(
                field("quantity"),
                "only a partial supply names a quantity",
            ));
        }
        if line.outcome != Outcome::NotDispensed && line.reason.is_some() {
            return Err(AppError::field(
                field("reason"),
                "only not_dispensed takes a reason",
            ));
        }
    }
    let outcome = DispenseOutcome::of(&loaded.item_statuses());
    let to = transition(&loaded, Event::Dispense(outcome))?;
    let at = now();
    save(conn, &mut loaded, to, at)?;
    diesel::insert_into(dispense_notifications::table)
        .values((
            dispense_notifications::uuid.eq(uuid::Uuid::new_v4().to_string()),
            dispense_notifications::prescription_uuid.eq(&loaded.row.uuid),
            dispense_notifications::org.eq(&who.org),
            dispense_notifications::actor.eq(&who.sub),
            dispense_notifications::created_at.eq(at),
            dispense_notifications::withdrawn.eq(false),
            dispense_notifications::prior_status.eq(prior_status.code()),
            dispense_notifications::prior_items.eq(serde_json::to_string(&prior_items)?),
            dispense_notifications::body.eq(serde_json::to_string(body)?),
        ))
        .execute(conn)?;
    audit::append(
        conn,
        who,
        "dispensed",
        Some(&loaded.row.uuid),
        &json!({"status": to.code(), "items": body.items}),
        at,
    )?;
    Ok(loaded.view())
}

pub fn withdraw(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
) -> Result<PrescriptionView, AppError> {
    let mut loaded = held(conn, who, id, "withdraw dispense notifications")?;
    let latest: Option<(String, String, String)> = dispense_notifications::table
        .filter(dispense_notifications::prescription_uuid.eq(&loaded.row.uuid))
        .filter(dispense_notifications::withdrawn.eq(false))
        .order(dispense_notifications::created_at.desc())
        .select((
            dispense_notifications::uuid,
            dispense_notifications::prior_status,
            dispense_notifications::prior_items,
        ))
        .first(conn)
        .optional()?;
    let Some((notification, prior_status, prior_items)) = latest else {
        return Err(AppError::illegal(
            "withdraw (no dispense notification)",
            loaded.status().to_string(),
        ));
    };
    let restored =
        Status::parse(&prior_status).ok_or_else(|| AppError::Internal("stored status".into()))?;
    let to = transition(&loaded, Event::Withdraw { restored })?;
    let snapshot: Vec<ItemSnapshot> = serde_json::from_str(&prior_items)?;
    for item in &mut loaded.items {
        if let Some(before) = snapshot.iter().find(|s| s.uuid == item.uuid) {
            item.status.clone_from(&before.status);
            item.dispensed_quantity = before.dispensed_quantity;
            item.not_dispensed_reason
                .clone_from(&before.not_dispensed_reason);
        }
    }
    let at = now();
    save(conn, &mut loaded, to, at)?;
    diesel::update(
        dispense_notifications::table.filter(dispense_notifications::uuid.eq(&notification)),
    )
    .set(dispense_notifications::withdrawn.eq(true))
    .execute(conn)?;
    audit::append(
        conn,
        who,
        "withdrawn",
        Some(&loaded.row.uuid),
        &json!({"status": to.code()}),
        at,
    )?;
    Ok(loaded.view())
}

pub fn claim(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
) -> Result<PrescriptionView, AppError> {
    let mut loaded = held(conn, who, id, "claim prescriptions")?;
    let to = transition(&loaded, Event::Claim)?;
    let at = now();
    save(conn, &mut loaded, to, at)?;
    audit::append(conn, who, "claimed", Some(&loaded.row.uuid), &json!({}), at)?;
    Ok(loaded.view())
}

pub fn cancel(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    reason: Option<&str>,
) -> Result<CancelResult, AppError> {
    who.require(Role::Prescriber, "cancel prescriptions")?;
    let reason = match reason {
        None => CancelReason::PrescribingError,
        Some(code) => CancelReason::parse(code.trim())
            .ok_or_else(|| AppError::field("reason", "a cancellation reason 0001 to 0009"))?,
    };
    let mut loaded = match load_live(conn, id)? {
        Some(loaded) if loaded.row.prescriber_org == who.org => loaded,
        _ => return Err(AppError::PrescriptionNotFound),
    };
    let status = loaded.status();
    let at = now();
    let decision = machine::cancel(
        status,
        loaded.row.cancellation_requested_by.as_deref(),
        &who.sub,
    );
    let response = match decision {
        CancelDecision::Cancel => {
            let to = transition(&loaded, Event::Cancel)?;
            cancel_items(&mut loaded);
            loaded.row.cancel_reason = Some(reason.code().to_owned());
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
                loaded.row.cancel_reason = Some(reason.code().to_owned());
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

/// What the printed token shows, for the prescribing organisation only.
pub fn token_sheet(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    dpi: prescrypt_barcode::render::Dpi,
) -> Result<prescrypt_barcode::render::TokenSheet, AppError> {
    let loaded = match load_live(conn, id)? {
        Some(loaded) if loaded.row.prescriber_org == who.org => loaded,
        _ => return Err(AppError::PrescriptionNotFound),
    };
    let token = Token::parse(&loaded.row.token)
        .map_err(|e| AppError::Internal(format!("stored token: {e}")))?;
    audit::append(
        conn,
        who,
        "token-printed",
        Some(&loaded.row.uuid),
        &json!({}),
        now(),
    )?;
    let mut sheet = prescrypt_barcode::render::TokenSheet::new(&token, dpi);
    sheet.patient_name = Some(loaded.row.patient_name.clone());
    sheet.nhs_number = NhsNumber::parse(&loaded.row.patient_nhs_number).ok();
    sheet.items = loaded
        .items
        .iter()
        .map(|item| {
            prescrypt_barcode::render::SheetItem::new(
                &item.display,
                format!("{} {}", item.quantity, item.unit),
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

/// Expires every prescription whose time is up (the periodic sweep); returns how many.
pub fn sweep_expired(conn: &mut DbConnection, limit: i64) -> Result<usize, AppError> {
    let at = now();
    let active: Vec<&str> = Status::ALL
        .iter()
        .filter(|s| machine::is_active(**s))
        .map(|s| s.code())
        .collect();
    let query = prescriptions::table
        .filter(prescriptions::expires_at.le(at))
        .filter(prescriptions::status.eq_any(active))
        .limit(limit);
    // As in release_nominated: lock the batch up front; rows busy elsewhere wait for the next run.
    let rows: Vec<Row> = match &mut *conn {
        DbConnection::Postgresql(pg) => query
            .select(Row::as_select())
            .for_update()
            .skip_locked()
            .load(pg)?,
        other => query.select(Row::as_select()).load(other)?,
    };
    let mut rows = rows;
    rows.sort_by_key(|row| audit::chain_of(Some(&row.uuid), ""));
    let mut expired = 0;
    for row in rows {
        let mut loaded = load_items(conn, row)?;
        if expire_if_due(conn, &mut loaded, at)? {
            expired += 1;
        }
    }
    Ok(expired)
}

/// Prescription counts by status (for /metrics).
pub fn count_by_status(conn: &mut DbConnection) -> Result<Vec<(String, i64)>, AppError> {
    use diesel::dsl::count_star;
    Ok(prescriptions::table
        .group_by(prescriptions::status)
        .select((prescriptions::status, count_star()))
        .load(conn)?)
}
