//! Prescriber keys: enrol (prescriber, for themselves), revoke (owner or admin), the key set.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use prescrypt_contract::Problem;
use prescrypt_contract::routes;
use prescrypt_contract::views::{EnrolKey, PrescriberKey, PrescriberKeySet};

use super::mutate::mutate_answering;
use super::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions::{self as ops, Enrolled};

/// Enrol one of the caller's Ed25519 public keys (201; 200 when it is already theirs).
#[utoipa::path(post, path = routes::PRESCRIBER_KEYS, request_body = EnrolKey,
    responses((status = 201, body = PrescriberKey), (status = 200, body = PrescriberKey),
              (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 409, body = Problem)),
    security(("bearer" = [])), tag = "prescriber keys")]
pub async fn enrol_key(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Json<EnrolKey>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let jwk = body.jwk.clone();
    mutate_answering(&state, &req, who, false, &body, move |conn, who, at| {
        let (key, enrolled) = ops::enrol(conn, who, &jwk, at)?;
        let status = match enrolled {
            Enrolled::New => StatusCode::CREATED,
            Enrolled::AlreadyYours => StatusCode::OK,
        };
        Ok((status, key))
    })
    .await
}

/// Revoke a key: signatures accepted before now stay valid, none is accepted after.
#[utoipa::path(delete, path = routes::PRESCRIBER_KEY, params(("kid" = String, Path)),
    responses((status = 200, body = PrescriberKey), (status = 404, body = Problem)),
    security(("bearer" = [])), tag = "prescriber keys")]
pub async fn revoke_key(
    state: State,
    who: Principal,
    kid: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let kid = kid.into_inner();
    let clock = state.clock.clone();
    let key = state
        .store
        .write(move |conn| ops::revoke(conn, &who, &kid, clock.now()))
        .await?;
    Ok(HttpResponse::Ok().json(key))
}

/// Every prescriber key, revoked ones included, for the counters' offline caches.
#[utoipa::path(get, path = routes::PRESCRIBER_KEYS_JWKS,
    responses((status = 200, body = PrescriberKeySet), (status = 401, body = Problem)),
    security(("bearer" = [])), tag = "prescriber keys")]
pub async fn prescriber_key_set(state: State, _who: Principal) -> Result<HttpResponse, AppError> {
    let set = state.store.read(ops::key_set).await?;
    Ok(HttpResponse::Ok().json(set))
}
