//! Load generator for the Prescrypt service (a benchmark, not a test).
//!
//! Starts the service in-process on loopback with a fresh SQLite database (or targets
//! `--url http://127.0.0.1:PORT` with `--keys-dir` of that server), then drives it with N
//! concurrent HTTP clients for a fixed time: first creates only, then full lifecycles
//! (create → release → dispense). It also measures the ceilings on this machine in the same run:
//! single-thread Ed25519 signing and bare SQLite commits with `synchronous=FULL`.
//!
//! `cargo run --release -p prescrypt --example loadgen -- --clients 64 --seconds 10`
//!
//! With `--journal FILE` it is the load of the crash-consistency test (`tests/crash`,
//! docs/crash-consistency.md) instead: lifecycles only, an `Idempotency-Key` on every request,
//! one JSON line per request outcome appended to FILE, and a client that outlives the server —
//! after a connection error, timeout, 5xx or 429 it retries its pending operation with the SAME
//! key, as a real client would.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use ed25519_dalek::{Signer, SigningKey};
use prescrypt::auth::Role;
use prescrypt_testkit::{PHARMACIST, PRESCRIBER, PRESCRIBER_ORG, TestApp, dev_token_lasting};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// A running server on loopback; by default one is started in-process.
    #[arg(long)]
    url: Option<String>,
    /// The keys directory of the server at `--url` (to mint bearer tokens).
    #[arg(long)]
    keys_dir: Option<PathBuf>,
    /// Prescribing practices the clients are spread over (client n uses practice n mod this).
    #[arg(long, default_value_t = 1)]
    practices: usize,
    /// HTTP workers of the in-process server.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Crash-test mode: append one JSON line per request outcome to this file (idempotency
    /// key, operation, prescription id, status, SHA-256 of the response body), retry failed
    /// requests with the same key; skips the ceilings and the creates-only phase.
    #[arg(long)]
    journal: Option<PathBuf>,
    /// Also stop when stdin reaches end of file (crash-test mode; lets a test stop the load).
    #[arg(long, requires = "journal")]
    until_eof: bool,
}

#[derive(Default)]
struct Tally {
    completed: u64,
    failed: u64,
    latencies: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The pharmacies of the lifecycle load; client N dispenses as `PHARMACY_ORGS[N % 4]`.
const PHARMACY_ORGS: [&str; 4] = ["FA565", "FCG71", "FX001", "FX002"];

struct Target {
    base: String,
    client: reqwest::Client,
    prescriber: String,
    /// One bearer token per practice of `--practices` (the first is `prescriber`'s).
    practices: Vec<String>,
    pharmacists: Vec<String>,
}

impl Target {
    /// Client `n`'s practice: creates serialise per practice on its ID sequence row, so
    /// a realistic load spreads clients over practices as GP systems are.
    fn practice(&self, client_no: usize) -> &str {
        &self.practices[client_no % self.practices.len()]
    }
}

async fn timed(request: reqwest::RequestBuilder, tally: &mut Tally, expect: u16) -> Option<Value> {
    let started = Instant::now();
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let value: Option<Value> = response.json().await.ok();
    tally.latencies.push(started.elapsed());
    if status == expect {
        value
    } else {
        tally.failed += 1;
        None
    }
}

async fn creates(target: Arc<Target>, client_no: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let body = prescrypt_testkit::new_prescription();
    while Instant::now() < deadline {
        let request = target
            .client
            .post(format!("{}/api/v1/prescriptions", target.base))
            .bearer_auth(target.practice(client_no))
            .json(&body);
        if timed(request, &mut tally, 201).await.is_some() {
            tally.completed += 1;
        }
    }
    tally
}

async fn lifecycles(target: Arc<Target>, client_no: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let body = prescrypt_testkit::new_prescription();
    let pharmacist = &target.pharmacists[client_no % target.pharmacists.len()];
    let dispense =
        json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]});
    while Instant::now() < deadline {
        let create = target
            .client
            .post(format!("{}/api/v1/prescriptions", target.base))
            .bearer_auth(target.practice(client_no))
            .json(&body);
        let Some(created) = timed(create, &mut tally, 201).await else {
            continue;
        };
        let (Some(id), Some(token)) = (created["id"].as_str(), created["token"].as_str()) else {
            continue;
        };
        let release = target
            .client
            .post(format!("{}/api/v1/release", target.base))
            .bearer_auth(pharmacist)
            .json(&json!({"token": token}));
        if timed(release, &mut tally, 200).await.is_none() {
            continue;
        }
        let dispensed = target
            .client
            .post(format!(
                "{}/api/v1/prescriptions/{id}/dispense",
                target.base
            ))
            .bearer_auth(pharmacist)
            // Keyed by the prescription: unique across load generators sharing one organisation.
            .header("Idempotency-Key", format!("lg-dispense-{id}"))
            .json(&dispense);
        if timed(dispensed, &mut tally, 200).await.is_some() {
            tally.completed += 1;
        }
    }
    tally
}

