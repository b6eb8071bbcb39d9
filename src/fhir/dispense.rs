//! `$process-message` with a dispense-notification: one MedicationDispense per line item, each
//! with the original MedicationRequest contained (`authorizingPrescription` points at it; its
//! identifier names the line item, its `groupIdentifier` the prescription). `type` (system
//! medicationdispense-type) says what was done: 0001 fully dispensed, 0003 partial (`quantity`
//! this supply), 0002 not dispensed (`statusReasonCodeableConcept`, the EPS non-dispensing
//! reason), 0008 with dispenser (nothing done to the line). The service's dispense
//! ([`crate::prescriptions::dispense`]) applies it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use prescrypt_contract::quantity::QuantityText;
use prescrypt_contract::views::{DispenseLine, DispenseRequest, Outcome};

use super::message::Message;
use super::read::Node;
use super::{codes, idempotency, outcome};
use crate::api::mutate::mutate_with_key;
use crate::api::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

/// One line of the notification before its line number is known.
struct Line {
    item_uuid: String,
    /// Where the MedicationDispense is, and its line item identifier.
    path: String,
    item_path: String,
    outcome: Outcome,
    quantity: Option<QuantityText>,
    reason: Option<String>,
}

/// The MedicationRequest a MedicationDispense contains and authorises it by.
fn authorising<'a>(dispense: &Node<'a>) -> Result<Node<'a>, AppError> {
    let authorizing = dispense.list("authorizingPrescription")?;
    let first = authorizing.first().ok_or_else(|| {
        AppError::invalid(
            "missing-field",
            format!("{}.authorizingPrescription", dispense.path),
            "the MedicationRequest this supply is for",
        )
    })?;
    let reference = first.req("reference")?;
    let local = reference
        .str()?
        .strip_prefix('#')
        .ok_or_else(|| reference.invalid("a reference to a contained MedicationRequest (#id)"))?;
    for contained in dispense.list("contained")? {
        if contained.opt_str("id")? == Some(local)
            && contained.opt_str("resourceType")? == Some("MedicationRequest")
        {
            return Ok(contained);
        }
    }
    Err(reference.invalid(format!("no contained MedicationRequest has id {local}")))
}

fn line_of(
    dispense: &Node<'_>,
    prescription: &mut Option<(String, String)>,
) -> Result<Option<Line>, AppError> {
    let request = authorising(dispense)?;
    let item = request.req_identifier("identifier", codes::LINE_ITEM, "the line item's UUID")?;
    let group = request.req_identifier(
        "groupIdentifier",
        codes::SHORT_FORM_ID,
        "the prescription's short-form ID",
    )?;
    match prescription {
        Some((id, _)) if id != group.str()? => {
            return Err(
                group.invalid("every MedicationDispense of a notification is for one prescription")
            );
        }
        Some(_) => {}
        None => *prescription = Some((group.str()?.to_owned(), group.path.clone())),
    }
    let kind = dispense.req("type")?.req_code_in(&[codes::DISPENSE_TYPE])?;
    let (outcome, quantity, reason) = match kind.str()? {
        "0001" => (Outcome::Complete, None, None),
        "0003" => {
            let value = dispense.req("quantity")?.req("value")?;
            let text = match value.value {
                serde_json::Value::Number(n) => n.to_string(),
                _ => return Err(value.invalid("a number")),
            };
            let quantity = text
                .parse()
                .map_err(|_| value.invalid("a decimal quantity"))?;
            (Outcome::Partial, Some(quantity), None)
        }
        "0002" => {
            let reason = dispense
                .req("statusReasonCodeableConcept")?
                .req_code_in(&[codes::NOT_DISPENSED_REASON])?;
            (Outcome::NotDispensed, None, Some(reason.str()?.to_owned()))
        }
        "0004" => (Outcome::Owing, None, None),
        "0008" => return Ok(None),
        other => {
            return Err(kind.refused(
                "unsupported-dispense-type",
                format!("{other}: Prescrypt records 0001 (dispensed), 0003 (partial), 0002 (not dispensed), 0004 (owing) and 0008 (with dispenser)"),
            ));
        }
    };
    Ok(Some(Line {
        item_uuid: item.str()?.to_owned(),
        path: dispense.path.clone(),
        item_path: item.path.clone(),
        outcome,
        quantity,
        reason,
    }))
}

/// `items[2].quantity` of the service's refusal → the FHIRPath of that MedicationDispense.
fn relocate(error: AppError, lines: &[Line]) -> AppError {
    error.rename_field(|field| {
        match super::json_item(&field).and_then(|(i, rest)| Some((lines.get(i)?, rest))) {
            Some((line, rest)) => {
                let member = match rest.rsplit('.').next() {
                    Some("quantity") => ".quantity.value",
                    Some("reason") => ".statusReasonCodeableConcept",
                    _ => "",
                };
                format!("{}{member}", line.path)
            }
            None if field == "items" => "Bundle.entry".to_owned(),
            None => field,
        }
    })
}

pub async fn dispense(
    state: &State,
    req: &HttpRequest,
    who: Principal,
    message: &Message<'_>,
) -> Result<HttpResponse, AppError> {
    let dispenses = message.of_type("MedicationDispense");
    if dispenses.is_empty() {
        return Err(message
            .bundle
            .invalid("a dispense-notification has MedicationDispense entries"));
    }
    let mut prescription = None;
    let mut lines = Vec::new();
    for entry in dispenses {
        if let Some(line) = line_of(&entry.resource, &mut prescription)? {
            lines.push(line);
        }
    }
    let (short_id, id_path) = prescription.unwrap_or_default();
    let id = ops::parse_id(&short_id).map_err(|_| {
        AppError::invalid(
            "invalid-prescription-id",
            id_path,
            "a short-form prescription ID",
        )
    })?;
    let key = idempotency(req, "dispense", message.id)?;
    let body = message.bundle.value.clone();
    mutate_with_key(state, req, who, key, &body, move |conn, who, at| {
        let numbers = ops::held_item_lines(conn, who, &id, at)?;
        let mut items = Vec::with_capacity(lines.len());
        for line in &lines {
            let number = numbers
                .iter()
                .find(|(uuid, _)| uuid.eq_ignore_ascii_case(&line.item_uuid))
                .map(|(_, number)| *number)
                .ok_or_else(|| {
                    AppError::invalid(
                        "invalid-field",
                        line.item_path.clone(),
                        format!("prescription {id} has no line item {}", line.item_uuid),
                    )
                })?;
            items.push(DispenseLine {
                line: number,
                outcome: line.outcome,
                quantity: line.quantity.clone(),
                reason: line.reason.clone(),
                supplied: None,
            });
        }
        let view = ops::dispense(conn, who, &id, &DispenseRequest { items }, at)
            .map_err(|e| relocate(e, &lines))?;
        Ok((
            StatusCode::OK,
            outcome::information(format!(
                "dispense notification recorded: prescription {} is {} {}",
                view.id, view.status.code, view.status.display
            )),
        ))
    })
    .await
}
