//! `POST /FHIR/R4/Task`: a pharmacy returns a prescription (`status = rejected`, `code =
//! fulfill`, `statusReason` of EPS-task-dispense-return-status-reason) or withdraws its latest
//! dispense notification (`status = in-progress`, `code = abort`, `statusReason` of
//! EPS-task-dispense-withdraw-reason); `groupIdentifier` names the prescription. And
//! `GET /FHIR/R4/Task?focus:identifier=…`: the tracker, a searchset of the prescription's Task.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::read::{self, Node};
use super::{as_fhir, codes, idempotency, mapping, outcome, respond};
use crate::api::mutate::mutate_with_key;
use crate::api::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

enum Action {
    Return { reason: String, path: String },
    Withdraw,
}

pub async fn create(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let value = read::json_body(&body)?;
    let task = Node::resource(&value, "Task")?;
    let status = task.req("status")?;
    let code = task
        .req("code")?
        .req_code_in(&["http://hl7.org/fhir/CodeSystem/task-code"])?;
    let reason = task.req("statusReason")?;
    let action = match (status.str()?, code.str()?) {
        ("rejected", "fulfill") => {
            let reason = reason.req_code_in(&[codes::RETURN_REASON])?;
            Action::Return {
                reason: reason.str()?.to_owned(),
                path: reason.path.clone(),
            }
        }
        ("in-progress", "abort") => {
            reason.req_code_in(&[codes::WITHDRAW_REASON])?;
            Action::Withdraw
        }
        _ => {
            return Err(status.refused(
                "unsupported-task",
                "a return (status rejected, code fulfill) or a withdrawal (status in-progress, code abort)",
            ));
        }
    };
    let group = task.req_identifier(
        "groupIdentifier",
        codes::SHORT_FORM_ID,
        "the prescription's short-form ID",
    )?;
    let id =
        ops::parse_id(group.str()?).map_err(|_| group.invalid("a short-form prescription ID"))?;
    let task_id = match task.identifier("identifier", codes::MESSAGE_ID)? {
        Some(node) => Some(node.str()?),
        None => None,
    };
    let key = idempotency(&req, "task", task_id)?;
    let response = mutate_with_key(&state, &req, who, key, &value, move |conn, who, at| {
        let view = match action {
            Action::Return { reason, path } => ops::return_to_spine(conn, who, &id, &reason, at)
                .map_err(|e| match e {
                    AppError::Invalid {
                        code,
                        field,
                        detail,
                    } if field == "reason" => AppError::Invalid {
                        code,
                        field: path,
                        detail,
                    },
                    other => other,
                })?,
            Action::Withdraw => ops::withdraw(conn, who, &id, at)?,
        };
        Ok((
            StatusCode::OK,
            outcome::information(format!(
                "prescription {} is {} {}",
                view.id, view.status.code, view.status.display
            )),
        ))
    })
    .await?;
    Ok(as_fhir(response))
}

/// `GET /FHIR/R4/Task?focus:identifier=[system|]ID`: a prescription the caller may see gives a
/// searchset of its Task; one it may not see (or that does not exist) an empty searchset, so
/// nothing leaks.
pub async fn search(
    state: State,
    who: Principal,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "focus:identifier") {
        return Err(AppError::invalid(
            "invalid-field",
            unknown.clone(),
            "the tracker searches by focus:identifier only",
        ));
    }
    let text = query.get("focus:identifier").ok_or_else(|| {
        AppError::invalid(
            "missing-field",
            "focus:identifier",
            "the prescription's short-form ID",
        )
    })?;
    let value = text.rsplit('|').next().unwrap_or(text);
    let id = ops::parse_id(value).map_err(|_| {
        AppError::field(
            "focus:identifier",
            if value.contains(' ') {
                "a short-form prescription ID (a check character `+` must be sent as %2B)"
            } else {
                "a short-form prescription ID"
            },
        )
    })?;
    let clock = state.clock.clone();
    let found = state
        .store
        .write(move |conn| match ops::get(conn, &who, &id, clock.now()) {
            Ok(view) => Ok(Some(view)),
            Err(AppError::PrescriptionNotFound) => Ok(None),
            Err(other) => Err(other),
        })
        .await?;
    let entries: Vec<_> = found
        .iter()
        .map(|view| {
            json!({
                "fullUrl": format!("urn:uuid:{}", view.uuid),
                "resource": mapping::tracker_task(view),
                "search": {"mode": "match"},
            })
        })
        .collect();
    Ok(respond(
        StatusCode::OK,
        &json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": entries.len(),
            "entry": entries,
        }),
    ))
}