async fn phase<F, Fut>(
    name: &str,
    clients: usize,
    seconds: u64,
    target: &Arc<Target>,
    run: F,
) -> (f64, Tally)
where
    F: Fn(Arc<Target>, usize, Instant) -> Fut,
    Fut: std::future::Future<Output = Tally> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(run(target.clone(), c, deadline)))
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        if let Ok(t) = task.await {
            total.completed += t.completed;
            total.failed += t.failed;
            total.latencies.extend(t.latencies);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let rate = total.completed as f64 / elapsed;
    println!(
        "{name:<11} {rate:>9.0}/s  requests {:>7}  failed {:>4}  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        total.latencies.len(),
        total.failed,
        percentile(&total.latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&total.latencies, 0.99).as_secs_f64() * 1e3,
        total
            .latencies
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3,
    );
    (rate, total)
}

fn sign_rate(seconds: f64) -> f64 {
    let key = SigningKey::from_bytes(&[42; 32]);
    let message = [7u8; 400];
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        for _ in 0..100 {
            std::hint::black_box(key.sign(std::hint::black_box(&message)));
        }
        count += 100;
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = count as f64 / started.elapsed().as_secs_f64();
    rate
}

fn sqlite_commit_rate(dir: &std::path::Path, seconds: f64) -> anyhow::Result<f64> {
    let path = dir.join("ceiling.db");
    let mut conn = SqliteConnection::establish(&path.display().to_string())?;
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);",
    )?;
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        conn.batch_execute("BEGIN IMMEDIATE; INSERT INTO t (payload) VALUES ('x'); COMMIT;")?;
        count += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = count as f64 / started.elapsed().as_secs_f64();
    Ok(rate)
}

fn is_loopback(url: &str) -> bool {
    ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|prefix| url.starts_with(prefix))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    if args.journal.is_none() {
        println!("ceilings (same machine, same run):");
        println!("  ed25519 sign, 1 thread      {:>9.0}/s", sign_rate(2.0));
        println!(
            "  sqlite commit, sync=FULL    {:>9.0}/s  (one row per transaction, WAL)",
            sqlite_commit_rate(scratch.path(), 2.0)?
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The in-process service (the test kit's, on SQLite), unless `--url` names one.
        let mut in_process = None;
        let (base, keys_dir) = match (&args.url, &args.keys_dir) {
            (Some(url), Some(keys)) => {
                anyhow::ensure!(is_loopback(url), "the load generator only targets loopback");
                (url.trim_end_matches('/').to_owned(), keys.clone())
            }
            (Some(_), None) => anyhow::bail!("--url needs --keys-dir of that server"),
            _ => {
                let app = in_process.insert(
                    TestApp::builder()
                        .database_url(scratch.path().join("prescrypt.db").display().to_string())
                        .keys_dir(scratch.path().join("keys"))
                        .flags(["--workers".to_owned(), args.workers.to_string()])
                        .spawn()
                        .await,
                );
                (app.address.clone(), app.keys_dir())
            }
        };
        let ttl = chrono::Duration::hours(if args.journal.is_some() { 12 } else { 1 });
        let mint = |role, org: &str, sub| dev_token_lasting(&keys_dir, role, org, sub, ttl);
        let mut client = reqwest::Client::builder().pool_max_idle_per_host(args.clients);
        if args.journal.is_some() {
            client = client.timeout(Duration::from_secs(10));
        }
        let target = Arc::new(Target {
            base,
            client: client.build()?,
            prescriber: mint(Role::Prescriber, PRESCRIBER_ORG, PRESCRIBER),
            practices: std::iter::once(PRESCRIBER_ORG.to_owned())
                .chain((1..args.practices.max(1)).map(|n| format!("A8{n:04}")))
                .map(|org| mint(Role::Prescriber, &org, PRESCRIBER))
                .collect(),
            pharmacists: PHARMACY_ORGS
                .iter()
                .map(|org| mint(Role::Pharmacist, org, PHARMACIST))
                .collect(),
        });
        if let Some(path) = &args.journal {
            return crash::run(&target, path, args.clients, args.seconds, args.until_eof).await;
        }
        println!(
            "service at {} ({} clients, {} s per phase, SQLite synchronous=FULL, group commit):",
            target.base, args.clients, args.seconds
        );
        phase("creates", args.clients, args.seconds, &target, |t, c, d| {
            creates(t, c, d)
        })
        .await;
        phase(
            "lifecycles",
            args.clients,
            args.seconds,
            &target,
            lifecycles,
        )
        .await;
        Ok(())
    })
}

