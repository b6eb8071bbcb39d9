//! Brute force: failed lookups by prescription ID or token are limited per organisation (callers
//! with a valid bearer token) and per client address (callers without one) (429 + Retry-After,
//! problem+json), counted in metrics, audited once per onset, and never spill over onto another
//! organisation or address.

use diesel::prelude::*;
use prescrypt::audit::{self, Verification};
use prescrypt::store::schema::audit_log;
use prescrypt_barcode::PrescriptionId;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};

use crate::helpers::*;

async fn throttled_app(
    org_failures: u32,
    addr_failures: u32,
    trust_forwarded_for: bool,
) -> TestApp {
    let app = TestApp::builder().flags([
        "--throttle-org-failures".to_owned(),
        org_failures.to_string(),
        "--throttle-addr-failures".to_owned(),
        addr_failures.to_string(),
        "--throttle-window".to_owned(),
        "60s".to_owned(),
    ]);
    let app = if trust_forwarded_for {
        app.flags(["--trust-forwarded-for"])
    } else {
        app
    };
    app.spawn().await
}

/// A lookup answer with the headers the throttle sets.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    content_type: String,
    body: Value,
}

/// A well-formed ID that names no prescription, different on every call.
fn unknown_id(n: u32) -> String {
    PrescriptionId::new(0x00AB_0000 + n, "ZZ999", n)
        .unwrap()
        .to_string()
}

/// The `n`-th failed lookup: alternately an unknown ID (404) and a malformed token (400).
async fn failed_lookup(app: &TestApp, bearer: &str, n: u32, forwarded: Option<&str>) -> Answer {
    let request = if n % 2 == 0 {
        app.client
            .get(app.url(&format!("/api/v1/prescriptions/{}", unknown_id(n))))
    } else {
        app.client
            .post(app.url("/api/v1/release"))
            .json(&json!({"token": format!("RX1{}", "0".repeat(128))}))
    };
    send(request, bearer, forwarded).await
}

async fn release(app: &TestApp, bearer: &str, token: &str, forwarded: Option<&str>) -> Answer {
    let request = app
        .client
        .post(app.url("/api/v1/release"))
        .json(&json!({"token": token}));
    send(request, bearer, forwarded).await
}

async fn send(request: reqwest::RequestBuilder, bearer: &str, forwarded: Option<&str>) -> Answer {
    let mut request = request.bearer_auth(bearer);
    if let Some(address) = forwarded {
        request = request.header("X-Forwarded-For", address);
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let (status, body) = read(response).await;
    Answer {
        status,
        retry_after: headers
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap().parse().unwrap()),
        content_type: headers
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        body,
    }
}

fn assert_not_throttled(answer: &Answer) {
    assert!(
        [StatusCode::NOT_FOUND, StatusCode::BAD_REQUEST].contains(&answer.status),
        "{answer:?}"
    );
    assert!(answer.retry_after.is_none(), "{answer:?}");
}

fn assert_throttled(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{answer:?}");
    assert!(answer.retry_after.is_some_and(|s| s >= 1), "{answer:?}");
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(code_of(&answer.body), "too-many-requests");
    assert_eq!(answer.body["status"], 429);
}

