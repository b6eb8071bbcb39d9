//! `POST /FHIR/R4/Task/$release`: a `Parameters` with `owner` (the pharmacy's ODS code, the
//! caller's organisation), `status = accepted` and, to release one prescription,
//! `group-identifier` (its short-form ID when nominated to or held by the caller, or the scanned
//! token text); without it, the next batch nominated to the pharmacy. The service's release
//! ([`crate::prescriptions::release`], [`crate::prescriptions::release_nominated`]) decides.
//! Answer as EPS: `passedPrescriptions` (a searchset of the signed prescription-order Bundles)
//! and `failedPrescriptions` (an OperationOutcome for one held by another dispenser).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use prescrypt_contract::views::{PrescriptionView, ReleaseRequest};
use serde_json::{Value, json};

use super::read::{self, Node};
use super::{as_fhir, codes, idempotency, mapping, outcome};
use crate::api::mutate::mutate_with_key;
use crate::api::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

fn searchset(entries: &[Value]) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    })
}

fn answer(passed: &[PrescriptionView], failed: Option<&AppError>) -> Value {
    let passed: Vec<Value> = passed
        .iter()
        .map(|view| {
            json!({
                "fullUrl": format!("urn:uuid:{}", view.uuid),
                "resource": mapping::prescription_bundle(view),
                "search": {"mode": "match"},
            })
        })
        .collect();
    let failed = failed
        .map(|error| {
            vec![json!({
                "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                "resource": outcome::of_problem(error.status_code(), &error.problem()),
                "search": {"mode": "outcome"},
            })]
        })
        .unwrap_or_default();
    json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "passedPrescriptions", "resource": searchset(&passed)},
            {"name": "failedPrescriptions", "resource": searchset(&failed)},
        ],
    })
}

/// The named parameter of a `Parameters`.
fn parameter<'a>(parameters: &[Node<'a>], name: &str) -> Result<Option<Node<'a>>, AppError> {
    for parameter in parameters {
        if parameter.opt_str("name")? == Some(name) {
            return Ok(Some(parameter.clone()));
        }
    }
    Ok(None)
}

pub async fn release(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let value = read::json_body(&body)?;
    let root = Node::resource(&value, "Parameters")?;
    let parameters = root.list("parameter")?;
    let owner = parameter(&parameters, "owner")?.ok_or_else(|| {
        AppError::invalid(
            "missing-field",
            "Parameters.parameter",
            "the owner (the releasing pharmacy's ODS code)",
        )
    })?;
    let ods = owner.req("valueIdentifier")?;
    if ods.opt_str("system")? != Some(codes::ODS_CODE) {
        return Err(ods.invalid(format!("system {}", codes::ODS_CODE)));
    }
    let ods = ods.req("value")?;
    if !ods.str()?.trim().eq_ignore_ascii_case(&who.org) {
        return Err(ods.refused(
            "owner-not-caller",
            "a pharmacy releases to itself: the owner is the caller's organisation",
        ));
    }
    if let Some(status) = parameter(&parameters, "status")? {
        let code = status.req("valueCode")?;
        if code.str()? != "accepted" {
            return Err(code.invalid("accepted"));
        }
    }
    let one = match parameter(&parameters, "group-identifier")? {
        Some(group) => {
            let value = group.req("valueIdentifier")?.req("value")?;
            Some((value.str()?.to_owned(), value.path.clone()))
        }
        None => None,
    };
    let key = idempotency(&req, "release", None)?;
    let inner = state.clone();
    let response = mutate_with_key(&state, &req, who, key, &value, move |conn, who, at| {
        let answered = match one {
            Some((token, path)) => {
                match ops::release(conn, &inner.keys, who, &ReleaseRequest { token }, at) {
                    Ok(view) => answer(&[view], None),
                    Err(error @ AppError::HeldByAnotherDispenser { .. }) => {
                        answer(&[], Some(&error))
                    }
                    Err(AppError::Invalid { code, detail, .. }) => {
                        return Err(AppError::Invalid {
                            code,
                            field: path,
                            detail,
                        });
                    }
                    Err(other) => return Err(other),
                }
            }
            None => answer(&ops::release_nominated(conn, who, at)?.prescriptions, None),
        };
        Ok((StatusCode::OK, answered))
    })
    .await?;
    Ok(as_fhir(response))
}
