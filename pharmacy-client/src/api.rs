//! The central service's HTTP API (`/api/v1`, see `docs/api.md`), blocking, with timeouts.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use prescrypt_contract::limits::IDEMPOTENCY_KEY_HEADER;
use prescrypt_contract::routes::{self, API_PREFIX};
use prescrypt_contract::views::{
    History, NominatedRelease, PrescriberKeySet, PrescriptionView, ReceiptView, ReleaseRequest,
    SearchPage,
};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

pub use prescrypt_contract::Problem;

use crate::terminal::safe;

/// The centre's problem details from an error answer. A body that is not one (a proxy's HTML page,
/// an empty 503 from a load balancer) still becomes a [`Problem`], built from the status line, so
/// every refusal reads and is stored the same way.
pub fn problem_from_response(status: StatusCode, body: &str) -> Problem {
    match serde_json::from_str::<Problem>(body) {
        Ok(mut problem) => {
            problem.status = status.as_u16();
            problem
        }
        Err(_) => plain_problem(
            status.as_u16(),
            status.canonical_reason().unwrap_or("refused"),
            &body.trim().chars().take(300).collect::<String>(),
        ),
    }
}

/// A [`Problem`] with no code, for an answer (or a stored one) that carried none.
pub fn plain_problem(status: u16, title: &str, detail: &str) -> Problem {
    Problem {
        problem_type: "about:blank".to_owned(),
        title: title.to_owned(),
        status,
        code: String::new(),
        detail: detail.to_owned(),
        field: None,
        holder: None,
    }
}

/// A problem as one line for the pharmacist: title, detail, holder, field, status and code, each
/// made [`safe`] to print.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a Problem);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problem = self.0;
        f.write_str(&safe(&problem.title))?;
        if !problem.detail.is_empty() {
            write!(f, ": {}", safe(&problem.detail))?;
        }
        if let Some(holder) = &problem.holder {
            write!(f, " (held by {})", safe(holder))?;
        }
        if let Some(field) = &problem.field {
            write!(f, " [field {}]", safe(field))?;
        }
        write!(f, " (HTTP {}", problem.status)?;
        if !problem.code.is_empty() {
            write!(f, ", {}", safe(&problem.code))?;
        }
        f.write_str(")")
    }
}

/// How a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No answer: connection refused, DNS, timeout.
    Unreachable(String),
    /// The service answered but could not process it now (5xx, 408, 429, 401): worth retrying,
    /// not before `retry_after` seconds when the centre said so (`Retry-After` of a 429/503).
    Transient {
        problem: Box<Problem>,
        retry_after: Option<u64>,
    },
    /// A final refusal (other 4xx).
    Refused(Box<Problem>),
    /// A 2xx answer that is not what the contract says.
    Unexpected(String),
}

impl ApiError {
    /// Worth sending the same request again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Transient { .. })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(reason) => write!(f, "centre unreachable: {reason}"),
            Self::Transient { problem, .. } | Self::Refused(problem) => Shown(problem).fmt(f),
            Self::Unexpected(reason) => write!(f, "unexpected answer: {reason}"),
        }
    }
}

/// Classifies an HTTP status the way the outbox needs it.
pub fn is_transient_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        // An expired login must not turn days of queued dispensing into failures: keep it queued.
        || status == StatusCode::UNAUTHORIZED
}

#[derive(Debug, Clone)]
pub struct Api {
    http: Client,
    server: String,
    token: Option<String>,
}

