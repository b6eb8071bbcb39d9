//! The route table: every endpoint the service serves, one line each. The server mounts it
//! ([`configure`]) and the OpenAPI document is built from it ([`super::openapi::document`]); a
//! handler's method and path come from its `#[utoipa::path]`. Lookups by prescription ID or
//! token are marked `.lookup()`: the brute-force throttle wraps exactly those.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};
use prescrypt_contract::limits::BODY_LIMIT;
use prescrypt_contract::routes;
use utoipa::openapi::path::HttpMethod;

use super::endpoint::{Endpoint, actix_method};
use super::extract::{json_error, query_error};
use super::state::AppState;
use super::{
    audit, dev, dispensing, openapi, operations, prescriber_keys, prescribing, prescriptions,
};
use crate::error::AppError;
use crate::guard;

/// Every endpoint, in the order actix matches them.
pub fn endpoints() -> Vec<Endpoint> {
    use Endpoint as E;
    use audit::*;
    use dispensing::*;
    use operations::*;
    use prescriber_keys::*;
    use prescribing::*;
    use prescriptions::*;
    vec![
        E::documented::<__path_create, _, _>(create),
        E::documented::<__path_search, _, _>(search).lookup(),
        E::documented::<__path_prepare, _, _>(prepare),
        E::documented::<__path_get, _, _>(get).lookup(),
        E::documented::<__path_history, _, _>(history).lookup(),
        E::documented::<__path_cancel, _, _>(cancel).lookup(),
        E::documented::<__path_return_prescription, _, _>(return_prescription).lookup(),
        E::documented::<__path_dispense, _, _>(dispense).lookup(),
        E::documented::<__path_withdraw, _, _>(withdraw).lookup(),
        E::documented::<__path_claim, _, _>(claim).lookup(),
        E::documented::<__path_receipt, _, _>(receipt).lookup(),
        E::documented::<__path_token_document, _, _>(token_document).lookup(),
        E::documented::<__path_release, _, _>(release).lookup(),
        E::documented::<__path_release_nominated, _, _>(release_nominated),
        E::documented::<__path_checkpoints, _, _>(checkpoints),
        E::documented::<__path_enrol_key, _, _>(enrol_key),
        E::documented::<__path_prescriber_key_set, _, _>(prescriber_key_set),
        E::documented::<__path_revoke_key, _, _>(revoke_key),
        E::undocumented(HttpMethod::Get, routes::OPENAPI, openapi_json),
        E::documented::<__path_jwks, _, _>(jwks),
        E::documented::<__path_healthz, _, _>(healthz),
        E::documented::<__path_readyz, _, _>(readyz),
    ]
}

/// What the server mounts: [`endpoints`], and with `--dev` the development endpoints (not in
/// the document, so without `--dev` their paths answer 404 like any unknown path).
fn mounted(dev: bool) -> Vec<Endpoint> {
    let mut all = endpoints();
    if dev {
        all.push(Endpoint::undocumented(
            HttpMethod::Post,
            routes::DEV_CLOCK,
            dev::advance_clock,
        ));
    }
    all
}

/// The OpenAPI document of [`endpoints`], built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> =
    LazyLock::new(|| openapi::document(&endpoints()));

/// `GET /api/v1/openapi.json`.
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(&*DOCUMENT)
}

/// No route matched: 405 + `Allow` when the document has the path under other methods, else 404.
async fn no_route(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(
        openapi::allowed_methods(&DOCUMENT, req.path()).map_or(AppError::NotFound, |allow| {
            AppError::MethodNotAllowed { allow }
        }),
    )
}

/// A request method as a metric label: the methods the API serves, every other one (any token
/// a client sends) as `other`, so clients cannot grow the label set.
fn metric_method(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts requests and their latency by route pattern and status.
async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = metric_method(req.method()).to_owned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let response = next.call(req).await?;
    let status = response.status().as_u16().to_string();
    metrics::counter!("prescrypt_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("prescrypt_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Mounts one resource per path of `endpoints` (a `GET` answers `HEAD` too). Each route is
/// wrapped in the refusal audit; lookups in the throttle around it, so that the request whose
/// failure crosses the limit (answered 429) still has its refusal audited. (Per route, not per
/// resource: `GET /api/v1/prescriptions` is throttled, `POST` on the same path is not.)
fn mount(cfg: &mut web::ServiceConfig, endpoints: &[Endpoint]) {
    let mut paths: Vec<&str> = Vec::new();
    for endpoint in endpoints {
        if !paths.contains(&endpoint.path.as_str()) {
            paths.push(&endpoint.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path).default_service(web::to(no_route));
        for endpoint in endpoints.iter().filter(|e| e.path == path) {
            let guarded = |route: actix_web::Route| {
                let route = route.wrap(from_fn(guard::audit_refusals));
                if endpoint.lookup {
                    route.wrap(from_fn(guard::throttle))
                } else {
                    route
                }
            };
            for method in &endpoint.methods {
                let method = actix_method(method);
                if method == actix_web::http::Method::GET {
                    resource = resource.route(guarded((endpoint.handler)(web::head())));
                }
                resource = resource.route(guarded((endpoint.handler)(web::method(method))));
            }
        }
        cfg.service(resource);
    }
}

/// The metrics listener's one route (`serve --metrics-listen`): `GET /metrics`, never on the
/// API listener.
pub fn configure_metrics(state: Arc<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .route(routes::METRICS, web::get().to(operations::metrics_endpoint))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(AppError::NotFound)
            }));
    }
}

/// Mounts every route on an actix `App`.
pub fn configure(state: Arc<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    let dev = state.dev;
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
            // The EPS FHIR API: the same guards per route, its errors as OperationOutcome.
            .service(
                web::scope(crate::fhir::PREFIX)
                    .wrap(from_fn(crate::fhir::outcome::render))
                    .wrap(from_fn(record_metrics))
                    .configure(|scope| mount(scope, &crate::fhir::endpoints()))
                    .default_service(web::to(no_route)),
            )
            .service(
                web::scope("")
                    .wrap(from_fn(record_metrics))
                    .configure(|scope| mount(scope, &mounted(dev)))
                    .default_service(web::to(no_route)),
            );
    }
}
