//! The prescription operations, one file per operation. Each runs inside one write transaction
//! (see [`crate::store`]), applies THE status machine ([`crate::domain::machine`]), writes the
//! change with a version check through [`crate::store::prescriptions`] and appends the audit
//! entry in the same transaction. Handlers only call these.
//!
//! Every operation is given the time it runs at (`at`, read from [`crate::clock::Clock`] inside
//! its transaction); none reads a clock itself.
//!
//! This module holds what the operations share: loading a prescription (with lazy expiry), who
//! may see or act on it, saving a transition, and the view of a loaded prescription.

mod cancel;
mod claim;
mod create;
mod dispense;
mod expiry;
mod issues;
mod prescriber_keys;
mod read;
mod receipt;
mod release;
mod return_;
mod search;
mod token;

pub use cancel::cancel;
pub use claim::claim;
pub use create::{
    Issued, SignedCheck, Unsigned, ValidItem, ValidNew, check_signed, create, create_signed,
    issue_unsigned, may_create_unsigned, prepare, store_issued, store_signed, validate_new,
};
pub use dispense::{dispense, held_item_lines, withdraw};
pub use expiry::{Housekeeping, HousekeepingJob, HousekeepingReport, housekeeping, sweep_expired};
pub use prescriber_keys::{Enrolled, enrol, key_set, revoke};
pub use read::{events, full_view, get, history, peek, record_read};
pub use receipt::receipt;
pub use release::{ReleaseTarget, release, release_checked, release_nominated, release_target};
pub use return_::return_to_spine;
pub use search::{SearchQuery, ValidSearch, search, validate as validate_search};
pub use token::token_sheet;

use chrono::NaiveDateTime;
use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::views::{ItemView, Patient, Prescriber, PrescriptionView};

use crate::auth::{Principal, Role};
use crate::domain::machine::{self, Event};
use crate::domain::{ItemStatus, Status};
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::prescriptions::{self as rows, ItemRow, Lock, Row};

/// The actor of changes the service makes by itself (expiry).
pub fn system() -> Principal {
    Principal {
        sub: "prescrypt".into(),
        role: Role::Admin,
        org: crate::auth::SYSTEM_ORG.into(),
    }
}

/// Parses the `{id}` of a path: short form, any case, with or without hyphens.
pub fn parse_id(text: &str) -> Result<PrescriptionId, AppError> {
    PrescriptionId::parse(&text.trim().to_ascii_uppercase())
        .map_err(|e| AppError::invalid("invalid-prescription-id", "id", e.to_string()))
}

/// Prescription counts by status (for /metrics).
pub fn count_by_status(conn: &mut DbConnection) -> Result<Vec<(String, i64)>, AppError> {
    Ok(rows::count_by_status(conn)?
        .into_iter()
        .map(|(status, count)| (status.code().to_owned(), count))
        .collect())
}

/// A stored (compact) prescription ID as shown: hyphenated.
fn hyphenated(compact: &str) -> String {
    PrescriptionId::parse(compact)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| compact.to_owned())
}

/// A prescription with its items, as loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub row: Row,
    pub items: Vec<ItemRow>,
}

impl Loaded {
    pub fn status(&self) -> Status {
        self.row.status.0
    }

