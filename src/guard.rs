//! The service's guards against overload and abuse, as actix middleware: the first two around
//! the whole app (`startup`), the throttle and the refusal audit around routes (`api::routes`):
//!
//! - [`read_body`]: the body is read whole (at most the body limit) within `--body-timeout`
//!   (else 408 `body-timeout`) before the request takes a slot, so slow senders hold none.
//! - [`shed`]: at most `--max-in-flight` requests are handled at once, and one organisation
//!   holds at most its `--max-in-flight-share` of them; the rest are answered at once with 503
//!   `overloaded` + `Retry-After` instead of queueing (health and readiness are exempt). The
//!   SQLite writer queue is bounded too (`--write-queue`, see `store`).
//! - [`time_limit`]: a request that takes longer than `--request-timeout` once its body is read
//!   gets 503 `timeout`.
//! - [`throttle`]: failed lookups by prescription ID or token (404, invalid ID, invalid token,
//!   403, 409) are counted per organisation of an authenticated caller, and per client address
//!   for callers without a valid bearer token (401), with a GCRA limiter (`governor`); past the
//!   limit, every lookup of that key gets 429 `too-many-requests` + `Retry-After`, is counted in
//!   `prescrypt_throttled_total{scope}` and audited (authenticated callers) once per onset per
//!   key per window.
//! - [`audit_refusals`]: refused accesses by a known caller are audited too.
//! - [`security_headers`] and [`QuietRootSpan`] (request spans without request data).
//!
//! The HTTP server's own limits (connections, backlog, header read timeout, keep-alive) come
//! from [`GuardArgs`] too; see `startup` and SECURITY.md.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;
use tokio::sync::Semaphore;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use prescrypt_contract::limits::BODY_LIMIT;

use crate::auth::Principal;
use crate::clock::Clock;
use crate::config::GuardArgs;
use crate::error::AppError;
use crate::store::Store;

/// The shared state of the guards (one per server, shared by every worker).
#[derive(Debug)]
pub struct Guard {
    in_flight: Arc<Semaphore>,
    /// Requests in flight per organisation (`""`: callers without a valid bearer token); an
    /// entry is removed when its count returns to zero.
    in_flight_by_org: Arc<Mutex<HashMap<String, usize>>>,
    max_in_flight_per_org: usize,
    body_timeout: Duration,
    request_timeout: Duration,
    throttle: Throttle,
}

impl Guard {
    /// The guards' state, as the `App` data the middleware reads.
    pub fn new(args: &GuardArgs, store: Store, clock: Clock) -> web::Data<Self> {
        // Registered at zero so dashboards see the series before the first event.
        for reason in ["in-flight", "org-share", "write-queue"] {
            metrics::counter!("prescrypt_shed_total", "reason" => reason).increment(0);
        }
        for scope in [Scope::Org, Scope::Addr] {
            metrics::counter!("prescrypt_throttled_total", "scope" => scope.as_str()).increment(0);
        }
        metrics::counter!("prescrypt_request_timeouts_total").increment(0);
        metrics::counter!("prescrypt_body_timeouts_total").increment(0);
        web::Data::new(Self {
            in_flight: Arc::new(Semaphore::new(args.max_in_flight.max(1))),
            in_flight_by_org: Arc::new(Mutex::new(HashMap::new())),
            max_in_flight_per_org: args.max_in_flight_per_org(),
            body_timeout: args.body_timeout,
            request_timeout: args.request_timeout,
            throttle: Throttle::new(args, store, clock),
        })
    }
}

type GuardResponse<B> = Result<ServiceResponse<EitherBody<B>>, Error>;

fn refuse<B>(req: ServiceRequest, error: AppError) -> ServiceResponse<EitherBody<B>> {
    req.error_response(error).map_into_right_body()
}

pub fn exempt_from_shedding(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// One request's place among those in flight: a slot of `--max-in-flight` and one of its
/// organisation's share, both given back when it is dropped.
struct InFlight {
    _slot: tokio::sync::OwnedSemaphorePermit,
    by_org: Arc<Mutex<HashMap<String, usize>>>,
    org: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut by_org = self
            .by_org
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = by_org.get_mut(&self.org) {
            *count -= 1;
            if *count == 0 {
                by_org.remove(&self.org);
            }
        }
    }
}