impl Api {
    /// Fails only if the TLS backend cannot be set up.
    pub fn new(
        server: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .user_agent(concat!("prescrypt-pharmacy/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            server: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// `route` is a full path, as `prescrypt_contract::routes` gives it.
    fn url(&self, route: &str) -> String {
        format!("{}{route}", self.server)
    }

    fn authorised(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn run(request: RequestBuilder) -> Result<String, ApiError> {
        let response = request
            .send()
            .map_err(|e| ApiError::Unreachable(describe_transport(&e)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|seconds| seconds.trim().parse::<u64>().ok());
        let body = response
            .text()
            .map_err(|e| ApiError::Unreachable(describe_transport(&e)))?;
        if status.is_success() {
            Ok(body)
        } else if is_transient_status(status) {
            Err(ApiError::Transient {
                problem: Box::new(problem_from_response(status, &body)),
                retry_after,
            })
        } else {
            Err(ApiError::Refused(Box::new(problem_from_response(
                status, &body,
            ))))
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ApiError> {
        serde_json::from_str(body).map_err(|e| ApiError::Unexpected(e.to_string()))
    }

    /// GETs `route` (a full path from `prescrypt_contract::routes`).
    pub fn get_route(&self, route: &str) -> Result<String, ApiError> {
        Self::run(self.authorised(self.http.get(self.url(route))))
    }

    /// POSTs JSON to `route` with an optional `Idempotency-Key`; returns the response body.
    pub fn post_route(
        &self,
        route: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<String, ApiError> {
        let mut request = self.authorised(self.http.post(self.url(route)).json(body));
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        Self::run(request)
    }

    /// GETs `path` under the API prefix (`/prescriptions/…`), for tests and tools.
    pub fn get(&self, path: &str) -> Result<String, ApiError> {
        self.get_route(&format!("{API_PREFIX}{path}"))
    }

    /// POSTs JSON to `path` under the API prefix, like [`post_route`](Self::post_route).
    pub fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<String, ApiError> {
        self.post_route(&format!("{API_PREFIX}{path}"), body, idempotency_key)
    }

    /// Releases one prescription by token text or (nominated only) bare prescription ID.
    pub fn release(&self, code: &str) -> Result<PrescriptionView, ApiError> {
        let request = ReleaseRequest {
            token: code.to_owned(),
        };
        Self::parse(&self.post_route(routes::RELEASE, &json!(request), None)?)
    }

    /// One nominated batch. The same `idempotency_key` again answers the same batch, so a batch
    /// whose answer was lost is sent again with its key, never as a new batch.
    pub fn release_nominated(&self, idempotency_key: &str) -> Result<NominatedRelease, ApiError> {
        Self::parse(&self.post_route(
            routes::RELEASE_NOMINATED,
            &json!({}),
            Some(idempotency_key),
        )?)
    }

    pub fn prescription(&self, id: &str) -> Result<PrescriptionView, ApiError> {
        Self::parse(&self.get_route(&routes::prescription(id))?)
    }

    /// One page of the tracker search (`GET /api/v1/prescriptions`) with these query
    /// parameters (name, value).
    pub fn search(&self, query: &[(&str, &str)]) -> Result<SearchPage, ApiError> {
        let url = reqwest::Url::parse_with_params(&self.url(routes::PRESCRIPTIONS), query)
            .map_err(|e| ApiError::Unexpected(format!("the search URL: {e}")))?;
        Self::parse(&Self::run(self.authorised(self.http.get(url)))?)
    }

    pub fn receipt(&self, id: &str) -> Result<ReceiptView, ApiError> {
        Self::parse(&self.get_route(&routes::receipt(id))?)
    }

    pub fn history(&self, id: &str) -> Result<History, ApiError> {
        Self::parse(&self.get_route(&routes::history(id))?)
    }

    /// The service's published signing keys (no authentication).
    pub fn jwks(&self) -> Result<(JwkSet, String), ApiError> {
        let body = Self::run(self.http.get(self.url(routes::JWKS)))?;
        Ok((Self::parse(&body)?, body))
    }

    /// Every prescriber's public keys, revoked ones included (any authenticated role).
    pub fn prescriber_keys(&self) -> Result<(PrescriberKeySet, String), ApiError> {
        let body = self.get_route(routes::PRESCRIBER_KEYS_JWKS)?;
        Ok((Self::parse(&body)?, body))
    }

    /// Cheap connectivity probe for the counter screen.
    pub fn is_reachable(&self) -> bool {
        Self::run(self.http.get(self.url(routes::HEALTHZ))).is_ok()
    }
}

fn describe_transport(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer within the timeout".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A one-request HTTP server on loopback that answers with `response` verbatim.
    fn answering(response: String) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0_u8; 4096];
            let _ = stream.read(&mut request);
            stream.write_all(response.as_bytes()).unwrap();
        });
        address
    }

    #[test]
    fn an_overloaded_centre_is_transient_and_its_retry_after_is_kept() {
        let body = r#"{"type":"about:blank","status":503,"code":"overloaded","title":"Service overloaded","detail":"try later"}"#;
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n\
             Content-Type: application/problem+json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let api = Api::new(&answering(response), None, Duration::from_secs(5)).unwrap();
        match api.get("/api/v1/prescriptions/x") {
            Err(ApiError::Transient {
                problem,
                retry_after,
            }) => {
                assert_eq!(problem.status, 503);
                assert_eq!(problem.code, "overloaded");
                assert_eq!(retry_after, Some(7));
            }
            other => panic!("expected a transient error, got {other:?}"),
        }
    }

    #[test]
    fn an_answer_that_is_not_problem_details_still_reads_as_one() {
        let problem = problem_from_response(StatusCode::BAD_GATEWAY, "<html>Bad gateway</html>\n");
        assert_eq!(problem.status, 502);
        assert_eq!(problem.title, "Bad Gateway");
        assert_eq!(problem.detail, "<html>Bad gateway</html>");
        assert_eq!(
            Shown(&problem).to_string(),
            "Bad Gateway: <html>Bad gateway</html> (HTTP 502)"
        );
    }

    #[test]
    fn a_problem_is_shown_inert() {
        let mut problem =
            plain_problem(409, "Conflict\u{1b}[2J", "held by \u{202E}71GCF\u{1b}[31m");
        problem.holder = Some("FCG71\u{2028}".into());
        problem.field = Some("x\u{9b}".into());
        let shown = Shown(&problem).to_string();
        assert!(!crate::render::acts_on_a_terminal(&shown), "{shown:?}");
        assert!(shown.contains("Conflict\\u{1b}[2J"), "{shown}");
    }
}
