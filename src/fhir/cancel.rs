//! `$process-message` with a prescription-order-update: the prescriber cancels. The
//! MedicationRequest(s) carry `status = cancelled`, the prescription's `groupIdentifier` and the
//! EPS reason (`statusReason`, 0001–0009); the service's cancel
//! ([`crate::prescriptions::cancel`]) decides. Prescrypt cancels whole prescriptions: the
//! answer (a prescription-order-response) shows every item with the outcome as the EPS status
//! history R-code (R-0001 cancelled; R-0002… when marked or refused).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use prescrypt_contract::views::CancelResult;
use serde_json::{Value, json};

use super::message::Message;
use super::{codes, idempotency};
use crate::api::mutate::mutate_with_key;
use crate::api::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

/// The R-code of a cancellation done outright.
const CANCELLED: (&str, &str) = ("R-0001", "Prescription/item was cancelled");

fn response(result: &CancelResult, request_id: Option<&str>, at: chrono::NaiveDateTime) -> Value {
    let view = &result.prescription;
    let (code, display) = match &result.response {
        Some(coded) => (coded.code.as_str(), coded.display.as_str()),
        None => CANCELLED,
    };
    let when = at
        .and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut entries = Vec::new();
    let mut focus = Vec::new();
    for item in &view.items {
        let full_url = format!("urn:uuid:{}", item.uuid);
        focus.push(json!({"reference": full_url}));
        entries.push(json!({"fullUrl": full_url, "resource": {
            "resourceType": "MedicationRequest",
            "extension": [{
                "url": codes::EXT_STATUS_HISTORY,
                "extension": [
                    {"url": "status", "valueCoding": {"system": codes::STATUS_HISTORY, "code": code, "display": display}},
                    {"url": "statusDate", "valueDateTime": when},
                ],
            }],
            "identifier": [{"system": codes::LINE_ITEM, "value": item.uuid}],
            "status": if view.status.code == "0005" { "cancelled" } else { "active" },
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": codes::SNOMED, "code": item.code, "display": item.display}]},
            "subject": {"identifier": {"system": codes::NHS_NUMBER, "value": view.patient.nhs_number}},
            "groupIdentifier": {
                "system": codes::SHORT_FORM_ID,
                "value": view.id,
                "extension": [{"url": codes::EXT_PRESCRIPTION_ID, "valueIdentifier": {"system": codes::PRESCRIPTION_UUID, "value": view.uuid}}],
            },
        }}));
    }
    let mut header = json!({
        "resourceType": "MessageHeader",
        "eventCoding": {"system": codes::MESSAGE_EVENT, "code": codes::PRESCRIPTION_ORDER_RESPONSE},
        "source": {"endpoint": "urn:nhs-uk:addressing:prescrypt"},
        "focus": focus,
    });
    if let Some(id) = request_id.filter(|id| is_fhir_id(id)) {
        header["response"] = json!({"identifier": id, "code": "ok"});
    }
    let message_id = uuid::Uuid::new_v4().to_string();
    let mut all = vec![json!({"fullUrl": format!("urn:uuid:{message_id}"), "resource": header})];
    all.extend(entries);
    json!({
        "resourceType": "Bundle",
        "identifier": {"system": codes::MESSAGE_ID, "value": message_id},
        "type": "message",
        "timestamp": when,
        "entry": all,
    })
}

/// FHIR's `id` type (MessageHeader.response.identifier).
fn is_fhir_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

pub async fn cancel(
    state: &State,
    req: &HttpRequest,
    who: Principal,
    message: &Message<'_>,
) -> Result<HttpResponse, AppError> {
    let requests = message.of_type("MedicationRequest");
    let first = requests.first().ok_or_else(|| {
        message
            .bundle
            .invalid("a prescription-order-update names the MedicationRequest to cancel")
    })?;
    let mut target = None;
    let mut reason = None;
    for entry in &requests {
        let request = &entry.resource;
        let status = request.req("status")?;
        if status.str()? != "cancelled" {
            return Err(status.invalid("cancelled (the only update Prescrypt takes)"));
        }
        let group = request.req_identifier(
            "groupIdentifier",
            codes::SHORT_FORM_ID,
            "the prescription's short-form ID",
        )?;
        let id = ops::parse_id(group.str()?).map_err(|e| match e {
            AppError::Invalid { code, detail, .. } => AppError::Invalid {
                code,
                field: group.path.clone(),
                detail,
            },
            other => other,
        })?;
        if target.is_some_and(|t| t != id) {
            return Err(group.invalid("one prescription per cancellation"));
        }
        target = Some(id);
        let code = request
            .req("statusReason")?
            .req_code_in(&[codes::CANCEL_REASON])?;
        reason.get_or_insert((code.str()?.to_owned(), code.path.clone()));
    }
    let id = target.ok_or_else(|| first.resource.invalid("the prescription"))?;
    let request_id = message.id.map(str::to_owned);
    let key = idempotency(req, "cancel", message.id)?;
    let body = message.bundle.value.clone();
    mutate_with_key(state, req, who, key, &body, move |conn, who, at| {
        let (reason, reason_path) = reason.unwrap_or_default();
        let result = ops::cancel(conn, who, &id, Some(&reason), at).map_err(|e| match e {
            AppError::Invalid {
                code,
                field,
                detail,
            } if field == "reason" => AppError::Invalid {
                code,
                field: reason_path,
                detail,
            },
            other => other,
        })?;
        Ok((StatusCode::OK, response(&result, request_id.as_deref(), at)))
    })
    .await
}