impl Guard {
    /// A slot for a request of `org`, unless every slot is taken or `org` holds its share.
    fn admit(&self, org: String) -> Result<InFlight, &'static str> {
        let mut by_org = self
            .in_flight_by_org
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| "in-flight")?;
        let count = by_org.get(&org).copied().unwrap_or(0);
        if count >= self.max_in_flight_per_org {
            return Err("org-share");
        }
        by_org.insert(org.clone(), count + 1);
        Ok(InFlight {
            _slot: slot,
            by_org: self.in_flight_by_org.clone(),
            org,
        })
    }
}

/// Sheds load with 503 `overloaded` + `Retry-After: 1` past `--max-in-flight`, or past the
/// caller's organisation's share of it (`--max-in-flight-share`). Runs after [`read_body`], so
/// a slow body holds no slot.
pub async fn shed<B: MessageBody>(
    guard: web::Data<Guard>,
    req: ServiceRequest,
    next: Next<B>,
) -> GuardResponse<B> {
    if exempt_from_shedding(req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    // The bearer token is verified once per request: the result is kept for the handler.
    let org = crate::auth::authenticate(req.request())
        .map(|who| who.org)
        .unwrap_or_default();
    let _in_flight = match guard.admit(org) {
        Ok(in_flight) => in_flight,
        Err(reason) => {
            metrics::counter!("prescrypt_shed_total", "reason" => reason).increment(1);
            return Ok(refuse(req, AppError::Overloaded));
        }
    };
    Ok(next.call(req).await?.map_into_left_body())
}

/// Reads the whole request body (at most the body limit) within `--body-timeout`, before the
/// request takes a slot in [`shed`]: a client that sends its body slowly costs a connection
/// and at most the body limit of memory, never a slot. Too slow: 408 `body-timeout` (the
/// connection is closed, the rest of the body unread); too large: 413 `payload-too-large`.
pub async fn read_body<B: MessageBody>(
    guard: web::Data<Guard>,
    mut req: ServiceRequest,
    next: Next<B>,
) -> GuardResponse<B> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT) {
        return Ok(refuse(req, AppError::PayloadTooLarge { limit: BODY_LIMIT }));
    }
    let stream = actix_web::body::BodyStream::new(req.take_payload());
    let read = tokio::time::timeout(
        guard.body_timeout,
        actix_web::body::to_bytes_limited(stream, BODY_LIMIT),
    )
    .await;
    let body = match read {
        Ok(Ok(Ok(body))) => body,
        Ok(Ok(Err(error))) => return Err(actix_web::error::ErrorBadRequest(error)),
        Ok(Err(_too_large)) => {
            return Ok(refuse(req, AppError::PayloadTooLarge { limit: BODY_LIMIT }));
        }
        Err(_elapsed) => {
            metrics::counter!("prescrypt_body_timeouts_total").increment(1);
            let seconds = guard.body_timeout.as_secs().max(1);
            return Ok(refuse(req, AppError::BodyTimeout { seconds }));
        }
    };
    req.set_payload(actix_web::dev::Payload::from(body));
    Ok(next.call(req).await?.map_into_left_body())
}

/// Answers 503 `timeout` when a request takes too long once its body is read. The work
/// may still complete (a queued write commits), which the problem detail says.
///
/// The answer is an `Err` rendered by actix (a middleware cannot keep the request to build a
/// response: routing needs it unshared); [`security_headers`] still adds the headers.
pub async fn time_limit<B: MessageBody>(
    guard: web::Data<Guard>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    match tokio::time::timeout(guard.request_timeout, next.call(req)).await {
        Ok(response) => response,
        Err(_elapsed) => {
            metrics::counter!("prescrypt_request_timeouts_total").increment(1);
            Err(AppError::Timeout {
                seconds: guard.request_timeout.as_secs().max(1),
            }
            .into())
        }
    }
}

/// What a failure limit is kept per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Org,
    Addr,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Org => "org",
            Self::Addr => "addr",
        }
    }
}

/// A key over its limit: refused until `until`; audited at `audited_at`.
#[derive(Debug, Clone, Copy)]
struct Block {
    until: Instant,
    audited_at: Instant,
}

