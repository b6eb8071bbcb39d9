//! `POST /FHIR/R4/$process-message`: the message's event picks the operation —
//! prescription-order (here: the prescriber-signed issue), prescription-order-update
//! ([`super::cancel`]), dispense-notification ([`super::dispense`]). Any other event is refused.
//!
//! A prescription-order is the Bundle `$prepare` took, carrying the IDs it assigned
//! (`groupIdentifier`) and a Provenance whose `signature[0]` is the prescriber's: `data` the
//! compact JWS (base64), `type` the author signature of EPS; `entity.what.identifier` names the
//! prepared prescription ([`codes::PREPARED_ID`]). The service then runs the same signed create
//! as `POST /api/v1/prescriptions` ([`crate::prescriptions::create_signed`]).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use prescrypt_contract::SignedPrescription;
use prescrypt_contract::views::SignedCreate;

use super::message::Message;
use super::read::Node;
use super::{as_fhir, cancel, codes, dispense, idempotency, mapping, outcome, read};
use crate::api::mutate::mutate_with_key;
use crate::api::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

pub async fn process_message(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let value = read::json_body(&body)?;
    let message = Message::read(&value)?;
    let response = match message.event()? {
        codes::PRESCRIPTION_ORDER => order(&state, &req, who, &message).await?,
        codes::PRESCRIPTION_ORDER_UPDATE => cancel::cancel(&state, &req, who, &message).await?,
        codes::DISPENSE_NOTIFICATION => dispense::dispense(&state, &req, who, &message).await?,
        other => {
            return Err(message.event.refused(
                "unsupported-message",
                format!(
                    "{other} is not processed here: prescription-order, \
                     prescription-order-update or dispense-notification"
                ),
            ));
        }
    };
    Ok(as_fhir(response))
}

/// The prescriber's signature of a prescription-order: the prepared ID and the compact JWS.
struct Signature<'a> {
    prepared_id: String,
    jws: String,
    data: Node<'a>,
}

fn signature<'a>(message: &Message<'a>) -> Result<Signature<'a>, AppError> {
    let provenances = message.of_type("Provenance");
    let provenance = match provenances.as_slice() {
        [one] => &one.resource,
        _ => {
            return Err(message.bundle.invalid(
                "a prescription-order carries one Provenance with the prescriber's signature",
            ));
        }
    };
    let mut prepared_id = None;
    for entity in provenance.list("entity")? {
        if let Some(what) = entity.get("what")
            && let Some(id) = what.identifier("identifier", codes::PREPARED_ID)?
        {
            prepared_id = Some(id.str()?.to_owned());
        }
    }
    let prepared_id = prepared_id.ok_or_else(|| {
        AppError::invalid(
            "missing-field",
            format!("{}.entity", provenance.path),
            format!(
                "an entity whose what.identifier (system {}) is the prepared-id $prepare answered",
                codes::PREPARED_ID
            ),
        )
    })?;
    let signatures = provenance.list("signature")?;
    let first = signatures.first().ok_or_else(|| {
        AppError::invalid(
            "missing-field",
            format!("{}.signature", provenance.path),
            "the prescriber's signature",
        )
    })?;
    let mut author = false;
    for kind in first.list("type")? {
        author |= kind.opt_str("system")? == Some(codes::SIGNATURE_TYPE)
            && kind.opt_str("code")? == Some(codes::SIGNATURE_TYPE_AUTHOR);
    }
    if !author {
        return Err(AppError::invalid(
            "invalid-field",
            format!("{}.type", first.path),
            format!(
                "an author's signature ({} {})",
                codes::SIGNATURE_TYPE,
                codes::SIGNATURE_TYPE_AUTHOR
            ),
        ));
    }
    let data = first.req("data")?;
    let jws = data_encoding::BASE64
        .decode(data.str()?.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|jws| jws.split('.').count() == 3)
        .ok_or_else(|| data.invalid("base64 of the compact JWS (header.payload.signature)"))?;
    Ok(Signature {
        prepared_id,
        jws,
        data,
    })
}

async fn order(
    state: &State,
    req: &HttpRequest,
    who: Principal,
    message: &Message<'_>,
) -> Result<HttpResponse, AppError> {
    let order = mapping::read_order(message)?;
    let signed = signature(message)?;
    let (signing_input, signature_part) = signed
        .jws
        .rsplit_once('.')
        .ok_or_else(|| signed.data.invalid("a compact JWS"))?;
    // What the prescriber signed must be what the Bundle says: the same IDs, the same content.
    let content: SignedPrescription = crate::signing::payload_of(signing_input).map_err(|_| {
        signed
            .data
            .invalid("the JWS payload is not a prepared prescription")
    })?;
    let short_id = order.short_id.as_ref().ok_or_else(|| {
        AppError::invalid(
            "missing-field",
            "Bundle.entry.resource.ofType(MedicationRequest).groupIdentifier",
            "the short-form ID $prepare assigned",
        )
    })?;
    let same_id = ops::parse_id(short_id.str()?).is_ok_and(|id| id.to_string() == content.id);
    if !same_id {
        return Err(short_id.refused(
            "signature-mismatch",
            format!("the signature is over prescription {}", content.id),
        ));
    }
    if let Some(uuid) = &order.uuid
        && uuid.str()? != content.uuid
    {
        return Err(uuid.refused(
            "signature-mismatch",
            format!("the signature is over prescription {}", content.uuid),
        ));
    }
    let valid =
        ops::validate_new(&order.new, state.clock.today()).map_err(|e| order.relocate(e))?;
    if let Some(field) = valid.difference_from(&content) {
        return Err(order.relocate(AppError::refused(
            "signature-mismatch",
            &field,
            "the Bundle differs from the prescription that was prepared and signed",
        )));
    }
    let create = SignedCreate {
        prepared_id: signed.prepared_id,
        signature: signature_part.to_owned(),
    };
    let data_path = signed.data.path.clone();
    let key = idempotency(req, "order", message.id)?;
    let inner = state.clone();
    let request = create.clone();
    mutate_with_key(state, req, who, key, &request, move |conn, who, at| {
        let view =
            ops::create_signed(conn, &inner.keys, who, &create, at).map_err(|e| match e {
                AppError::Unprocessable {
                    code,
                    field: Some(_),
                    detail,
                } => AppError::Unprocessable {
                    code,
                    field: Some(data_path),
                    detail,
                },
                other => other,
            })?;
        Ok((
            StatusCode::OK,
            outcome::information(format!("prescription {} issued", view.id)),
        ))
    })
    .await
}
