//! `POST /api/v1/release` (one prescription, by scanned token or nominated ID) and
//! `POST /api/v1/release/nominated` (a batch of those nominated to the caller).

use chrono::NaiveDateTime;
use prescrypt_barcode::PrescriptionId;
use prescrypt_barcode::scanned::{self, Scanned, Unrecognised};
use prescrypt_contract::limits::NOMINATED_BATCH;
use prescrypt_contract::views::{NominatedRelease, PrescriptionView, ReleaseRequest};
use serde_json::json;

use super::{Loaded, issues, load_live, record_read, save, transition, with_items};
use crate::audit;
use crate::auth::{Principal, Role};
use crate::domain::Status;
use crate::domain::machine::{self, Event};
use crate::error::AppError;
use crate::keys::KeyRing;
use crate::store::DbConnection;
use crate::store::prescriptions as rows;

/// How the caller named the prescription it releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// A verified token: whoever holds the paper may release it.
    Token,
    /// A bare ID: only for a prescription nominated to (or held by) the caller.
    Id,
}

impl Via {
    fn audit_name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Id => "id",
        }
    }
}

/// What the scanned text names, by the one classification of `prescrypt_barcode::scanned`.
fn read_scanned(keys: &KeyRing, text: &str) -> Result<(PrescriptionId, Via), AppError> {
    match scanned::classify(text.trim()) {
        Scanned::Token(token) => {
            // A token we cannot verify names nothing the caller may have: 404, as for a bare ID.
            let key = keys
                .find(token.key_id().as_str())
                .ok_or(AppError::PrescriptionNotFound)?;
            token
                .verify(&key.signing.verifying_key())
                .map_err(|_| AppError::PrescriptionNotFound)?;
            Ok((token.prescription_id(), Via::Token))
        }
        Scanned::PrescriptionId(id) => Ok((id, Via::Id)),
        Scanned::Other(Unrecognised::TokenShaped(error)) => Err(AppError::invalid(
            "invalid-token",
            "token",
            error.to_string(),
        )),
        Scanned::Other(other) => Err(AppError::invalid(
            "invalid-prescription-id",
            "token",
            other.to_string(),
        )),
    }
}

fn release_loaded(
    conn: &mut DbConnection,
    who: &Principal,
    loaded: &mut Loaded,
    how: &str,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    let status = loaded.status();
    if matches!(status, Status::WithDispenser | Status::WithDispenserActive) {
        return match loaded.row.dispenser.as_deref() {
            // Nothing changes, but the holder reads it again: audited like any read.
            Some(holder) if holder == who.org => {
                record_read(conn, who, &loaded.row.uuid, "viewed", at)
            }
            Some(holder) => Err(AppError::HeldByAnotherDispenser {
                holder: holder.to_owned(),
            }),
            None => Err(AppError::Internal("held without a dispenser".into())),
        };
    }
    issues::ready_if_due(conn, loaded, at)?;
    if let Some(refusal) = issues::not_yet_releasable(loaded) {
        return Err(refusal);
    }
    let to = transition(loaded, Event::Release)?;
    loaded.map_items(machine::release_item);
    loaded.row.dispenser = Some(who.org.clone());
    save(conn, loaded, to, at)?;
    rows::record_holder(conn, &who.org, &loaded.row.uuid)?;
    audit::append(
        conn,
        who,
        "released",
        Some(&loaded.row.uuid),
        &json!({"via": how, "issue_number": loaded.row.issue_number}),
        at,
    )?;
    Ok(())
}

/// The prescription a release names, with the scanned token's signature already checked: the
/// part of a release that needs no database, done before the write transaction ([`release_target`]).
#[derive(Debug, Clone, Copy)]
pub struct ReleaseTarget {
    id: PrescriptionId,
    via: Via,
}

/// Checks the caller's role and what the scanned text names (verifying a token's signature).
pub fn release_target(
    keys: &KeyRing,
    who: &Principal,
    body: &ReleaseRequest,
) -> Result<ReleaseTarget, AppError> {
    who.require(Role::Pharmacist, "release prescriptions")?;
    let (id, via) = read_scanned(keys, &body.token)?;
    Ok(ReleaseTarget { id, via })
}

/// Releases the prescription `target` names to the caller (in the write transaction).
pub fn release_checked(
    conn: &mut DbConnection,
    who: &Principal,
    target: ReleaseTarget,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let ReleaseTarget { id, via } = target;
    let mut loaded = load_live(conn, &id, at)?.ok_or(AppError::PrescriptionNotFound)?;
    if via == Via::Id
        && loaded.row.nominated_pharmacy.as_deref() != Some(who.org.as_str())
        && loaded.row.dispenser.as_deref() != Some(who.org.as_str())
    {
        return Err(AppError::PrescriptionNotFound);
    }
    release_loaded(conn, who, &mut loaded, via.audit_name(), at)?;
    Ok(loaded.view())
}

/// [`release_target`] then [`release_checked`], in one transaction.
pub fn release(
    conn: &mut DbConnection,
    keys: &KeyRing,
    who: &Principal,
    body: &ReleaseRequest,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let target = release_target(keys, who, body)?;
    release_checked(conn, who, target, at)
}

pub fn release_nominated(
    conn: &mut DbConnection,
    who: &Principal,
    at: NaiveDateTime,
) -> Result<NominatedRelease, AppError> {
    who.require(Role::Pharmacist, "release prescriptions")?;
    // Lock the whole batch (one more than a batch tells whether there are more) before the
    // first audit append (which locks a chain head): taking row locks one by one while holding
    // a head could deadlock with a single-row write. The batch is then released in chain order
    // (audit::append's rule for several chains). Rows another transaction holds are skipped;
    // they are not To Be Dispensed for long.
    let rows = rows::lock_nominated(conn, &who.org, at, NOMINATED_BATCH + 1)?;
    let more = rows.len() > NOMINATED_BATCH;
    let mut batch: Vec<(usize, _)> = rows.into_iter().take(NOMINATED_BATCH).enumerate().collect();
    batch.sort_by_key(|(oldest_first, row)| (audit::chain_of(Some(&row.uuid), ""), *oldest_first));
    let mut released = Vec::with_capacity(batch.len());
    for (oldest_first, row) in batch {
        let mut loaded = with_items(conn, row)?;
        release_loaded(conn, who, &mut loaded, "nominated", at)?;
        released.push((oldest_first, loaded.view()));
    }
    released.sort_by_key(|(oldest_first, _)| *oldest_first);
    Ok(NominatedRelease {
        prescriptions: released.into_iter().map(|(_, view)| view).collect(),
        more,
    })
}