/// The `throttled` audit entries: (org, detail).
fn throttle_audits(app: &TestApp) -> Vec<(String, Value)> {
    let mut conn = app.store.connection().unwrap();
    let rows: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.eq("throttled"))
        .order(audit_log::seq.asc())
        .select((audit_log::org, audit_log::detail))
        .load(&mut conn)
        .unwrap();
    assert!(matches!(
        audit::verify(&mut conn).unwrap(),
        Verification::Intact { .. }
    ));
    rows.into_iter()
        .map(|(org, detail)| (org, serde_json::from_str(&detail).unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organisation_guessing_ids_and_tokens_is_throttled_and_others_are_not() {
    let app = throttled_app(5, 0, false).await;
    let (guesser, other) = (app.pharmacist(), app.other_pharmacist());
    let theirs = app.create_default().await;
    let mine = app.create_default().await;

    for n in 0..5 {
        assert_not_throttled(&failed_lookup(&app, &guesser, n, None).await);
    }
    assert_throttled(&failed_lookup(&app, &guesser, 5, None).await);
    // While throttled, every lookup of that organisation is refused, right or wrong.
    let token = theirs["token"].as_str().unwrap();
    assert_throttled(&release(&app, &guesser, token, None).await);
    for n in 6..16 {
        assert_throttled(&failed_lookup(&app, &guesser, n, None).await);
    }
    // Other routes of the throttled organisation still work.
    let (status, _) = app
        .post("/api/v1/release/nominated", &guesser, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Another organisation on the same address is not affected, neither its successes nor its
    // failures.
    let released = release(&app, &other, mine["token"].as_str().unwrap(), None).await;
    assert_eq!(released.status, StatusCode::OK, "{released:?}");
    assert_not_throttled(&failed_lookup(&app, &other, 100, None).await);

    assert!(app.metric("prescrypt_throttled_total{scope=\"org\"}").await >= 12.0);
    // One audit entry for the onset, not one per refused request.
    let audits = throttle_audits(&app);
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert_eq!(audits[0].0, PHARMACY);
    assert_eq!(audits[0].1["scope"], "org");
    assert_eq!(audits[0].1["key"], PHARMACY);
}

/// Issue 21 item 7: pharmacies share NAT and gateways. Five organisations behind one address
/// each failing 25 lookups (under their own limit, 125 in all from the address) used to make the
/// first lookup of a sixth organisation behind the same address 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn organisations_behind_one_address_do_not_lock_each_other_out() {
    // The defaults of `prescrypt serve`: 30 per organisation, 100 per address.
    let app = throttled_app(30, 100, false).await;
    let created = app.create_default().await;
    for org in 0..5_u32 {
        let bearer = app.token(
            prescrypt::auth::Role::Pharmacist,
            &format!("FQ{org:03}"),
            "P3",
        );
        for n in 0..25 {
            assert_not_throttled(&failed_lookup(&app, &bearer, org * 100 + n, None).await);
        }
    }
    let token = created["token"].as_str().unwrap();
    let released = release(&app, &app.pharmacist(), token, None).await;
    assert_eq!(released.status, StatusCode::OK, "{released:?}");
    assert_not_throttled(&failed_lookup(&app, &app.other_pharmacist(), 999, None).await);
    assert!(throttle_audits(&app).is_empty());
}

/// Callers without a valid bearer token name no organisation: their refused lookups (401) count
/// per client address, and past the limit they get 429 before their token is even checked.
/// Authenticated callers on that address are not affected; nobody is named in the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_without_a_valid_token_are_throttled_per_address() {
    let app = throttled_app(0, 5, false).await;
    let created = app.create_default().await;
    for n in 0..5 {
        let answer = failed_lookup(&app, "not-a-token", n, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    }
    assert_throttled(&failed_lookup(&app, "not-a-token", 5, None).await);
    // X-Forwarded-For is not trusted by default: the same address.
    assert_throttled(&failed_lookup(&app, "not-a-token", 6, Some("198.51.100.1")).await);
    let token = created["token"].as_str().unwrap();
    let released = release(&app, &app.pharmacist(), token, None).await;
    assert_eq!(released.status, StatusCode::OK, "{released:?}");
    assert!(
        app.metric("prescrypt_throttled_total{scope=\"addr\"}")
            .await
            >= 2.0
    );
    assert!(throttle_audits(&app).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_a_trusted_proxy_addresses_are_throttled_one_by_one() {
    let app = throttled_app(0, 3, true).await;
    let (guesser, neighbour) = (Some("203.0.113.7"), Some("203.0.113.8"));
    let unauthenticated = |answer: &Answer| {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    };
    for n in 0..3 {
        unauthenticated(&failed_lookup(&app, "not-a-token", n, guesser).await);
    }
    assert_throttled(&failed_lookup(&app, "not-a-token", 3, guesser).await);
    unauthenticated(&failed_lookup(&app, "not-a-token", 4, neighbour).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_count_like_misses_forbidden_and_held_elsewhere() {
    let app = throttled_app(4, 0, false).await;
    let created = app.create_default().await;
    let token = created["token"].as_str().unwrap();
    let released = release(&app, &app.pharmacist(), token, None).await;
    assert_eq!(released.status, StatusCode::OK, "{released:?}");

    // Another pharmacy asking for a prescription someone else holds: 409, twice; a prescriber
    // of that pharmacy's organisation trying to release: 403, twice. The fifth refusal is 429.
    let other = app.other_pharmacist();
    let wrong_role = app.token(prescrypt::auth::Role::Prescriber, OTHER_PHARMACY, "G9");
    for (bearer, expected) in [
        (&other, StatusCode::CONFLICT),
        (&other, StatusCode::CONFLICT),
        (&wrong_role, StatusCode::FORBIDDEN),
        (&wrong_role, StatusCode::FORBIDDEN),
    ] {
        let answer = release(&app, bearer, token, None).await;
        assert_eq!(answer.status, expected, "{answer:?}");
    }
    assert_throttled(&release(&app, &other, token, None).await);
}