/// Keys whose blocks are forgotten once expired, checked when the table grows past this.
const PRUNE_AT: usize = 4096;

/// Failure limits per organisation and per client address.
struct Throttle {
    org: Option<DefaultKeyedRateLimiter<String>>,
    addr: Option<DefaultKeyedRateLimiter<String>>,
    window: Duration,
    trust_forwarded_for: bool,
    blocks: Mutex<HashMap<(Scope, String), Block>>,
    store: Store,
    /// The time of the audit entries the guards write.
    clock: Clock,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("org", &self.org.is_some())
            .field("addr", &self.addr.is_some())
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// `failures` per `window`, all of them available at once (GCRA burst).
fn limiter(failures: u32, window: Duration) -> Option<DefaultKeyedRateLimiter<String>> {
    let burst = NonZeroU32::new(failures)?;
    let quota = Quota::with_period(window / failures)?.allow_burst(burst);
    Some(RateLimiter::keyed(quota))
}

impl Throttle {
    fn new(args: &GuardArgs, store: Store, clock: Clock) -> Self {
        Self {
            org: limiter(args.throttle_org_failures, args.throttle_window),
            addr: limiter(args.throttle_addr_failures, args.throttle_window),
            window: args.throttle_window,
            trust_forwarded_for: args.trust_forwarded_for,
            blocks: Mutex::new(HashMap::new()),
            store,
            clock,
        }
    }

    fn enabled(&self) -> bool {
        self.org.is_some() || self.addr.is_some()
    }

    /// The key a caller's failures count against: its organisation when it is authenticated
    /// (so organisations sharing an address, behind one NAT or gateway, never lock each other
    /// out), its address when it is not (it names no organisation).
    fn key(&self, who: Option<&Principal>, addr: Option<IpAddr>) -> Option<(Scope, String)> {
        match who {
            Some(who) => self.org.as_ref().map(|_| (Scope::Org, who.org.clone())),
            None => self
                .addr
                .as_ref()
                .and(addr)
                .map(|addr| (Scope::Addr, addr.to_string())),
        }
    }

    fn limiter(&self, scope: Scope) -> Option<&DefaultKeyedRateLimiter<String>> {
        match scope {
            Scope::Org => self.org.as_ref(),
            Scope::Addr => self.addr.as_ref(),
        }
    }

    /// The first of `keys` that is blocked now, with the seconds left.
    fn blocked(&self, keys: &[(Scope, String)]) -> Option<(Scope, u64)> {
        let now = Instant::now();
        let blocks = self
            .blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.iter().find_map(|key| {
            let block = blocks.get(key)?;
            (block.until > now).then(|| (key.0, seconds_until(block.until, now)))
        })
    }

    /// Counts one failure against every key; returns the first key that is now over its limit,
    /// the seconds to wait, and whether this onset is to be audited (once per key per window).
    fn fail(&self, keys: &[(Scope, String)]) -> Option<(Scope, String, u64, bool)> {
        let mut over = None;
        for (scope, key) in keys {
            let Some(limiter) = self.limiter(*scope) else {
                continue;
            };
            if let Err(not_until) = limiter.check_key(key) {
                let wait = not_until.wait_time_from(limiter.clock().now());
                over.get_or_insert((*scope, key.clone(), wait));
            }
        }
        let (scope, key, wait) = over?;
        let now = Instant::now();
        let until = now + wait.max(Duration::from_secs(1));
        let mut blocks = self
            .blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if blocks.len() >= PRUNE_AT {
            blocks.retain(|_, b| b.until > now || now.duration_since(b.audited_at) < self.window);
            for limiter in [&self.org, &self.addr].into_iter().flatten() {
                limiter.retain_recent();
            }
        }
        let audit = match blocks.get_mut(&(scope, key.clone())) {
            Some(block) => {
                block.until = until;
                let due = now.duration_since(block.audited_at) >= self.window;
                if due {
                    block.audited_at = now;
                }
                due
            }
            None => {
                blocks.insert(
                    (scope, key.clone()),
                    Block {
                        until,
                        audited_at: now,
                    },
                );
                true
            }
        };
        Some((scope, key, seconds_until(until, now), audit))
    }

