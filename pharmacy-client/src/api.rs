//! The central service's HTTP API (`/api/v1`, see `docs/api.md`), blocking, with timeouts.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::{Events, NominatedBatch, Prescription};

/// The service's `application/problem+json` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub holder: Option<String>,
    /// The `Retry-After` header of a 429/503, in seconds: the centre's own word on when to retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    fn from_response(status: StatusCode, body: &str) -> Self {
        let mut problem: Self = serde_json::from_str(body).unwrap_or_else(|_| Self {
            detail: (!body.trim().is_empty()).then(|| body.trim().chars().take(300).collect()),
            ..Self::default()
        });
        problem.status = status.as_u16();
        if problem.title.is_none() {
            problem.title = status.canonical_reason().map(str::to_owned);
        }
        problem
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title.as_deref().unwrap_or("refused"))?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(holder) = &self.holder {
            write!(f, " (held by {holder})")?;
        }
        if let Some(field) = &self.field {
            write!(f, " [field {field}]")?;
        }
        write!(f, " (HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, ", {code}")?;
        }
        f.write_str(")")
    }
}

/// How a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No answer: connection refused, DNS, timeout.
    Unreachable(String),
    /// The service answered but could not process it now (5xx, 408, 429, 401): worth retrying.
    Transient(Box<Problem>),
    /// A final refusal (other 4xx).
    Refused(Box<Problem>),
    /// A 2xx answer that is not what the contract says.
    Unexpected(String),
}

impl ApiError {
    /// Worth sending the same request again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Transient(_))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(reason) => write!(f, "centre unreachable: {reason}"),
            Self::Transient(problem) | Self::Refused(problem) => problem.fmt(f),
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

    fn api_url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server)
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
            let mut problem = Problem::from_response(status, &body);
            problem.retry_after = retry_after;
            Err(ApiError::Transient(Box::new(problem)))
        } else {
            Err(ApiError::Refused(Box::new(Problem::from_response(
                status, &body,
            ))))
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ApiError> {
        serde_json::from_str(body).map_err(|e| ApiError::Unexpected(e.to_string()))
    }

    pub fn get(&self, path: &str) -> Result<String, ApiError> {
        Self::run(self.authorised(self.http.get(self.api_url(path))))
    }

    /// POSTs JSON with an optional `Idempotency-Key`; returns the response body.
    pub fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<String, ApiError> {
        let mut request = self.authorised(self.http.post(self.api_url(path)).json(body));
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        Self::run(request)
    }

    /// Releases one prescription by token text or (nominated only) bare prescription ID.
    pub fn release(&self, code: &str) -> Result<Prescription, ApiError> {
        Self::parse(&self.post("/release", &json!({ "token": code }), None)?)
    }

    pub fn release_nominated(&self) -> Result<NominatedBatch, ApiError> {
        Self::parse(&self.post("/release/nominated", &json!({}), None)?)
    }

    pub fn prescription(&self, id: &str) -> Result<Prescription, ApiError> {
        Self::parse(&self.get(&format!("/prescriptions/{id}"))?)
    }

    pub fn history(&self, id: &str) -> Result<Events, ApiError> {
        Self::parse(&self.get(&format!("/prescriptions/{id}/history"))?)
    }

    /// The service's published signing keys (no authentication).
    pub fn jwks(&self) -> Result<(JwkSet, String), ApiError> {
        let body = Self::run(
            self.http
                .get(format!("{}/.well-known/jwks.json", self.server)),
        )?;
        Ok((Self::parse(&body)?, body))
    }

    /// Cheap connectivity probe for the counter screen.
    pub fn is_reachable(&self) -> bool {
        Self::run(self.http.get(format!("{}/healthz", self.server))).is_ok()
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
        let body = r#"{"status":503,"code":"overloaded","title":"Service overloaded"}"#;
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n\
             Content-Type: application/problem+json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let api = Api::new(&answering(response), None, Duration::from_secs(5)).unwrap();
        match api.get("/api/v1/prescriptions/x") {
            Err(ApiError::Transient(problem)) => {
                assert_eq!(problem.status, 503);
                assert_eq!(problem.code.as_deref(), Some("overloaded"));
                assert_eq!(problem.retry_after, Some(7));
            }
            other => panic!("expected a transient error, got {other:?}"),
        }
    }
}
