//! `POST /FHIR/R4/Claim`: the holding pharmacy claims reimbursement. `prescription.extension`
//! (Extension-DM-GroupIdentifier, `shortForm`) names the prescription; every item detail
//! carries the dispenser's endorsement (`programCode` of medicationdispense-endorsement, e.g.
//! NDEC) — a claim without one is refused, as EPS does. The service's claim
//! ([`crate::prescriptions::claim`]) records it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::read::{self, Node};
use super::{as_fhir, codes, idempotency, outcome};
use crate::api::mutate::mutate_with_key;
use crate::api::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

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
    for item in &items {
        let details = item.list("detail")?;
        if details.is_empty() {
            return Err(AppError::invalid(
                "missing-field",
                format!("{}.detail", item.path),
                "one detail per line item, with its endorsement",
            ));
        }
        for detail in &details {
            let mut endorsed = false;
            for program in detail.list("programCode")? {
                endorsed |= program.code_in(codes::DISPENSER_ENDORSEMENT)?.is_some();
            }
            if !endorsed {
                return Err(AppError::invalid(
                    "missing-field",
                    format!("{}.programCode", detail.path),
                    format!(
                        "the dispenser's endorsement (system {}, e.g. NDEC)",
                        codes::DISPENSER_ENDORSEMENT
                    ),
                ));
            }
        }
    }
    let claim_id = match claim.identifier("identifier", codes::MESSAGE_ID)? {
        Some(node) => Some(node.str()?),
        None => None,
    };
    let key = idempotency(&req, "claim", claim_id)?;
    let response = mutate_with_key(&state, &req, who, key, &value, move |conn, who, at| {
        let view = ops::claim(conn, who, &id, at)?;
        Ok((
            StatusCode::OK,
            outcome::information(format!("prescription {} claimed", view.id)),
        ))
    })
    .await?;
    Ok(as_fhir(response))
}
