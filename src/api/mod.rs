//! The HTTP API: routing, thin handlers, authentication extractor, idempotent mutations.

pub mod audit;
pub mod openapi;

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use prescrypt_contract::Problem;
use prescrypt_contract::limits::{BODY_LIMIT, IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_REPLAYED_HEADER};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::{Authenticator, Principal};
use crate::error::AppError;
use crate::idempotency::{self, Earlier, IdempotencyKey};
use crate::keys::KeyRing;
use crate::prescriptions::{self as ops, now};
use crate::store::{DbConnection, Store};
use prescrypt_contract::views::{
    CancelRequest, CancelResult, DispenseRequest, History, NewPrescription, NominatedRelease,
    PrescriptionView, ReleaseRequest, ReturnRequest,
};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub keys: KeyRing,
    /// Also registered as `App` data on its own: [`crate::auth`] extracts the caller from it.
    pub auth: web::Data<Authenticator>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

type State = web::Data<Arc<AppState>>;

/// Maps actix's JSON extractor failures onto the contract's errors.
fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let app = match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            AppError::PayloadTooLarge { limit: BODY_LIMIT }
        }
        JsonPayloadError::ContentType => AppError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(error) => from_serde(&error),
        other => AppError::MalformedJson(other.to_string()),
    };
    app.into()
}

fn from_serde(error: &serde_json::Error) -> AppError {
    let message = error.to_string();
    let quoted = message.split('`').nth(1).unwrap_or_default().to_owned();
    if message.starts_with("unknown field") {
        AppError::UnknownField {
            field: quoted,
            detail: message,
        }
    } else if message.starts_with("missing field") {
        AppError::field(quoted, message)
    } else if error.is_data() {
        AppError::invalid("invalid-field", "body", message)
    } else {
        AppError::MalformedJson(message)
    }
}

fn idempotency_key(req: &HttpRequest, required: bool) -> Result<Option<IdempotencyKey>, AppError> {
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

/// Runs a state-changing operation in one write transaction, with `Idempotency-Key` replay:
/// the same key and request give back the stored response; a different request is refused.
async fn mutate<T, F>(
    state: &AppState,
    req: &HttpRequest,
    who: Principal,
    required: bool,
    request: &impl Serialize,
    success: StatusCode,
    op: F,
) -> Result<HttpResponse, AppError>
where
    T: Serialize,
    F: FnOnce(&mut DbConnection, &Principal) -> Result<T, AppError> + Send + 'static,
{
    let key = idempotency_key(req, required)?;
    let fingerprint = key
        .as_ref()
        .map(|_| {
            let mut hasher = Sha256::new();
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
    let (status, body, replayed) = state
        .store
        .write(move |conn| {
            if let (Some(key), Some(fingerprint)) = (&key, &fingerprint)
                && let Earlier::Replay { status, body } =
                    idempotency::claim(conn, &who.org, key, fingerprint, now())?
            {
                return Ok((status, body, true));
            }
            let value = op(conn, &who)?;
            let body = serde_json::to_string(&value)?;
            if let Some(key) = &key {
                idempotency::record(conn, &who.org, key, success.as_u16(), &body)?;
            }
            Ok((success.as_u16(), body, false))
        })
        .await?;
    let mut response = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(success));
    response.content_type("application/json");
    if replayed {
        response.insert_header((IDEMPOTENCY_REPLAYED_HEADER, "true"));
    }
    Ok(response.body(body))
}

async fn read_json<T, F>(state: &AppState, who: Principal, op: F) -> Result<HttpResponse, AppError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut DbConnection, &Principal) -> Result<T, AppError> + Send + 'static,
{
    // Reads are audited, so they are writes to the store.
    let value = state.store.write(move |conn| op(conn, &who)).await?;
    Ok(HttpResponse::Ok().json(value))
}

/// Create and sign a prescription.
#[utoipa::path(post, path = "/api/v1/prescriptions", request_body = NewPrescription,
    responses((status = 201, body = PrescriptionView), (status = 400, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = [])), tag = "prescribing")]
