//! Load generator for the Prescrypt service (a benchmark, not a test).
//!
//! Starts the service in-process on loopback with a fresh SQLite database (or targets
//! `--url http://127.0.0.1:PORT` with `--keys-dir` of that server), then drives it with N
//! concurrent HTTP clients for a fixed time: first creates only, then full lifecycles
//! (create → release → dispense). It also measures the ceilings on this machine in the same run:
//! single-thread Ed25519 signing and bare SQLite commits with `synchronous=FULL`.
//!
//! `cargo run --release -p prescrypt --example loadgen -- --clients 64 --seconds 10`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use ed25519_dalek::{Signer, SigningKey};
use prescrypt::auth::{self, Role};
use prescrypt::config::ServeConfig;
use prescrypt::startup::Application;
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
    /// HTTP workers of the in-process server.
    #[arg(long, default_value_t = 2)]
    workers: usize,
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

fn body() -> Value {
    json!({
        "patient": {"nhs_number": "9434765919", "name": "Jane Smith", "birth_date": "1970-01-31"},
        "items": [
            {"code": "39720311000001101", "display": "Paracetamol 500mg tablets", "quantity": 32,
             "unit": "tablet", "dosage": "2 four times a day"},
            {"code": "39113611000001102", "display": "Amoxicillin 500mg capsules", "quantity": 21,
             "unit": "capsule", "dosage": "1 three times a day"}
        ]
    })
}

struct Target {
    base: String,
    client: reqwest::Client,
    prescriber: String,
    pharmacists: Vec<String>,
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

async fn creates(target: Arc<Target>, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let body = body();
    while Instant::now() < deadline {
        let request = target
            .client
            .post(format!("{}/api/v1/prescriptions", target.base))
            .bearer_auth(&target.prescriber)
            .json(&body);
        if timed(request, &mut tally, 201).await.is_some() {
            tally.completed += 1;
        }
    }
    tally
}

async fn lifecycles(target: Arc<Target>, client_no: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let body = body();
    let pharmacist = &target.pharmacists[client_no % target.pharmacists.len()];
    let dispense =
        json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]});
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let create = target
            .client
            .post(format!("{}/api/v1/prescriptions", target.base))
            .bearer_auth(&target.prescriber)
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
            .header("Idempotency-Key", format!("lg-{client_no}-{n}"))
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
    println!("ceilings (same machine, same run):");
    println!("  ed25519 sign, 1 thread      {:>9.0}/s", sign_rate(2.0));
    println!(
        "  sqlite commit, sync=FULL    {:>9.0}/s  (one row per transaction, WAL)",
        sqlite_commit_rate(scratch.path(), 2.0)?
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (base, keys_dir) = match (&args.url, &args.keys_dir) {
            (Some(url), Some(keys)) => {
                anyhow::ensure!(is_loopback(url), "the load generator only targets loopback");
                (url.trim_end_matches('/').to_owned(), keys.clone())
            }
            (Some(_), None) => anyhow::bail!("--url needs --keys-dir of that server"),
            _ => {
                let mut config = ServeConfig::for_test(
                    scratch.path().join("prescrypt.db").display().to_string(),
                    scratch.path().join("keys"),
                );
                config.workers = Some(args.workers);
                let app = Application::build(&config)?;
                let base = app.address().to_owned();
                tokio::spawn(app.run_until_stopped());
                (base, scratch.path().join("keys"))
            }
        };
        let issuer = prescrypt::keys::dev_issuer(&keys_dir)?;
        let ttl = chrono::Duration::hours(1);
        let target = Arc::new(Target {
            base,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(args.clients)
                .build()?,
            prescriber: auth::mint(&issuer, Role::Prescriber, "A83008", "G1234567", ttl)?,
            pharmacists: ["FA565", "FCG71", "FX001", "FX002"]
                .iter()
                .map(|org| auth::mint(&issuer, Role::Pharmacist, org, "P7654321", ttl))
                .collect::<Result<_, _>>()?,
        });
        println!(
            "service at {} ({} clients, {} s per phase, SQLite synchronous=FULL, group commit):",
            target.base, args.clients, args.seconds
        );
        phase("creates", args.clients, args.seconds, &target, |t, _, d| {
            creates(t, d)
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
