//! Prescribing: prepare, create (signed by the prescriber), cancel, the printable token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use prescrypt_contract::Problem;
use prescrypt_contract::routes;
use prescrypt_contract::views::{
    CancelRequest, CancelResult, CreateRequest, PrepareRequest, Prepared, PrescriptionView,
    SignedCreate,
};

use super::mutate::mutate;
use super::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

/// Step one of issuing: the prescription as it will be and the signing input of the
/// prescriber's JWS (sign its ASCII bytes with the key `kid`, then create).
#[utoipa::path(post, path = routes::PREPARE, request_body = PrepareRequest,
    responses((status = 200, body = Prepared), (status = 400, body = Problem),
              (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), tag = "prescribing")]
pub async fn prepare(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Json<PrepareRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let valid = ops::validate_new(&body.prescription, state.clock.today())?;
    let kid = body.kid.clone();
    let ttl = state.prepared_ttl;
    mutate(
        &state,
        &req,
        who,
        false,
        &body,
        StatusCode::OK,
        move |conn, who, at| ops::prepare(conn, who, &valid, &kid, ttl, at),
    )
    .await
}

/// Step two: `{prepared_id, signature}` issues the prepared prescription with its prescriber's
/// signature and the service's countersignature. A create body without a prescriber signature
/// is accepted only by a service running `--dev` (else 422 `prescriber-signature-required`).
#[utoipa::path(post, path = routes::PRESCRIPTIONS,
    request_body(content(
        (SignedCreate = "application/json"),
    ), description = "`{prepared_id, signature}`; on a `--dev` service also a create body \
        (`NewPrescription`) without a prescriber signature"),
    responses((status = 201, body = PrescriptionView), (status = 400, body = Problem),
              (status = 403, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)),
    security(("bearer" = [])), tag = "prescribing")]
pub async fn create(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Json<CreateRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let inner = state.clone();
    // The single writer only inserts: see [`Ready`].
    let ready = match &body {
        CreateRequest::Signed(signed) => {
            let (caller, checking, at) = (who.clone(), signed.clone(), state.clock.now());
            match state
                .store
                .read(move |conn| ops::check_signed(conn, &inner.keys, &caller, &checking, at))
                .await
            {
                Ok(check) => Ready::Signed(signed.clone(), check),
                Err(_) => Ready::RefusedSigned(signed.clone()),
            }
        }
        CreateRequest::Unsigned(new) => {
            let valid = ops::validate_new(new, state.clock.today())?;
            if ops::may_create_unsigned(&who, state.unsigned).is_ok() && valid.is_first_issue() {
                let sequence_value = state.store.reserve_sequence(&who.org).await?;
                Ready::Unsigned(ops::issue_unsigned(
                    &state.keys,
                    &who,
                    &valid,
                    sequence_value,
                    (1, None),
                    state.unsigned,
                    state.clock.now(),
                )?)
            } else {
                Ready::RefusedUnsigned(valid)
            }
        }
    };
    let inner = state.clone();
    mutate(
        &state,
        &req,
        who,
        false,
        &body,
        StatusCode::CREATED,
        move |conn, who, at| match ready {
            Ready::Unsigned(issued) => {
                ops::store_issued(conn, who, &issued, at)?;
                Ok(issued.view())
            }
            Ready::Signed(_, ops::SignedCheck::AlreadyIssued(view)) => Ok(view),
            Ready::Signed(signed, ops::SignedCheck::Issue(issued)) => {
                ops::store_signed(conn, who, &signed, &issued, at)
            }
            Ready::RefusedUnsigned(valid) => {
                ops::create(conn, &inner.keys, who, &valid, inner.unsigned, at)
            }
            Ready::RefusedSigned(signed) => ops::create_signed(conn, &inner.keys, who, &signed, at),
        },
    )
    .await
}

/// A create made ready before its write transaction: signed (and the prescriber's signature
/// verified) on the HTTP workers. What was refused there, or needs the database to be built (the
/// next issue of a repeat authorisation), runs whole in the transaction, so the refusal is
/// decided exactly as before (after an `Idempotency-Key` replay, for one).
enum Ready {
    Unsigned(ops::Issued),
    Signed(SignedCreate, ops::SignedCheck),
    RefusedUnsigned(ops::ValidNew),
    RefusedSigned(SignedCreate),
}

/// Cancel (or mark pending cancellation when with a dispenser).
#[utoipa::path(post, path = routes::CANCEL, params(("id" = String, Path)),
    request_body = CancelRequest,
    responses((status = 200, body = CancelResult), (status = 404, body = Problem)),
    security(("bearer" = [])), tag = "prescribing")]
pub async fn cancel(
    state: State,
    req: HttpRequest,
    who: Principal,
    id: web::Path<String>,
    body: web::Json<CancelRequest>,
) -> Result<HttpResponse, AppError> {
    let id = ops::parse_id(&id)?;
    let body = body.into_inner();
    let reason = body.reason.clone();
    mutate(
        &state,
        &req,
        who,
        false,
        &body,
        StatusCode::OK,
        move |conn, who, at| ops::cancel(conn, who, &id, reason.as_deref(), at),
    )
    .await
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Printer resolution, 150 to 2400 (default 600).
    #[param(minimum = 150, maximum = 2400)]
    pub dpi: Option<u32>,
}

/// The printable dispensing token (prescribing organisation only): `pdf` = the A5 sheet,
/// `png` = both codes, `svg` = both codes with the human-readable ID.
#[utoipa::path(get, path = routes::TOKEN,
    params(("id" = String, Path), ("format" = String, Path, description = "pdf, png or svg",
        example = "pdf", pattern = "^(pdf|png|svg)$"), TokenQuery),
    responses((status = 200, description = "the token", content(
        ("application/pdf"), ("image/png"), ("image/svg+xml"))),
        (status = 404, body = Problem)),
    security(("bearer" = [])), tag = "prescribing")]
pub async fn token_document(
    state: State,
    who: Principal,
    path: web::Path<(String, String)>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    use prescrypt_barcode::render::{Dpi, TokenFormat, render_token};
    let (id, extension) = path.into_inner();
    let format = TokenFormat::from_extension(&extension).map_err(|_| AppError::NotFound)?;
    let dpi =
        Dpi::new(query.dpi.unwrap_or(600)).map_err(|e| AppError::field("dpi", e.to_string()))?;
    let id = ops::parse_id(&id)?;
    // A render takes tens of MB at high resolutions: wait for a turn (bounded by
    // `--request-timeout`) before anything is written, so a print that never happens is not
    // audited as one.
    let _turn = state
        .renders
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let clock = state.clock.clone();
    let sheet = state
        .store
        .write(move |conn| ops::token_sheet(conn, &who, &id, dpi, clock.now()))
        .await?;
    let bytes = web::block(move || render_token(&sheet, format))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(format!("rendering the token: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(bytes))
}
