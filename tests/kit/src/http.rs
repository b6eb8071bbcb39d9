//! JSON over HTTP to a running service.

use reqwest::StatusCode;
use serde_json::Value;

/// A service's base address (`http://127.0.0.1:PORT`) and the client that talks to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub address: String,
    pub client: reqwest::Client,
    /// The metrics listener's base address (`serve --metrics-listen`), if it has one.
    pub metrics_address: Option<String>,
}

/// An answer: status, body (JSON, or the text as a JSON string) and whether the service said
/// it replayed a stored answer (`Idempotency-Replayed`).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
}

impl Endpoint {
    pub fn new(address: impl Into<String>, client: reqwest::Client) -> Self {
        Self {
            address: address.into(),
            client,
            metrics_address: None,
        }
    }

    /// The same endpoint, whose `/metrics` is served at `address` (`serve --metrics-listen`).
    #[must_use]
    pub fn with_metrics(mut self, address: Option<String>) -> Self {
        self.metrics_address = address;
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, bearer: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        read(response).await
    }

    pub async fn post(&self, path: &str, bearer: &str, body: &Value) -> (StatusCode, Value) {
        self.post_with(path, bearer, body, None).await
    }

    /// POST with an optional `Idempotency-Key`.
    pub async fn post_with(
        &self,
        path: &str,
        bearer: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let reply = self.post_keyed(path, bearer, body, idempotency_key).await;
        (reply.status, reply.body)
    }

    /// POST with an optional `Idempotency-Key`; the [`Reply`] says whether it was a replay.
    pub async fn post_keyed(
        &self,
        path: &str,
        bearer: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut request = self
            .client
            .post(self.url(path))
            .bearer_auth(bearer)
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let replayed = response.headers().contains_key("Idempotency-Replayed");
        let (status, body) = read(response).await;
        Reply {
            status,
            body,
            replayed,
        }
    }

    /// The served OpenAPI document.
    pub async fn openapi_document(&self) -> Value {
        let response = self
            .client
            .get(self.url("/api/v1/openapi.json"))
            .send()
            .await
            .expect("GET the OpenAPI document");
        response.json().await.expect("the OpenAPI document is JSON")
    }

    /// The Prometheus text of `/metrics` on the metrics listener.
    pub async fn metrics_text(&self) -> String {
        let address = self
            .metrics_address
            .as_deref()
            .expect("a service started with --metrics-listen");
        let response = self
            .client
            .get(format!("{address}/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        response.text().await.expect("the metrics text")
    }

    /// The value of one series on `/metrics`, e.g. `prescrypt_shed_total{reason="in-flight"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics_text().await;
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("{series} in {text}"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{series}: {e}"))
    }

    /// The sum of metric `name` over the series whose labels contain `labels`.
    pub async fn metric_sum(&self, name: &str, labels: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .filter(|line| line.starts_with(name) && line.contains(labels))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Status and body of an answer; a body that is not JSON comes back as a JSON string.
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("the response body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}
