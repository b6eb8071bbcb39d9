//! `prescrypt serve` as a real process (the built binary), talking HTTP on loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prescrypt::auth::{self, Role};
use reqwest::StatusCode;
use serde_json::Value;

/// One running server process; killed when dropped.
#[derive(Debug)]
pub struct Instance {
    child: Child,
    pub address: String,
    pub log: PathBuf,
    pub client: reqwest::Client,
}

impl Instance {
    /// Starts `prescrypt serve --bind 127.0.0.1:0` and waits for its `listening on` line.
    pub fn start(name: &str, database_url: &str, keys_dir: &Path, extra: &[&str]) -> Self {
        let log = keys_dir
            .parent()
            .unwrap_or(keys_dir)
            .join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_prescrypt"))
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .arg("--keys-dir")
            .arg(keys_dir)
            .args(["--sweep-interval", "1h", "--workers", "2"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn prescrypt serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        let Some(address) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
            let _ = child.kill();
            panic!(
                "{name} did not start: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Self {
            child,
            address,
            log,
            client: reqwest::Client::builder()
                // A fresh connection per request: a pooled keep-alive connection the server is
                // closing at that moment would fail the request with a reset, not an answer.
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, bearer: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("request");
        read(response).await.0
    }

    /// POST with an optional Idempotency-Key; also says whether the answer was a replay.
    pub async fn post(
        &self,
        path: &str,
        bearer: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> ((StatusCode, Value), bool) {
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
            .unwrap_or_else(|e| panic!("{path}: {e}\n{}", self.log_tail()));
        read(response).await
    }

    /// The last lines the server logged (for failure messages).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The value of a Prometheus counter summed over the series whose labels contain `labels`.
    pub async fn counter(&self, name: &str, labels: &str) -> f64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|line| line.starts_with(name) && line.contains(labels))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn kill(&mut self) {
        let _already_gone = self.child.kill();
        let _reaped = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn read(response: reqwest::Response) -> ((StatusCode, Value), bool) {
    let status = response.status();
    let replayed = response.headers().contains_key("Idempotency-Replayed");
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    ((status, value), replayed)
}

/// A bearer token from the development issuer whose key lives in `keys_dir`.
pub fn token(keys_dir: &Path, role: Role, org: &str, sub: &str) -> String {
    let issuer = prescrypt::keys::dev_issuer(keys_dir).expect("issuer key");
    auth::mint(&issuer, role, org, sub, chrono::Duration::hours(1)).expect("mint")
}

/// `prescrypt audit verify` against `database_url`: (success, stdout).
pub fn audit_verify(database_url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prescrypt"))
        .args(["audit", "verify", "--database-url", database_url])
        .output()
        .expect("run prescrypt audit verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub fn new_prescription(nominated: Option<&str>) -> Value {
    serde_json::json!({
        "patient": {"nhs_number": "9434765919", "name": "Jane Smith", "birth_date": "1970-01-31"},
        "items": [
            {"code": "39720311000001101", "display": "Paracetamol 500mg tablets", "quantity": 32,
             "unit": "tablet", "dosage": "2 four times a day"},
            {"code": "39113611000001102", "display": "Amoxicillin 500mg capsules", "quantity": 21,
             "unit": "capsule", "dosage": "1 three times a day"}
        ],
        "nominated_pharmacy": nominated,
    })
}
