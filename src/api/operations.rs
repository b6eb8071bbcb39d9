//! Operations: the signing keys, liveness, readiness, metrics (on the metrics listener).

use actix_web::HttpResponse;
use prescrypt_contract::Problem;
use prescrypt_contract::routes;

use super::state::State;
use crate::error::AppError;
use crate::prescriptions as ops;

/// The service's signing keys (JWKS, kid = token key id).
#[utoipa::path(get, path = routes::JWKS, responses((status = 200, description = "JWK set")), tag = "keys")]
pub async fn jwks(state: State) -> Result<HttpResponse, AppError> {
    let set = state
        .keys
        .jwks()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(set))
}

#[utoipa::path(get, path = routes::HEALTHZ, responses((status = 200, description = "alive")), tag = "operations")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

#[utoipa::path(get, path = routes::READYZ, responses((status = 200, description = "the database answers"),
    (status = 503, body = Problem)), tag = "operations")]
pub async fn readyz(state: State) -> Result<HttpResponse, AppError> {
    state.store.ping().await?;
    Ok(HttpResponse::Ok().content_type("text/plain").body("ready"))
}

/// `GET /metrics` (Prometheus text format), served only on the metrics listener
/// (`serve --metrics-listen`), so it is not in the API's OpenAPI document.
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