pub async fn create(
    state: State,
    req: HttpRequest,
    who: Principal,
    body: web::Json<NewPrescription>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let valid = ops::validate_new(&body)?;
    let inner = state.clone();
    mutate(
        &state,
        &req,
        who,
        false,
        &body,
        StatusCode::CREATED,
        move |conn, who| ops::create(conn, &inner.keys, who, &valid),
    )
    .await
}

/// The current state of a prescription (prescribing org, holding pharmacy).
#[utoipa::path(get, path = "/api/v1/prescriptions/{id}",
    params(("id" = String, Path, description = "short-form ID, any case, with or without hyphens")),
    responses((status = 200, body = PrescriptionView), (status = 404, body = Problem)),
    security(("bearer" = [])), tag = "prescriptions")]
pub async fn get(
    state: State,
    who: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ops::parse_id(&id)?;
    if state.store.has_replica() {
        let viewer = who.clone();
        let seen = state
            .store
            .read_fresh(move |conn| ops::peek(conn, &viewer, &id))
            .await?;
        if let Some(loaded) = seen {
            let uuid = loaded.row.uuid.clone();
            state
                .store
                .write(move |conn| ops::record_read(conn, &who, &uuid, "viewed"))
                .await?;
            return Ok(HttpResponse::Ok().json(loaded.view()));
        }
    }
    read_json(&state, who, move |conn, who| ops::get(conn, who, &id)).await
}

/// Every event of a prescription with actor and time.
#[utoipa::path(get, path = "/api/v1/prescriptions/{id}/history", params(("id" = String, Path)),
    responses((status = 200, body = History), (status = 404, body = Problem)),
    security(("bearer" = [])), tag = "prescriptions")]
pub async fn history(
    state: State,
    who: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ops::parse_id(&id)?;
    if state.store.has_replica() {
        let viewer = who.clone();
        let seen = state
            .store
            .read_fresh(move |conn| {
                ops::peek(conn, &viewer, &id)?
                    .map(|loaded| Ok((ops::events(conn, &loaded.row.uuid)?, loaded.row.uuid)))
                    .transpose()
            })
            .await?;
        if let Some((history, uuid)) = seen {
            state
                .store
                .write(move |conn| ops::record_read(conn, &who, &uuid, "history-viewed"))
                .await?;
            return Ok(HttpResponse::Ok().json(history));
        }
    }
    read_json(&state, who, move |conn, who| ops::history(conn, who, &id)).await
}

/// Cancel (or mark pending cancellation when with a dispenser).
#[utoipa::path(post, path = "/api/v1/prescriptions/{id}/cancel", params(("id" = String, Path)),
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
        move |conn, who| ops::cancel(conn, who, &id, reason.as_deref()),
    )
    .await
}

/// Release one prescription by scanned token (or bare ID when nominated to the caller).
#[utoipa::path(post, path = "/api/v1/release", request_body = ReleaseRequest,
    responses((status = 200, body = PrescriptionView), (status = 404, body = Problem),
              (status = 409, body = Problem)),
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
    mutate(
        &state,
        &req,
        who,
        false,
        &body,
        StatusCode::OK,
        move |conn, who| ops::release(conn, &inner.keys, who, &request),
    )
    .await
}

/// Release up to 25 prescriptions nominated to the caller's pharmacy.
#[utoipa::path(post, path = "/api/v1/release/nominated",
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
#[utoipa::path(post, path = "/api/v1/prescriptions/{id}/return", params(("id" = String, Path)),
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
        move |conn, who| ops::return_to_spine(conn, who, &id, &reason),
    )
    .await
}

/// Item-level dispense notification; `Idempotency-Key` required.
#[utoipa::path(post, path = "/api/v1/prescriptions/{id}/dispense",
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
        move |conn, who| ops::dispense(conn, who, &id, &request),
    )
    .await
}

/// Withdraw the latest dispense notification.
#[utoipa::path(post, path = "/api/v1/prescriptions/{id}/dispense/withdraw", params(("id" = String, Path)),
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
        move |conn, who| ops::withdraw(conn, who, &id),
    )
    .await
}