/// Crash-test mode (`--journal`): lifecycles whose every request carries an idempotency key and
/// is retried with that same key until it gets an answer, each outcome journaled.
mod crash {
    use std::io::Write;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use serde::Serialize;
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};

    use prescrypt_testkit::{PRESCRIBER_ORG, new_prescription};

    use super::{PHARMACY_ORGS, Target};

    /// One line of the journal.
    #[derive(Debug, Serialize)]
    struct Line<'a> {
        /// Milliseconds since the load began.
        at_ms: u128,
        client: usize,
        org: &'a str,
        key: &'a str,
        op: &'a str,
        /// Deliberate second send of a request that already got its 2xx.
        replay: bool,
        id: Option<&'a str>,
        status: Option<u16>,
        /// SHA-256 (hex) of the response body, when a whole body arrived.
        digest: Option<String>,
        /// The service said `Idempotency-Replayed: true`.
        replayed: bool,
        error: Option<String>,
    }

    struct Journal {
        file: Mutex<std::fs::File>,
        started: Instant,
    }

    impl Journal {
        /// Appends one line with a single write (O_APPEND), so a crash of the load generator
        /// itself can cut at most the last line.
        fn append(&self, line: &Line<'_>) {
            let Ok(mut text) = serde_json::to_string(line) else {
                return;
            };
            text.push('\n');
            let mut file = self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Err(error) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
                eprintln!("journal write failed: {error}");
            }
        }
    }

    /// A request to make (again): the same method, path, token, key and body every time.
    struct Request<'a> {
        op: &'static str,
        org: &'a str,
        token: &'a str,
        path: String,
        key: String,
        body: Value,
        id: Option<String>,
    }

    struct Client {
        target: Arc<Target>,
        journal: Arc<Journal>,
        stop: Arc<AtomicBool>,
        deadline: Instant,
        number: usize,
    }

    enum Answer {
        /// A 2xx with its whole body.
        Success(Value),
        /// A final refusal (4xx other than 408/429): the lifecycle is abandoned.
        Refused,
        /// Stopped before any 2xx.
        Stopped,
    }

    impl Client {
        fn stopping(&self) -> bool {
            self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline
        }

        /// Sends once and journals the outcome; `Some(status, body)` when a whole answer came.
        async fn send_once(&self, request: &Request<'_>, replay: bool) -> Option<(u16, String)> {
            let outcome = async {
                let response = self
                    .target
                    .client
                    .post(format!("{}{}", self.target.base, request.path))
                    .bearer_auth(request.token)
                    .header("Idempotency-Key", &request.key)
                    .json(&request.body)
                    .send()
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                let status = response.status().as_u16();
                let replayed = response.headers().contains_key("Idempotency-Replayed");
                let text = response
                    .text()
                    .await
                    .map_err(|e| format!("body of a {status}: {e}"))?;
                Ok::<_, String>((status, replayed, text))
            }
            .await;
            let (status, replayed, text, error) = match outcome {
                Ok((status, replayed, text)) => (Some(status), replayed, Some(text), None),
                Err(error) => (None, false, None, Some(error)),
            };
            let created_id = match (request.id.as_deref(), &text) {
                (None, Some(text)) if status.is_some_and(|s| (200..300).contains(&s)) => {
                    serde_json::from_str::<Value>(text)
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_owned))
                }
                _ => None,
            };
            self.journal.append(&Line {
                at_ms: self.journal.started.elapsed().as_millis(),
                client: self.number,
                org: request.org,
                key: &request.key,
                op: request.op,
                replay,
                id: request.id.as_deref().or(created_id.as_deref()),
                status,
                digest: text
                    .as_ref()
                    .map(|t| data_encoding::HEXLOWER.encode(&Sha256::digest(t.as_bytes()))),
                replayed,
                error,
            });
            status.zip(text)
        }

        /// Sends until a 2xx or a final refusal, always with the request's own key.
        async fn until_answered(&self, request: &Request<'_>) -> Answer {
            let mut pause = Duration::from_millis(20);
            loop {
                if self.stopping() {
                    return Answer::Stopped;
                }
                match self.send_once(request, false).await {
                    Some((status, text)) if (200..300).contains(&status) => {
                        return match serde_json::from_str(&text) {
                            Ok(value) => Answer::Success(value),
                            Err(_) => Answer::Refused,
                        };
                    }
                    Some((status, _))
                        if (400..500).contains(&status) && status != 408 && status != 429 =>
                    {
                        return Answer::Refused;
                    }
                    _ => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                }
            }
        }

        /// One operation of a lifecycle; every third lifecycle also replays each acknowledged
        /// request once, so replays are checked without a crash too.
        async fn operation(&self, request: &Request<'_>, replay_after: bool) -> Option<Value> {
            match self.until_answered(request).await {
                Answer::Success(value) => {
                    if replay_after {
                        self.send_once(request, true).await;
                    }
                    Some(value)
                }
                Answer::Refused | Answer::Stopped => None,
            }
        }

        async fn run(self, nonce: String) {
            let org = PHARMACY_ORGS[self.number % PHARMACY_ORGS.len()];
            let pharmacist = &self.target.pharmacists[self.number % self.target.pharmacists.len()];
            let dispense = json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]});
            let mut n = 0u64;
            while !self.stopping() {
                n += 1;
                let key = |op: &str| format!("crash-{nonce}-{}-{n}-{op}", self.number);
                let replay_after = n % 3 == 0;
                let create = Request {
                    op: "create",
                    org: PRESCRIBER_ORG,
                    token: &self.target.prescriber,
                    path: "/api/v1/prescriptions".into(),
                    key: key("create"),
                    body: new_prescription(),
                    id: None,
                };
                let Some(created) = self.operation(&create, replay_after).await else {
                    continue;
                };
                let (Some(id), Some(token)) = (created["id"].as_str(), created["token"].as_str())
                else {
                    continue;
                };
                let release = Request {
                    op: "release",
                    org,
                    token: pharmacist,
                    path: "/api/v1/release".into(),
                    key: key("release"),
                    body: json!({"token": token}),
                    id: Some(id.to_owned()),
                };
                if self.operation(&release, replay_after).await.is_none() {
                    continue;
                }
                let dispensed = Request {
                    op: "dispense",
                    org,
                    token: pharmacist,
                    path: format!("/api/v1/prescriptions/{id}/dispense"),
                    key: key("dispense"),
                    body: dispense.clone(),
                    id: Some(id.to_owned()),
                };
                self.operation(&dispensed, replay_after).await;
            }
        }
    }

    pub async fn run(
        target: &Arc<Target>,
        path: &Path,
        clients: usize,
        seconds: u64,
        until_eof: bool,
    ) -> anyhow::Result<()> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let journal = Arc::new(Journal {
            file: Mutex::new(file),
            started: Instant::now(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        if until_eof {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let _eof_or_error =
                    std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                stop.store(true, Ordering::Relaxed);
            });
        }
        let nonce = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        println!(
            "crash-test load on {} ({clients} clients, journal {}, run {nonce})",
            target.base,
            path.display()
        );
        let tasks: Vec<_> = (0..clients)
            .map(|number| {
                let client = Client {
                    target: target.clone(),
                    journal: journal.clone(),
                    stop: stop.clone(),
                    deadline,
                    number,
                };
                tokio::spawn(client.run(nonce.clone()))
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        println!(
            "crash-test load stopped after {:.1} s",
            journal.started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
