//! Dispensing: release (by token, or the nominated batch), return, dispense notifications and
//! their withdrawal, claims.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use prescrypt_contract::Problem;
use prescrypt_contract::routes;
use prescrypt_contract::views::{
    ClaimRequest, DispenseRequest, NominatedRelease, PrescriptionView, ReceiptView, ReleaseRequest,
    ReturnRequest,
};

use super::mutate::{mutate, read_json};
use super::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

/// Release one prescription by scanned token (or bare ID when nominated to the caller).
///
/// A repeat-dispensing prescription releases its current issue. An issue that is not releasable yet (future-dated 9001, or a repeat-dispensing
/// issue awaiting its nominated download date, 0000) answers 409 `not-yet-releasable` with the
/// date it becomes releasable.
#[utoipa::path(post, path = routes::RELEASE, request_body = ReleaseRequest,
    responses((status = 200, body = PrescriptionView), (status = 404, body = Problem),
              (status = 409, description = "held by another dispenser, not releasable yet \
              (`not-yet-releasable`) or in a status that cannot be released", body = Problem)),
    security(("bearer" = [])), tag = "dispensing")]
pub async fn release(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Json<ReleaseRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let inner = state.clone();
    let request = body.clone();
    // The token's signature is verified here, on the HTTP workers, not in the single writer;
    // a refusal is decided in the write transaction as before (after an `Idempotency-Key`
    // replay, for one).
    let target = ops::release_target(&state.keys, &who, &body).ok();
    mutate(
        &state,
        &req,
        who,
        false,
        &body,
        StatusCode::OK,
        move |conn, who, at| match target {
            Some(target) => ops::release_checked(conn, who, target, at),
            None => ops::release(conn, &inner.keys, who, &request, at),
        },
    )
    .await
}

/// Release up to 25 prescriptions nominated to the caller's pharmacy.
#[utoipa::path(post, path = routes::RELEASE_NOMINATED,
    responses((status = 200, body = NominatedRelease)), security(("bearer" = [])), tag = "dispensing")]
pub async fn release_nominated(
    state: State,
    req: HttpRequest,
    who: Principal,
) -> Result<HttpResponse, AppError> {
    mutate(
        &state,
        &req,
        who,
        false,
        &(),
        StatusCode::OK,
        ops::release_nominated,
    )
    .await
}

/// Hand a prescription back to the central store.
#[utoipa::path(post, path = routes::RETURN, params(("id" = String, Path)),
    request_body = ReturnRequest,
    responses((status = 200, body = PrescriptionView), (status = 409, body = Problem)),
    security(("bearer" = [])), tag = "dispensing")]
pub async fn return_prescription(
    state: State,
    req: HttpRequest,
    who: Principal,
    id: web::Path<String>,
    body: web::Json<ReturnRequest>,
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
        move |conn, who, at| ops::return_to_spine(conn, who, &id, &reason, at),
    )
    .await
}

/// Item-level dispense notification; `Idempotency-Key` required.
#[utoipa::path(post, path = routes::DISPENSE,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "1 to 128 characters")),
    request_body = DispenseRequest,
    responses((status = 200, body = PrescriptionView), (status = 409, body = Problem),
              (status = 422, body = Problem)),
    security(("bearer" = [])), tag = "dispensing")]
pub async fn dispense(
    state: State,
    req: HttpRequest,
    who: Principal,
    id: web::Path<String>,
    body: web::Json<DispenseRequest>,
) -> Result<HttpResponse, AppError> {
    let id = ops::parse_id(&id)?;
    let body = body.into_inner();
    let request = body.clone();
    mutate(
        &state,
        &req,
        who,
        true,
        &body,
        StatusCode::OK,
        move |conn, who, at| ops::dispense(conn, who, &id, &request, at),
    )
    .await
}

/// Withdraw the latest dispense notification.
#[utoipa::path(post, path = routes::WITHDRAW, params(("id" = String, Path)),
    responses((status = 200, body = PrescriptionView), (status = 409, body = Problem)),
    security(("bearer" = [])), tag = "dispensing")]
pub async fn withdraw(
    state: State,
    req: HttpRequest,
    who: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ops::parse_id(&id)?;
    mutate(
        &state,
        &req,
        who,
        false,
        &(),
        StatusCode::OK,
        move |conn, who, at| ops::withdraw(conn, who, &id, at),
    )
    .await
}

/// Claim reimbursement for a dispensed or not-dispensed prescription: exemption, evidence, and
/// the endorsements of every supplied item; again within the claim window to amend it.
#[utoipa::path(post, path = routes::CLAIM, params(("id" = String, Path)), request_body = ClaimRequest,
    responses((status = 200, body = PrescriptionView), (status = 400, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])), tag = "dispensing")]
pub async fn claim(
    state: State,
    req: HttpRequest,
    who: Principal,
    id: web::Path<String>,
    body: web::Json<ClaimRequest>,
) -> Result<HttpResponse, AppError> {
    let id = ops::parse_id(&id)?;
    let body = body.into_inner();
    let request = body.clone();
    let window = state.claim_window;
    mutate(
        &state,
        &req,
        who,
        false,
        &body,
        StatusCode::OK,
        move |conn, who, at| ops::claim(conn, who, &id, &request, window, at),
    )
    .await
}

/// The service's signed receipt of what was handed over and claimed (holding pharmacy; once
/// something was dispensed or not dispensed).
#[utoipa::path(get, path = routes::RECEIPT, params(("id" = String, Path)),
    responses((status = 200, body = ReceiptView), (status = 404, body = Problem),
              (status = 409, body = Problem)),
    security(("bearer" = [])), tag = "dispensing")]
pub async fn receipt(
    state: State,
    who: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ops::parse_id(&id)?;
    let inner = state.clone();
    read_json(&state, who, move |conn, who, at| {
        ops::receipt(conn, &inner.keys, who, &id, at)
    })
    .await
}
