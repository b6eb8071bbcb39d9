//! `POST /FHIR/R4/Claim`: the holding pharmacy claims reimbursement. `prescription.extension`
//! (Extension-DM-GroupIdentifier, `shortForm`) names the prescription; `item.programCode` the
//! patient's charge exemption (prescription-charge-exemption) and whether evidence was seen
//! (DM-exemption-evidence); every `item.detail` is a line item (by its
//! ClaimMedicationRequestReference, else its `sequence`) with the dispenser's endorsements
//! (`programCode` of medicationdispense-endorsement, e.g. NDEC; `text` as supporting
//! information) and the charge paid (DM-prescription-charge `paid-once`). A detail without an
//! endorsement is refused, as EPS does; details of lines not supplied (dispense type 0002, 0004,
//! 0005, 0006 in `modifier`) claim nothing. The service's claim
//! ([`crate::prescriptions::claim`]) checks it against the code lists and records it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::read::{self, Node};
use super::{as_fhir, codes, idempotency, outcome};
use crate::api::mutate::mutate_with_key;
use crate::api::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;
use prescrypt_contract::views::{ClaimLine, ClaimRequest, Endorsement};

/// Which line item a claim detail is about.
enum LineRef {
    Uuid(String),
    Line(i32),
}

/// One claimed line item, as the message says.
struct Detail {
    /// Where it is in the message (`Claim.item[0].detail[n]`), for the errors about it.
    path: String,
    line_item: LineRef,
    endorsements: Vec<Endorsement>,
    paid: bool,
}

