//! Overload: past capacity the service answers 503 + `Retry-After` (problem+json) at once instead
//! of queueing, never 500 or a hang; every 2xx is in the store; it recovers by itself.
//!
//! To make "past capacity" deterministic, a test holds the store's writes with a real write
//! transaction (it locks the audit chain heads, which every operation appends to: the SQLite
//! writer thread waits inside it; on PostgreSQL every write waits for a head row lock) until the
//! expected number of shed answers has arrived. No timing is asserted.

use std::time::Duration;

use diesel::prelude::*;
use prescrypt::store::Backend;
use prescrypt::store::schema::prescriptions;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::helpers::*;

/// What a flooding request got back.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    content_type: String,
    body: Value,
}

async fn answer(response: reqwest::Response) -> Answer {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header(RETRY_AFTER).map(|v| v.parse().expect("Retry-After is seconds"));
    let content_type = header(CONTENT_TYPE).unwrap_or_default();
    let (status, body) = read(response).await;
    Answer {
        status,
        retry_after,
        content_type,
        body,
    }
}

/// A write transaction that holds the audit chain heads until released (or 60 s pass).
struct HeldStore {
    release: std::sync::mpsc::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

async fn hold_store(app: &TestApp) -> HeldStore {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (started, holding) = tokio::sync::oneshot::channel::<()>();
    let store = app.store.clone();
    let done = tokio::spawn(async move {
        store
            .write(move |conn| {
                // Every head row: whichever audit chain a request appends to, it waits.
                diesel::sql_query("UPDATE audit_head SET seq = seq").execute(conn)?;
                let _ = started.send(());
                let _ = released.recv_timeout(Duration::from_secs(60));
                Ok(())
            })
            .await
            .expect("the holding write commits");
    });
    holding.await.expect("the store is held");
    HeldStore { release, done }
}

impl HeldStore {
    async fn release(self) {
        let _ = self.release.send(());
        self.done.await.unwrap();
    }
}

fn client() -> reqwest::Client {
    // Generous, so that a hang shows up as a failed request rather than a stuck test.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Sends `count` creates at once; answers arrive on the channel as they complete.
fn flood_creates(app: &TestApp, count: usize) -> mpsc::UnboundedReceiver<Answer> {
    let (sender, answers) = mpsc::unbounded_channel();
    let client = client();
    let bearer = app.prescriber();
    for _ in 0..count {
        let (client, bearer, sender) = (client.clone(), bearer.clone(), sender.clone());
        let url = app.url("/api/v1/prescriptions");
        tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(bearer)
                .json(&new_prescription())
                .send()
                .await
                .expect("no client-side timeout or connection failure");
            let _ = sender.send(answer(response).await);
        });
    }
    answers
}

async fn collect(answers: &mut mpsc::UnboundedReceiver<Answer>, count: usize) -> Vec<Answer> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        got.push(answers.recv().await.expect("an answer"));
    }
    got
}

fn assert_shed(answer: &Answer, code: &str) {
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert!(answer.retry_after.is_some_and(|s| s >= 1), "{answer:?}");
    assert_eq!(
        answer.content_type, "application/problem+json",
        "{answer:?}"
    );
    assert_eq!(code_of(&answer.body), code, "{answer:?}");
    assert_eq!(answer.body["status"], 503);
}

