//! The EPS FHIR R4 API (`/FHIR/R4/`): what GP and pharmacy systems that already talk to NHS
//! England's EPS send, on the same store and the same operations as `/api/v1` (one domain, two
//! representations). Handlers read the FHIR resource, map it onto the contract's request types,
//! call the operations of [`crate::prescriptions`] through [`crate::api::mutate`] (one
//! transaction, audited, idempotent) and map the answer back; no rule lives here.
//!
//! What lives where: [`routes`] the route table (mounted by [`crate::api::routes`] inside the
//! same authentication, throttle, audit and single writer); [`capability`] `GET metadata`;
//! [`prepare`] `$prepare`; [`process_message`] `$process-message` and its prescription-order
//! (the prescriber-signed issue), with [`cancel`] (prescription-order-update) and [`dispense`]
//! (dispense-notification); [`release`] `Task/$release`; [`task`] return and withdraw Tasks and
//! the tracker's Task search; [`claim`] `Claim`. [`message`] reads message Bundles, [`mapping`]
//! turns a prescription into EPS resources and an order Bundle into a create request, [`read`]
//! reads JSON with the location of every element, [`outcome`] renders every error as an
//! `OperationOutcome`, [`codes`] has the EPS systems and URLs. docs/fhir.md lists what is
//! supported.

pub mod cancel;
pub mod capability;
pub mod claim;
pub mod codes;
pub mod dispense;
pub mod mapping;
pub mod message;
pub mod outcome;
pub mod prepare;
pub mod process_message;
pub mod read;
pub mod release;
pub mod routes;
pub mod task;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::api::mutate::idempotency_key;
use crate::error::AppError;
use crate::idempotency::IdempotencyKey;

pub use routes::{PREFIX, endpoints};

/// The media type of every FHIR response.
pub const FHIR_JSON: &str = "application/fhir+json";

/// A FHIR resource as the response.
/// A field of the JSON API's item list, `items[k]` followed by the rest (`.quantity`, `:`, or
/// nothing): `k` and the rest. FHIR handlers name such a field by where that item is in their
/// message.
pub fn json_item(field: &str) -> Option<(usize, &str)> {
    let (index, rest) = field.strip_prefix("items[")?.split_once(']')?;
    Some((index.parse().ok()?, rest))
}

pub fn respond(status: StatusCode, resource: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(FHIR_JSON)
        .body(resource.to_string())
}

/// A response of [`crate::api::mutate`] (JSON of a FHIR resource, or a replay of one) as FHIR.
pub fn as_fhir(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// The idempotency key of a FHIR write: the `Idempotency-Key` header, else the message's own
/// identifier (EPS clients retry with the identical message), scoped to the operation.
pub fn idempotency(
    req: &HttpRequest,
    operation: &str,
    message_id: Option<&str>,
) -> Result<Option<IdempotencyKey>, AppError> {
    match idempotency_key(req, false)? {
        Some(key) => Ok(Some(key)),
        None => message_id
            .map(|id| IdempotencyKey::parse(&format!("fhir-{operation}:{id}")))
            .transpose(),
    }
}
