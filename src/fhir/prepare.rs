//! `POST /FHIR/R4/$prepare`: a prescription-order Bundle in, the `Parameters` the prescriber's
//! system signs out. The service's prepare ([`crate::prescriptions::prepare`]) assigns the
//! short-form ID and UUIDs; `digest` is the signing input of the prescriber's JWS (base64 of its
//! ASCII bytes), which the prescriber's Ed25519 key signs in place of EPS's smartcard.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use prescrypt_contract::views::Prepared;
use serde_json::{Value, json};

use super::message::Message;
use super::{as_fhir, codes, idempotency, mapping, read};
use crate::api::mutate::mutate_with_key;
use crate::api::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

fn parameters(prepared: &Prepared) -> Value {
    let content = &prepared.prescription;
    json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "digest", "valueString": data_encoding::BASE64.encode(prepared.signing_input.as_bytes())},
            {"name": "timestamp", "valueString": content.created_at},
            {"name": "algorithm", "valueString": "EdDSA"},
            {"name": "prepared-id", "valueIdentifier": {"system": codes::PREPARED_ID, "value": prepared.prepared_id}},
            {"name": "short-form-id", "valueIdentifier": {"system": codes::SHORT_FORM_ID, "value": content.id}},
            {"name": "prescription-id", "valueIdentifier": {"system": codes::PRESCRIPTION_UUID, "value": content.uuid}},
            {"name": "expires", "valueInstant": prepared.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)},
        ],
    })
}

pub async fn prepare(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let value = read::json_body(&body)?;
    let message = Message::read(&value)?;
    message.expect(codes::PRESCRIPTION_ORDER)?;
    if !message.of_type("Provenance").is_empty() {
        return Err(message
            .bundle
            .invalid("a Bundle to prepare has no Provenance (it is not signed yet)"));
    }
    let order = mapping::read_order(&message)?;
    let kid = order
        .kid
        .as_ref()
        .ok_or_else(|| {
            AppError::invalid(
                "missing-field",
                "Bundle.entry.resource.ofType(Practitioner).identifier",
                format!(
                    "the prescriber's key: an identifier of system {} whose value is the kid",
                    codes::PRESCRIBER_KEY
                ),
            )
        })?
        .str()?
        .to_owned();
    let kid_path = order
        .kid
        .as_ref()
        .map(|k| k.path.clone())
        .unwrap_or_default();
    let valid =
        ops::validate_new(&order.new, state.clock.today()).map_err(|e| order.relocate(e))?;
    let key = idempotency(&req, "prepare", message.id)?;
    let ttl = state.prepared_ttl;
    let response = mutate_with_key(&state, &req, who, key, &value, move |conn, who, at| {
        ops::prepare(conn, who, &valid, &kid, ttl, at)
            .map(|prepared| (StatusCode::OK, parameters(&prepared)))
            .map_err(|e| match e {
                AppError::Unprocessable {
                    code,
                    field: Some(field),
                    detail,
                } if field == "kid" => AppError::Unprocessable {
                    code,
                    field: Some(kid_path),
                    detail,
                },
                other => other,
            })
    })
    .await?;
    Ok(as_fhir(response))
}
