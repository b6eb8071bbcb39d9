//! `POST /api/v1/prescriptions/{id}/claim`: the holding pharmacy claims reimbursement — the
//! patient's charge exemption (or the charges paid), whether evidence was seen, and the dispenser
//! endorsements of every item supplied, checked against the EPS code lists. Sent again while the
//! claim window is open, it amends the claim.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::views::{
    ClaimLineView, ClaimRequest, ClaimView, EndorsementView, PrescriptionView,
};
use prescrypt_contract::{ChargeExemption, DispenserEndorsement};
use serde_json::json;

use super::create::text_field;
use super::{Loaded, held, save, transition};
use crate::audit;
use crate::auth::Principal;
use crate::domain::{Event, Status};
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::claims::{self, ClaimRow};

/// Most endorsements on one item.
pub const MAX_ENDORSEMENTS: usize = 5;
/// Longest supporting text of an endorsement.
pub const MAX_ENDORSEMENT_TEXT: usize = 200;

pub fn claim(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    body: &ClaimRequest,
    claim_window: chrono::Duration,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let mut loaded = held(conn, who, id, "claim prescriptions", at)?;
    if loaded.status() == Status::Claimed {
        return amend(conn, who, &loaded, body, claim_window, at);
    }
    let to = transition(&loaded, Event::Claim)?;
    let view = validate(&loaded, body, at)?;
    save(conn, &mut loaded, to, at)?;
    claims::insert(
        conn,
        &ClaimRow {
            prescription_uuid: loaded.row.uuid.clone(),
            org: who.org.clone(),
            claimed_at: at,
            amended_at: None,
            body: serde_json::to_string(&view)?,
        },
    )?;
    audit::append(
        conn,
        who,
        "claimed",
        Some(&loaded.row.uuid),
        &json!({"claim": body}),
        at,
    )?;
    Ok(with_claim(loaded.view(), Some(view)))
}

/// A new claim in place of the recorded one, while the claim window (from the original claim)
/// is open.
fn amend(
    conn: &mut DbConnection,
    who: &Principal,
    loaded: &Loaded,
    body: &ClaimRequest,
    claim_window: chrono::Duration,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let recorded = claims::find(conn, &loaded.row.uuid)?.ok_or_else(|| {
        AppError::illegal(
            "amend a claim (no claim recorded)",
            Status::Claimed.to_string(),
        )
    })?;
    if at >= recorded.claimed_at + claim_window {
        return Err(AppError::illegal(
            "amend a claim after the claim window",
            Status::Claimed.to_string(),
        ));
    }
    let mut view = validate(loaded, body, recorded.claimed_at)?;
    view.amended_at = Some(at.and_utc());
    claims::amend(conn, &loaded.row.uuid, &serde_json::to_string(&view)?, at)?;
    audit::append(
        conn,
        who,
        "claim-amended",
        Some(&loaded.row.uuid),
        &json!({"claim": body}),
        at,
    )?;
    Ok(with_claim(loaded.view(), Some(view)))
}

/// The claim checked against the prescription and the code lists.
fn validate(
    loaded: &Loaded,
    body: &ClaimRequest,
    claimed_at: NaiveDateTime,
) -> Result<ClaimView, AppError> {
    let exemption = ChargeExemption::parse(&body.exemption).ok_or_else(|| {
        AppError::field(
            "exemption",
            "a prescription-charge exemption code 0001 to 0015",
        )
    })?;
    let supplied: Vec<i32> = loaded
        .items
        .iter()
        .filter(|item| !item.dispensed_quantity.get().is_zero())
        .map(|item| item.line)
        .collect();
    match (exemption, body.charges_paid) {
        (ChargeExemption::PaidCharges, None) => {
            return Err(AppError::field(
                "charges_paid",
                "exemption 0001 (paid) says how many charges were paid",
            ));
        }
        (ChargeExemption::PaidCharges, Some(paid))
            if !exemption
                .charges_paid_allowed(supplied.len())
                .contains(&(paid as usize)) =>
        {
            return Err(AppError::field(
                "charges_paid",
                format!("1 to {} (the items supplied)", supplied.len()),
            ));
        }
        (ChargeExemption::PaidCharges, Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            return Err(AppError::field(
                "charges_paid",
                "only exemption 0001 (paid) names charges paid",
            ));
        }
    }
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(body.items.len());
    for (index, line) in body.items.iter().enumerate() {
        let field = |name: &str| format!("items[{index}].{name}");
        if !seen.insert(line.line) {
            return Err(AppError::field(field("line"), "each line at most once"));
        }
        if !loaded.items.iter().any(|item| item.line == line.line) {
            return Err(AppError::field(
                field("line"),
                format!("no line {}", line.line),
            ));
        }
        if !supplied.contains(&line.line) {
            return Err(AppError::field(
                field("line"),
                format!("line {} was not supplied: nothing to claim", line.line),
            ));
        }
        if line.endorsements.is_empty() || line.endorsements.len() > MAX_ENDORSEMENTS {
            return Err(AppError::field(
                field("endorsements"),
                format!("1 to {MAX_ENDORSEMENTS} endorsements (NDEC when there is none)"),
            ));
        }
        let mut endorsements = Vec::with_capacity(line.endorsements.len());
        for (e, endorsement) in line.endorsements.iter().enumerate() {
            let at = |name: &str| field(&format!("endorsements[{e}].{name}"));
            let code = DispenserEndorsement::parse(&endorsement.code).ok_or_else(|| {
                AppError::field(
                    at("code"),
                    "an EPS dispenser endorsement code (e.g. NDEC, BB, IP)",
                )
            })?;
            if code == DispenserEndorsement::None && line.endorsements.len() > 1 {
                return Err(AppError::field(
                    at("code"),
                    "NDEC (no endorsement) stands alone",
                ));
            }
            let text = endorsement
                .text
                .as_deref()
                .map(|text| text_field(text, &at("text"), MAX_ENDORSEMENT_TEXT))
                .transpose()?;
            endorsements.push(EndorsementView {
                code: code.coded(),
                text,
            });
        }
        items.push(ClaimLineView {
            line: line.line,
            endorsements,
        });
    }
    if let Some(missing) = supplied.iter().find(|line| !seen.contains(line)) {
        return Err(AppError::field(
            "items",
            format!("line {missing} was supplied: claim it with its endorsements"),
        ));
    }
    Ok(ClaimView {
        claimed_at: claimed_at.and_utc(),
        amended_at: None,
        exemption: exemption.coded(),
        evidence_seen: body.evidence_seen,
        charges_paid: body.charges_paid,
        items,
    })
}

fn with_claim(mut view: PrescriptionView, claim: Option<ClaimView>) -> PrescriptionView {
    view.claim = claim;
    view
}

/// The recorded claim of a claimed prescription (one more read, for claimed ones only).
pub fn recorded(conn: &mut DbConnection, loaded: &Loaded) -> Result<Option<ClaimView>, AppError> {
    if loaded.status() != Status::Claimed {
        return Ok(None);
    }
    claims::find(conn, &loaded.row.uuid)?
        .map(|row| serde_json::from_str(&row.body))
        .transpose()
        .map_err(AppError::from)
}
