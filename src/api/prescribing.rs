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
    match &body {
        CreateRequest::Signed(signed) => {
            let signed = signed.clone();
            mutate(
                &state,
                &req,
                who,
                false,
                &body,
                StatusCode::CREATED,
                move |conn, who, at| ops::create_signed(conn, &inner.keys, who, &signed, at),
            )
            .await
        }
        CreateRequest::Unsigned(new) => {
            let valid = ops::validate_new(new, state.clock.today())?;
            let unsigned = state.unsigned;
            mutate(
                &state,
                &req,
                who,
                false,
                &body,
                StatusCode::CREATED,
                move |conn, who, at| ops::create(conn, &inner.keys, who, &valid, unsigned, at),
            )
            .await
        }
    }
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