fn in_store(app: &TestApp, id: &str) -> Option<String> {
    let mut conn = app.store.connection().unwrap();
    prescriptions::table
        .filter(prescriptions::short_id.eq(id.replace('-', "")))
        .select(prescriptions::status)
        .first(&mut conn)
        .optional()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_max_in_flight_requests_are_shed_with_503_retry_after_and_recover() {
    let app = TestApp::builder()
        .flags(["--max-in-flight", "4", "--max-in-flight-share", "1"])
        .spawn()
        .await;

    let held = hold_store(&app).await;
    let mut answers = flood_creates(&app, 40);
    // Four requests hold the four slots (waiting for the store); the other 36 are refused at once.
    let shed = collect(&mut answers, 36).await;
    for answer in &shed {
        assert_shed(answer, "overloaded");
    }
    // Health and metrics stay reachable while the service is full.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        app.metric("prescrypt_shed_total{reason=\"in-flight\"}")
            .await
            >= 36.0
    );

    held.release().await;
    let admitted = collect(&mut answers, 4).await;
    for answer in &admitted {
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        let id = answer.body["id"].as_str().unwrap();
        assert_eq!(in_store(&app, id).as_deref(), Some("0001"), "{id}");
    }
    // Recovery: nothing is held any more, an ordinary request succeeds.
    let created = app.create_default().await;
    assert!(in_store(&app, created["id"].as_str().unwrap()).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_write_queue_sheds_writes_instead_of_queueing_without_bound() {
    let app = TestApp::builder()
        .flags(["--write-queue", "4"])
        .spawn()
        .await;
    if app.store.backend() != Backend::Sqlite {
        // PostgreSQL has no writer queue; its bound is the pool checkout timeout (--db-timeout).
        return;
    }
    let held = hold_store(&app).await;
    let mut answers = flood_creates(&app, 30);
    // The writer is busy holding the store: at most four writes wait in its queue, the rest are
    // refused at once. Up to three of the four may be the service's own start-up writes (the
    // expiry sweep, the idempotency pruning, the first audit checkpoint), so at least one create
    // waits.
    let shed = collect(&mut answers, 26).await;
    for answer in &shed {
        assert_shed(answer, "overloaded");
    }
    assert!(
        app.metric("prescrypt_shed_total{reason=\"write-queue\"}")
            .await
            >= 26.0
    );
    held.release().await;
    let mut created = 0;
    for answer in collect(&mut answers, 4).await {
        if answer.status == StatusCode::CREATED {
            assert!(in_store(&app, answer.body["id"].as_str().unwrap()).is_some());
            created += 1;
        } else {
            assert_shed(&answer, "overloaded");
        }
    }
    assert!(
        created >= 1,
        "a queued write is answered once the writer is free"
    );
    app.create_default().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_past_the_time_limit_gets_503_timeout_not_a_hang() {
    let app = TestApp::builder()
        .flags(["--request-timeout", "1s"])
        .spawn()
        .await;
    let held = hold_store(&app).await;
    let mut answers = flood_creates(&app, 1);
    let timed_out = collect(&mut answers, 1).await;
    assert_shed(&timed_out[0], "timeout");
    held.release().await;
    app.create_default().await;
}

/// One pharmacy step of a lifecycle and the prescription's status once it succeeded.
struct Step {
    path: String,
    body: Value,
    key: Option<String>,
    status_after: &'static str,
}

fn lifecycle_after_create(id: &str, token: &str, n: usize) -> Vec<Step> {
    vec![
        Step {
            path: "/api/v1/release".into(),
            body: json!({"token": token}),
            key: None,
            status_after: "0002",
        },
        Step {
            path: format!("/api/v1/prescriptions/{id}/dispense"),
            body: json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]}),
            key: Some(format!("flood-{n}")),
            status_after: "0006",
        },
        Step {
            path: format!("/api/v1/prescriptions/{id}/claim"),
            body: prescrypt_testkit::claim_both_supplied(),
            key: None,
            status_after: "0008",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_lifecycles_gets_only_2xx_or_clean_503s_and_every_2xx_is_stored() {
    let app = TestApp::builder()
        .flags(["--max-in-flight", "3", "--max-in-flight-share", "1"])
        .spawn()
        .await;
    let client = client();
    let (prescriber, pharmacist) = (app.prescriber(), app.pharmacist());
    let mut tasks = Vec::new();
    for n in 0..120 {
        let (client, prescriber, pharmacist) =
            (client.clone(), prescriber.clone(), pharmacist.clone());
        let base = app.address.clone();
        // Each lifecycle runs until its first refusal; it reports every answer and what the
        // prescription's status must be after its last success.
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let created = client
                .post(format!("{base}/api/v1/prescriptions"))
                .bearer_auth(&prescriber)
                .json(&new_prescription())
                .send()
                .await
                .expect("no client-side timeout or connection failure");
            let created = answer(created).await;
            if created.status != StatusCode::CREATED {
                seen.push(created);
                return (None, seen);
            }
            let id = created.body["id"].as_str().unwrap().to_owned();
            let token = created.body["token"].as_str().unwrap().to_owned();
            seen.push(created);
            let mut expected = "0001";
            for step in lifecycle_after_create(&id, &token, n) {
                let mut request = client
                    .post(format!("{base}{}", step.path))
                    .bearer_auth(&pharmacist)
                    .json(&step.body);
                if let Some(key) = &step.key {
                    request = request.header("Idempotency-Key", key);
                }
                let got = answer(request.send().await.expect("no client-side failure")).await;
                let ok = got.status.is_success();
                seen.push(got);
                if !ok {
                    break;
                }
                expected = step.status_after;
            }
            (Some((id, expected)), seen)
        }));
    }
    let mut shed = 0;
    let mut successes = 0;
    for task in tasks {
        let (outcome, seen) = task.await.unwrap();
        for answer in &seen {
            if answer.status.is_success() {
                successes += 1;
            } else {
                assert_shed(answer, code_of(&answer.body));
                assert!(
                    ["overloaded", "unavailable"].contains(&code_of(&answer.body)),
                    "{answer:?}"
                );
                shed += 1;
            }
        }
        if let Some((id, expected)) = outcome {
            assert_eq!(in_store(&app, &id).as_deref(), Some(expected), "{id}");
        }
    }
    assert!(successes > 0);
    eprintln!("flood: {successes} successes, {shed} shed");
    // Recovery.
    let created = app.create_default().await;
    let (status, _) = app
        .release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Another organisation's read that needs no write (SQLite serves it while the store is held).
async fn other_organisation_reads(app: &TestApp, times: usize) {
    let other = app.other_pharmacist();
    for _ in 0..times {
        let (status, body) = app.get("/api/v1/audit/checkpoints", &other).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// Posts a release whose head says 60,000 bytes of body, then sends one byte every 100 ms until
/// the server answers; what it answered (status line to the end of the problem body).
async fn post_slowly(address: String, bearer: String) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/release HTTP/1.1\r\nHost: prescrypt\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        tokio::select! {
            read = stream.read_buf(&mut answer) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) if answer.ends_with(b"}") => break,
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if stream.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Issue 21 item 3: one organisation's clients trickling their bodies (here 30 connections
/// posting `Content-Length: 60000` a byte at a time) used to hold every `--max-in-flight` slot
/// until the request timeout, and every other organisation got 503. A body is now read before
/// its request takes a slot, within `--body-timeout`: the slow senders get 408 `body-timeout`,
/// and everyone else gets through meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_bodies_hold_no_slot_and_are_cut_off_with_408() {
    let app = TestApp::builder()
        .flags([
            "--max-in-flight",
            "4",
            "--max-in-flight-share",
            "1",
            "--body-timeout",
            "3s",
        ])
        .spawn()
        .await;
    let address = app.address.strip_prefix("http://").unwrap().to_owned();
    let slow: Vec<_> = (0..30)
        .map(|_| tokio::spawn(post_slowly(address.clone(), app.pharmacist())))
        .collect();
    // Every slow sender has sent its head and is trickling its body.
    tokio::time::sleep(Duration::from_millis(700)).await;
    other_organisation_reads(&app, 10).await;
    for sender in slow {
        let answer = sender.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"code\":\"body-timeout\""), "{answer}");
    }
    assert!(app.metric("prescrypt_body_timeouts_total").await >= 30.0);
    app.create_default().await;
}

/// Issue 21 item 3, the other half: one organisation holds at most its share of the slots
/// (`--max-in-flight-share`); the rest of its requests get 503 at once while another
/// organisation's requests still get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_organisation_holds_at_most_its_share_of_the_slots() {
    let app = TestApp::builder()
        .flags(["--max-in-flight", "6", "--max-in-flight-share", "0.5"])
        .spawn()
        .await;
    let held = hold_store(&app).await;
    let mut answers = flood_creates(&app, 20);
    // Three creates hold the prescribing organisation's three slots; the other 17 are refused.
    for answer in collect(&mut answers, 17).await {
        assert_shed(&answer, "overloaded");
    }
    other_organisation_reads(&app, 5).await;
    assert!(
        app.metric("prescrypt_shed_total{reason=\"org-share\"}")
            .await
            >= 17.0
    );
    held.release().await;
    for answer in collect(&mut answers, 3).await {
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        assert!(in_store(&app, answer.body["id"].as_str().unwrap()).is_some());
    }
}
