//! How handlers run store operations: state changes in one write transaction with
//! `Idempotency-Key` replay ([`mutate`]), audited reads ([`read_json`]). Both read the time from
//! the service's clock inside the transaction and hand it to the operation.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use prescrypt_contract::limits::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_REPLAYED_HEADER};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::state::AppState;
use crate::audit;
use crate::auth::Principal;
use crate::error::AppError;
use crate::idempotency::{self, Earlier, IdempotencyKey};
use crate::store::DbConnection;

/// The request's `Idempotency-Key` header (a 400 when `required` and absent).
pub fn idempotency_key(
    req: &HttpRequest,
    required: bool,
) -> Result<Option<IdempotencyKey>, AppError> {
    match req.headers().get(IDEMPOTENCY_KEY_HEADER) {
        None if required => Err(AppError::IdempotencyKeyRequired),
        None => Ok(None),
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                AppError::invalid(
                    "invalid-field",
                    IDEMPOTENCY_KEY_HEADER,
                    "visible ASCII only",
                )
            })?;
            IdempotencyKey::parse(text).map(Some)
        }
    }
}

/// A response body: serialised in the transaction (kept for `Idempotency-Key` replay) or not yet.
enum Answer<T> {
    Serialized(String),
    Value(T),
}

/// Runs a state-changing operation in one write transaction, with `Idempotency-Key` replay:
/// the same key and request give back the stored response; a different request is refused.
pub async fn mutate<T, F>(
    state: &AppState,
    req: &HttpRequest,
    who: Principal,
    required: bool,
    request: &impl Serialize,
    success: StatusCode,
    op: F,
) -> Result<HttpResponse, AppError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut DbConnection, &Principal, NaiveDateTime) -> Result<T, AppError> + Send + 'static,
{
    mutate_answering(state, req, who, required, request, move |conn, who, at| {
        op(conn, who, at).map(|value| (success, value))
    })
    .await
}

/// [`mutate`] for an operation whose success status depends on what it did (201 created, 200
/// found as it was).
pub async fn mutate_answering<T, F>(
    state: &AppState,
    req: &HttpRequest,
    who: Principal,
    required: bool,
    request: &impl Serialize,
    op: F,
) -> Result<HttpResponse, AppError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut DbConnection, &Principal, NaiveDateTime) -> Result<(StatusCode, T), AppError>
        + Send
        + 'static,
{
    let key = idempotency_key(req, required)?;
    mutate_with_key(state, req, who, key, request, op).await
}

/// [`mutate_answering`] with the idempotency key chosen by the caller (the FHIR API derives one
/// from a message's identifier when the header is absent, as EPS clients retry with the
/// identical message).
pub async fn mutate_with_key<T, F>(
    state: &AppState,
    req: &HttpRequest,
    who: Principal,
    key: Option<IdempotencyKey>,
    request: &impl Serialize,
    op: F,
) -> Result<HttpResponse, AppError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut DbConnection, &Principal, NaiveDateTime) -> Result<(StatusCode, T), AppError>
        + Send
        + 'static,
{
    let fingerprint = key
        .as_ref()
        .map(|_| {
            let mut hasher = Sha256::new();
            // A key is the caller's own: another professional of the organisation sending the
            // same key gets "reused", never the first caller's answer.
            hasher.update(who.sub.as_bytes());
            hasher.update(b"\n");
            hasher.update(who.role.as_str());
            hasher.update(b"\n");
            hasher.update(req.method().as_str());
            hasher.update(b" ");
            hasher.update(req.match_pattern().unwrap_or_default());
            hasher.update(b"\n");
            hasher.update(
                req.match_info()
                    .get("id")
                    .map(|id| id.replace('-', "").to_ascii_uppercase())
                    .unwrap_or_default(),
            );
            hasher.update(b"\n");
            hasher.update(crate::signing::canonical_json(request)?);
            Ok::<_, AppError>(data_encoding::HEXLOWER.encode(&hasher.finalize()))
        })
        .transpose()?;
    let route = format!(
        "{} {}",
        req.method(),
        req.match_pattern().unwrap_or_default()
    );
    let id = req.match_info().get("id").map(str::to_owned);
    let clock = state.clock.clone();
    let (status, body, replayed) = state
        .store
        .write(move |conn| {
            let at = clock.now();
            if let (Some(key), Some(fingerprint)) = (&key, &fingerprint)
                && let Earlier::Replay { status, body } =
                    idempotency::claim(conn, &who.org, key, fingerprint, at)?
            {
                audit::append(
                    conn,
                    &who,
                    "idempotent-replay",
                    None,
                    &json!({"route": route, "id": id, "status": status}),
                    at,
                )?;
                return Ok((status, Answer::Serialized(body), true));
            }
            let (success, value) = op(conn, &who, at)?;
            // The answer is serialised inside the transaction only when it is kept for replay;
            // otherwise after the commit, outside the single writer.
            let body = match (&key, &fingerprint) {
                (Some(key), Some(fingerprint)) => {
                    let body = serde_json::to_string(&value)?;
                    idempotency::record(
                        conn,
                        &who.org,
                        key,
                        fingerprint,
                        at,
                        success.as_u16(),
                        &body,
                    )?;
                    Answer::Serialized(body)
                }
                _ => Answer::Value(value),
            };
            Ok((success.as_u16(), body, false))
        })
        .await?;
    let body = match body {
        Answer::Serialized(body) => body,
        Answer::Value(value) => serde_json::to_string(&value)?,
    };
    let mut response = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    response.content_type("application/json");
    if replayed {
        response.insert_header((IDEMPOTENCY_REPLAYED_HEADER, "true"));
    }
    Ok(response.body(body))
}

pub async fn read_json<T, F>(
    state: &AppState,
    who: Principal,
    op: F,
) -> Result<HttpResponse, AppError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut DbConnection, &Principal, NaiveDateTime) -> Result<T, AppError> + Send + 'static,
{
    // Reads are audited, so they are writes to the store.
    let clock = state.clock.clone();
    let value = state
        .store
        .write(move |conn| op(conn, &who, clock.now()))
        .await?;
    Ok(HttpResponse::Ok().json(value))
}