/// Claim reimbursement for a dispensed prescription.
#[utoipa::path(post, path = "/api/v1/prescriptions/{id}/claim", params(("id" = String, Path)),
    responses((status = 200, body = PrescriptionView), (status = 409, body = Problem)),
    security(("bearer" = [])), tag = "dispensing")]
pub async fn claim(
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
        move |conn, who| ops::claim(conn, who, &id),
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
#[utoipa::path(get, path = "/api/v1/prescriptions/{id}/token.{format}",
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
    let sheet = state
        .store
        .write(move |conn| ops::token_sheet(conn, &who, &id, dpi))
        .await?;
    let bytes = web::block(move || render_token(&sheet, format))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(format!("rendering the token: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(bytes))
}

// The signature is actix's error-handler type.
#[allow(clippy::needless_pass_by_value)]
fn query_error(error: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    AppError::field("query", error.to_string()).into()
}

/// The service's signing keys (JWKS, kid = token key id).
#[utoipa::path(get, path = "/.well-known/jwks.json", responses((status = 200, description = "JWK set")), tag = "keys")]
pub async fn jwks(state: State) -> Result<HttpResponse, AppError> {
    let set = state
        .keys
        .jwks()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(set))
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive")), tag = "operations")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "the database answers"),
    (status = 503, body = Problem)), tag = "operations")]
pub async fn readyz(state: State) -> Result<HttpResponse, AppError> {
    state.store.ping().await?;
    Ok(HttpResponse::Ok().content_type("text/plain").body("ready"))
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")), tag = "operations")]
pub async fn metrics_endpoint(state: State) -> Result<HttpResponse, AppError> {
    let counts = state.store.read(ops::count_by_status).await?;
    for (status, count) in counts {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("prescrypt_prescriptions", "status" => status).set(count as f64);
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render()))
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi::document())
}

/// No route matched: 405 + `Allow` when the document has the path under other methods, else 404.
async fn no_route(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(
        openapi::allowed_methods(req.path()).map_or(AppError::NotFound, |allow| {
            AppError::MethodNotAllowed { allow }
        }),
    )
}

/// Counts requests and their latency by route pattern and status.
async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let response = next.call(req).await?;
    let status = response.status().as_u16().to_string();
    metrics::counter!("prescrypt_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("prescrypt_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Mounts every route on an actix `App`.
pub fn configure(state: Arc<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.auth.clone())
            .app_data(web::Data::new(state))
            .app_data(
                web::JsonConfig::default()
                    .limit(BODY_LIMIT)
                    .error_handler(json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .service(
                web::scope("")
                    .wrap(actix_web::middleware::from_fn(record_metrics))
                    .service(
                        web::scope("/api/v1")
                            .route("/prescriptions", web::post().to(create))
                            .route("/prescriptions/{id}", web::get().to(get))
                            .route("/prescriptions/{id}/history", web::get().to(history))
                            .route("/prescriptions/{id}/cancel", web::post().to(cancel))
                            .route(
                                "/prescriptions/{id}/return",
                                web::post().to(return_prescription),
                            )
                            .route("/prescriptions/{id}/dispense", web::post().to(dispense))
                            .route(
                                "/prescriptions/{id}/dispense/withdraw",
                                web::post().to(withdraw),
                            )
                            .route("/prescriptions/{id}/claim", web::post().to(claim))
                            .route(
                                "/prescriptions/{id}/token.{format}",
                                web::get().to(token_document),
                            )
                            .route("/release", web::post().to(release))
                            .route("/release/nominated", web::post().to(release_nominated))
                            .route("/audit/checkpoints", web::get().to(audit::checkpoints))
                            .route("/openapi.json", web::get().to(openapi_json))
                            .default_service(web::to(no_route)),
                    )
                    .route("/.well-known/jwks.json", web::get().to(jwks))
                    .route("/healthz", web::get().to(healthz))
                    .route("/readyz", web::get().to(readyz))
                    .route("/metrics", web::get().to(metrics_endpoint))
                    .default_service(web::to(no_route)),
            );
    }
}