    pub fn view(&self) -> PrescriptionView {
        let id = hyphenated(&self.row.prescription_id);
        PrescriptionView {
            id,
            uuid: self.row.uuid.clone(),
            status: self.status().coded(),
            pending_cancellation: self.row.pending_cancellation,
            treatment_type: self.row.treatment_type.0.coded(),
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
                    quantity: item.quantity.get(),
                    unit: item.unit.clone(),
                    dosage: item.dosage.clone(),
                    status: item.status.0.coded(),
                    dispensed_quantity: item.dispensed_quantity.get(),
                    not_dispensed_reason: item.not_dispensed_reason.map(|reason| reason.0.coded()),
                    supplies: item.supplies.list().to_vec(),
                })
                .collect(),
            nominated_pharmacy: self.row.nominated_pharmacy.clone(),
            controlled_drug_schedule: self.row.controlled_drug_schedule,
            dispenser: self.row.dispenser.clone(),
            created_at: self.row.created_at.and_utc(),
            expires_at: self.row.expires_at.and_utc(),
            jws: self.row.jws.clone(),
            prescriber_jws: self.row.prescriber_jws.clone(),
            token: self.row.token.clone(),
            claim: None,
            days_supply: self.row.days_supply,
            start_date: self
                .row
                .start_date
                .map(|day| day.format("%Y-%m-%d").to_string()),
            ready_at: self.row.ready_at.map(|at| at.and_utc()),
            authorisation: self.row.authorisation.as_deref().map(hyphenated),
        }
    }

    fn item_statuses(&self) -> Vec<ItemStatus> {
        self.items.iter().map(|item| item.status.0).collect()
    }

    /// Applies an item-level rule of [`machine`] to every item.
    fn map_items(&mut self, rule: fn(ItemStatus) -> ItemStatus) {
        for item in &mut self.items {
            item.status.0 = rule(item.status.0);
        }
    }
}

fn load(
    conn: &mut DbConnection,
    id: &PrescriptionId,
    lock: Lock,
) -> Result<Option<Loaded>, AppError> {
    rows::find_by_short_id(conn, id.compact(), lock)?
        .map(|row| with_items(conn, row))
        .transpose()
}

fn with_items(conn: &mut DbConnection, row: Row) -> Result<Loaded, AppError> {
    let items = rows::items_of(conn, &row.uuid)?;
    Ok(Loaded { row, items })
}

/// Loads a prescription, expiring it first if its time is up (lazy expiry).
fn load_live(
    conn: &mut DbConnection,
    id: &PrescriptionId,
    at: NaiveDateTime,
) -> Result<Option<Loaded>, AppError> {
    let Some(mut loaded) = load(conn, id, Lock::ForUpdate)? else {
        return Ok(None);
    };
    expiry::expire_if_due(conn, &mut loaded, at)?;
    issues::ready_if_due(conn, &mut loaded, at)?;
    Ok(Some(loaded))
}

/// Writes the new status and items, only if nobody changed the prescription meanwhile.
fn save(
    conn: &mut DbConnection,
    loaded: &mut Loaded,
    to: Status,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    let expected = loaded.row.version;
    loaded.row.status.0 = to;
    loaded.row.version = expected + 1;
    loaded.row.updated_at = at;
    if rows::update_if_version(conn, &loaded.row, &loaded.items, expected)? {
        Ok(())
    } else {
        Err(AppError::ConcurrentUpdate)
    }
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
    at: NaiveDateTime,
) -> Result<Loaded, AppError> {
    match load_live(conn, id, at)? {
        Some(loaded) if can_view(who, &loaded.row) => Ok(loaded),
        _ => Err(AppError::PrescriptionNotFound),
    }
}

/// A prescription of the caller's organisation (prescriber side), or 404.
fn own(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    at: NaiveDateTime,
) -> Result<Loaded, AppError> {
    match load_live(conn, id, at)? {
        Some(loaded) if loaded.row.prescriber_org == who.org => Ok(loaded),
        _ => Err(AppError::PrescriptionNotFound),
    }
}

/// A prescription held by the caller's pharmacy, or 404 (403 for non-pharmacists).
fn held(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    action: &'static str,
    at: NaiveDateTime,
) -> Result<Loaded, AppError> {
    who.require(Role::Pharmacist, action)?;
    // The issue this pharmacy holds or last held: of a repeat-dispensing prescription, a later
    // issue may already be current while it claims or withdraws an earlier one.
    let Some(row) = rows::find_held_issue(conn, id.compact(), &who.org, Lock::ForUpdate)? else {
        return Err(AppError::PrescriptionNotFound);
    };
    let mut loaded = with_items(conn, row)?;
    expiry::expire_if_due(conn, &mut loaded, at)?;
    Ok(loaded)
}