pub async fn claim(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let value = read::json_body(&body)?;
    let claim = Node::resource(&value, "Claim")?;
    let use_ = claim.req("use")?;
    if use_.str()? != "claim" {
        return Err(use_.invalid("claim"));
    }
    let prescription = claim.req("prescription")?;
    let group = prescription
        .extension(codes::EXT_GROUP_IDENTIFIER)?
        .ok_or_else(|| {
            AppError::invalid(
                "missing-field",
                format!("{}.extension", prescription.path),
                format!("the prescription's IDs ({})", codes::EXT_GROUP_IDENTIFIER),
            )
        })?;
    let mut short_form = None;
    for sub in group.list("extension")? {
        if sub.opt_str("url")? == Some("shortForm") {
            short_form = Some(sub.req("valueIdentifier")?.req("value")?);
        }
    }
    let short_form =
        short_form.ok_or_else(|| group.invalid("a shortForm extension with the short-form ID"))?;
    let id = ops::parse_id(short_form.str()?)
        .map_err(|_| short_form.invalid("a short-form prescription ID"))?;
    let items = claim.list("item")?;
    if items.is_empty() {
        return Err(AppError::invalid(
            "missing-field",
            "Claim.item",
            "the claimed items",
        ));
    }
    let mut exemption = None;
    let mut evidence_seen = false;
    let mut details: Vec<Detail> = Vec::new();
    for item in &items {
        for program in item.list("programCode")? {
            if let Some(code) = program.code_in(codes::CHARGE_EXEMPTION)? {
                exemption = Some(code.str()?.to_owned());
            }
            if let Some(code) = program.code_in(codes::EXEMPTION_EVIDENCE)? {
                evidence_seen = code.str()? == "evidence-seen";
            }
        }
        let item_details = item.list("detail")?;
        if item_details.is_empty() {
            return Err(AppError::invalid(
                "missing-field",
                format!("{}.detail", item.path),
                "one detail per line item, with its endorsement",
            ));
        }
        for detail in &item_details {
            let mut endorsements = Vec::new();
            let mut paid = false;
            for program in detail.list("programCode")? {
                if let Some(code) = program.code_in(codes::DISPENSER_ENDORSEMENT)? {
                    endorsements.push(Endorsement {
                        code: code.str()?.to_owned(),
                        text: program.opt_str("text")?.map(str::to_owned),
                    });
                }
                if let Some(code) = program.code_in(codes::PRESCRIPTION_CHARGE)? {
                    paid |= code.str()? == "paid-once";
                }
            }
            if endorsements.is_empty() {
                return Err(AppError::invalid(
                    "missing-field",
                    format!("{}.programCode", detail.path),
                    format!(
                        "the dispenser's endorsement (system {}, e.g. NDEC)",
                        codes::DISPENSER_ENDORSEMENT
                    ),
                ));
            }
            let mut supplied = true;
            for modifier in detail.list("modifier")? {
                if let Some(kind) = modifier.code_in(codes::DISPENSE_TYPE)? {
                    supplied &= matches!(kind.str()?, "0001" | "0003");
                }
            }
            let line_item = match detail.extension(codes::EXT_CLAIM_MEDICATION_REQUEST)? {
                Some(reference) => LineRef::Uuid(
                    reference
                        .req("valueReference")?
                        .req("identifier")?
                        .req_str("value")?
                        .to_owned(),
                ),
                None => {
                    let sequence = detail.req("sequence")?;
                    LineRef::Line(
                        sequence
                            .value
                            .as_i64()
                            .and_then(|n| i32::try_from(n).ok())
                            .ok_or_else(|| sequence.invalid("the line item's number"))?,
                    )
                }
            };
            if supplied {
                details.push(Detail {
                    path: detail.path.clone(),
                    line_item,
                    endorsements,
                    paid,
                });
            }
        }
    }
    let exemption = exemption.ok_or_else(|| {
        AppError::invalid(
            "missing-field",
            "Claim.item[0].programCode",
            format!(
                "the patient's charge exemption ({})",
                codes::CHARGE_EXEMPTION
            ),
        )
    })?;
    let paid = details.iter().filter(|detail| detail.paid).count();
    let claim_id = match claim.identifier("identifier", codes::MESSAGE_ID)? {
        Some(node) => Some(node.str()?),
        None => None,
    };
    let key = idempotency(&req, "claim", claim_id)?;
    let window = state.claim_window;
    let response = mutate_with_key(&state, &req, who, key, &value, move |conn, who, at| {
        let lines = ops::held_item_lines(conn, who, &id, at)?;
        let mut claimed = Vec::with_capacity(details.len());
        let mut paths = Vec::with_capacity(details.len());
        for detail in details {
            let line = match detail.line_item {
                LineRef::Line(line) if lines.iter().any(|(_, held)| *held == line) => line,
                LineRef::Line(line) => {
                    return Err(AppError::field(
                        format!("{}.sequence", detail.path),
                        format!("no line item {line} on this prescription"),
                    ));
                }
                LineRef::Uuid(uuid) => lines
                    .iter()
                    .find(|(item, _)| *item == uuid)
                    .map(|(_, line)| *line)
                    .ok_or_else(|| {
                        AppError::field(
                            format!("{}.extension", detail.path),
                            format!("no line item {uuid} on this prescription"),
                        )
                    })?,
            };
            paths.push(detail.path);
            claimed.push(ClaimLine {
                line,
                endorsements: detail.endorsements,
            });
        }
        let request = ClaimRequest {
            charges_paid: (exemption == "0001").then(|| u32::try_from(paid).unwrap_or(u32::MAX)),
            exemption,
            evidence_seen,
            items: claimed,
        };
        let view = ops::claim(conn, who, &id, &request, window, at)
            .map_err(|error| at_detail(error, &paths))?;
        Ok((
            StatusCode::OK,
            outcome::information(format!("prescription {} claimed", view.id)),
        ))
    })
    .await?;
    Ok(as_fhir(response))
}

/// A refusal of claimed line `items[k]` (the JSON API's name) named by where that line is in the
/// FHIR message, `Claim.item[0].detail[n]`.
fn at_detail(error: AppError, paths: &[String]) -> AppError {
    error.rename_field(|field| {
        match super::json_item(&field).and_then(|(k, rest)| Some((paths.get(k)?, rest))) {
            Some((path, member)) => match member.trim_start_matches('.') {
                "line" => format!("{path}.sequence"),
                endorsements if endorsements.starts_with("endorsements") => {
                    format!("{path}.programCode")
                }
                _ => path.clone(),
            },
            None => field,
        }
    })
}