    fn client_addr(&self, req: &ServiceRequest) -> Option<IpAddr> {
        if self.trust_forwarded_for
            && let Some(forwarded) = req.connection_info().realip_remote_addr()
            && let Some(ip) = parse_addr(forwarded)
        {
            return Some(ip);
        }
        req.peer_addr().map(|peer| peer.ip())
    }

    async fn audit_onset(&self, who: Principal, scope: Scope, key: String) {
        let detail = json!({
            "scope": scope.as_str(),
            "key": key,
            "window_seconds": self.window.as_secs(),
        });
        audit_apart(&self.store, &self.clock, who, "throttled", detail).await;
    }
}

/// Appends an audit entry about no prescription in a transaction of its own (the request's own
/// transaction, if it had one, rolled back or is not the place for it); a failure is logged,
/// not answered, since the request itself was already decided.
async fn audit_apart(
    store: &Store,
    clock: &Clock,
    who: Principal,
    action: &'static str,
    detail: serde_json::Value,
) {
    let clock = clock.clone();
    let written = store
        .write(move |conn| crate::audit::append(conn, &who, action, None, &detail, clock.now()))
        .await;
    if let Err(error) = written {
        tracing::warn!(
            code = error.code(),
            action,
            "could not write an audit entry"
        );
    }
}

fn seconds_until(until: Instant, now: Instant) -> u64 {
    until.duration_since(now).as_secs_f64().ceil().max(1.0) as u64
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[::1]:80` or `::1`.
fn parse_addr(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// A failure that tells a guesser "no such thing" (or "not a valid one").
fn is_failed_lookup<B>(response: &ServiceResponse<B>) -> bool {
    let Some(error) = response.response().error() else {
        return false;
    };
    // A refusal teaches a guesser as much as a miss: "not your role" (403) and "held by that
    // pharmacy" (409, which names the holder) count too.
    matches!(
        error.as_error::<AppError>(),
        Some(AppError::PrescriptionNotFound)
            | Some(AppError::Forbidden { .. })
            | Some(AppError::HeldByAnotherDispenser { .. })
            | Some(AppError::Invalid {
                code: "invalid-token" | "invalid-prescription-id",
                ..
            })
    )
}

/// Whether a lookup by a caller without a valid bearer token failed: it was refused 401.
fn is_unauthenticated<B>(response: &ServiceResponse<B>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
}

/// The brute-force throttle (see the module docs), wrapped around the lookup routes only (the
/// route table in `api::routes` marks them). Inside it, [`audit_refusals`] has already audited
/// the failure that crosses the limit when it is answered 429 here.
pub async fn throttle<B: MessageBody>(
    guard: web::Data<Guard>,
    req: ServiceRequest,
    next: Next<B>,
) -> GuardResponse<B> {
    let throttle = &guard.throttle;
    if !throttle.enabled() {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let who = crate::auth::authenticate(req.request()).ok();
    let Some(key) = throttle.key(who.as_ref(), throttle.client_addr(&req)) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let keys = [key];
    if let Some((scope, retry_after)) = throttle.blocked(&keys) {
        metrics::counter!("prescrypt_throttled_total", "scope" => scope.as_str()).increment(1);
        return Ok(refuse(req, AppError::TooManyRequests { retry_after }));
    }
    let response = next.call(req).await?;
    let failed = match who {
        Some(_) => is_failed_lookup(&response),
        None => is_unauthenticated(&response),
    };
    if !failed {
        return Ok(response.map_into_left_body());
    }
    let Some((scope, key, retry_after, onset)) = throttle.fail(&keys) else {
        return Ok(response.map_into_left_body());
    };
    metrics::counter!("prescrypt_throttled_total", "scope" => scope.as_str()).increment(1);
    if onset {
        tracing::warn!(
            scope = scope.as_str(),
            org = who.as_ref().map_or("", |who| who.org.as_str()),
            retry_after,
            "failed lookups over the limit; throttling"
        );
        // A caller without a valid token names nobody: its onset is logged and counted, not
        // audited.
        if let Some(who) = who {
            throttle.audit_onset(who, scope, key).await;
        }
    }
    let request = response.request().clone();
    let refused = AppError::TooManyRequests { retry_after };
    Ok(ServiceResponse::from_err(refused, request).map_into_right_body())
}

/// What an audited refusal is: a known caller told "not allowed" (403) or "no such
/// prescription" (404), or turned away because another pharmacy holds it (409).
fn refusal_code<B>(response: &ServiceResponse<B>) -> Option<&'static str> {
    let error = response.response().error()?.as_error::<AppError>()?;
    matches!(
        error,
        AppError::Forbidden { .. }
            | AppError::PrescriptionNotFound
            | AppError::HeldByAnotherDispenser { .. }
    )
    .then(|| error.code())
}

/// Refused accesses by an authenticated caller are audited like granted ones. The handler's
/// transaction rolled back with the refusal, so the entry is a write of its own; it names no
/// prescription (a refusal must not tell the caller, or the chain, which ones exist), only
/// what was asked for. Unauthenticated requests name nobody: they are counted in metrics and
/// the logs, and the throttle bounds how many refusals one organisation can cause.
pub async fn audit_refusals<B: MessageBody>(
    guard: web::Data<Guard>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let who = crate::auth::authenticate(req.request()).ok();
    let response = next.call(req).await?;
    let (Some(who), Some(code)) = (who, refusal_code(&response)) else {
        return Ok(response);
    };
    let request = response.request();
    let asked: String = request
        .match_info()
        .get("id")
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect();
    let detail = json!({
        "method": request.method().as_str(),
        "route": request.match_pattern().unwrap_or_default(),
        "id": asked,
        "refusal": code,
    });
    audit_apart(
        &guard.throttle.store,
        &guard.throttle.clock,
        who,
        "access-refused",
        detail,
    )
    .await;
    Ok(response)
}

/// Headers every response carries: no sniffing, no framing, no referrer, no caching (responses
/// carry patient data), a CSP that allows nothing (the API serves no active content).
/// HSTS is the TLS-terminating proxy's job (SECURITY.md).
const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("cross-origin-resource-policy", "same-origin"),
];

fn add_security_headers(headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}

/// Adds `SECURITY_HEADERS` (unless a handler set its own) to every response, including the
/// errors a middleware answers with (they leave the app as `Err` and are rendered by actix).
pub async fn security_headers<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    match next.call(req).await {
        Ok(mut response) => {
            add_security_headers(response.headers_mut());
            Ok(response)
        }
        Err(error) => Err(WithSecurityHeaders(error).into()),
    }
}

/// An error whose rendering carries the security headers.
#[derive(Debug)]
struct WithSecurityHeaders(Error);

impl std::fmt::Display for WithSecurityHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for WithSecurityHeaders {
    fn status_code(&self) -> StatusCode {
        self.0.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.0.error_response();
        add_security_headers(response.headers_mut());
        response
    }
}

/// Request spans that carry no request data: method, route pattern (never the path, which may
/// hold an ID or a mistyped token), request id, status and error code only.
#[derive(Debug)]
pub struct QuietRootSpan;

impl RootSpanBuilder for QuietRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
            status = tracing::field::Empty,
            code = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("status", status.as_u16());
        if let Some(code) = error
            .and_then(|e| e.as_error::<AppError>())
            .map(AppError::code)
        {
            span.record("code", code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_parse_with_or_without_port() {
        assert_eq!(parse_addr("10.1.2.3"), "10.1.2.3".parse().ok());
        assert_eq!(parse_addr("10.1.2.3:4567"), "10.1.2.3".parse().ok());
        assert_eq!(parse_addr("[::1]:80"), "::1".parse().ok());
        assert_eq!(parse_addr("unknown"), None);
    }

    #[test]
    fn a_zero_limit_is_off() {
        assert!(limiter(0, Duration::from_secs(60)).is_none());
        let limiter = limiter(3, Duration::from_secs(60)).unwrap();
        let key = "FA565".to_owned();
        for _ in 0..3 {
            assert!(limiter.check_key(&key).is_ok());
        }
        assert!(limiter.check_key(&key).is_err());
        assert!(limiter.check_key(&"FCG71".to_owned()).is_ok());
    }
}
