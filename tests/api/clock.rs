//! The one clock: `serve --dev` moves it (`POST /api/v1/dev/clock`), and every decision by time
//! follows it.

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const DAY: i64 = 24 * 60 * 60;

/// The stored status of a prescription, read without going through the service (a GET would
/// expire it on the way).
async fn stored_status(app: &TestApp, id: &str) -> String {
    use prescrypt::store::schema::prescriptions::dsl::*;
    let compact = id.replace('-', "");
    app.store
        .read(move |conn| {
            prescriptions
                .filter(short_id.eq(compact))
                .select(status)
                .first::<String>(conn)
                .map_err(prescrypt::AppError::from)
        })
        .await
        .expect("stored status")
}

#[tokio::test]
async fn a_prescription_expires_once_the_clock_passes_its_validity() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/prescriptions/{id}");
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().unwrap()).unwrap();

    let now = app.advance_clock(150 * DAY).await;
    assert!(now < expires_at, "{now} is still before {expires_at}");
    let (_, seen) = app.get(&path, &app.prescriber()).await;
    assert_eq!(status_of(&seen), "0001", "five months on, still valid");

    let now = app.advance_clock(40 * DAY).await;
    assert!(now > expires_at);
    let (status, seen) = app.get(&path, &app.prescriber()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_of(&seen), "0004", "past six months: expired");
    let (status, problem) = app
        .release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&problem), "illegal-transition");

    // The service records the moved time, not the system's.
    let (_, history) = app.get(&format!("{path}/history"), &app.prescriber()).await;
    let expired = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["action"] == "expired")
        .expect("an expired event");
    let at = chrono::DateTime::parse_from_rfc3339(expired["at"].as_str().unwrap()).unwrap();
    assert!(at >= expires_at, "expired at {at}, due {expires_at}");
}

#[tokio::test]
async fn the_sweep_expires_by_the_moved_clock() {
    let app = TestApp::builder()
        .flags(["--sweep-interval", "1s"])
        .spawn()
        .await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    app.advance_clock(200 * DAY).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stored_status(&app, id).await != "0004" {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep did not expire {id} after the clock moved"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn new_prescriptions_are_dated_by_the_moved_clock() {
    let app = spawn_app().await;
    let now = app.advance_clock(365 * DAY).await;
    let created = app.create_default().await;
    let created_at =
        chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).unwrap();
    assert!(created_at >= now, "created {created_at}, clock {now}");
}

#[tokio::test]
async fn only_an_admin_moves_the_clock_and_only_forward_within_bounds() {
    let app = spawn_app().await;
    let path = prescrypt::contract::routes::DEV_CLOCK;
    let (status, problem) = app
        .post(path, &app.prescriber(), &json!({"advance_seconds": 60}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    for bad in [json!(-1), json!(10 * 366 * DAY + 1)] {
        let (status, problem) = app
            .post(path, &app.admin(), &json!({"advance_seconds": bad}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        assert_eq!(problem["field"], "advance_seconds", "{bad}: {problem}");
    }
    for bad in [json!("60"), json!(1.5)] {
        let (status, problem) = app
            .post(path, &app.admin(), &json!({"advance_seconds": bad}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
    }
    let before = app.advance_clock(0).await;
    let after = app.advance_clock(3600).await;
    assert!(after - before >= chrono::Duration::seconds(3600));
}

#[tokio::test]
async fn without_dev_the_clock_endpoint_does_not_exist() {
    let app = TestApp::builder().production().spawn().await;
    let (status, problem) = app
        .post(
            prescrypt::contract::routes::DEV_CLOCK,
            &app.admin(),
            &json!({"advance_seconds": 60}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(code_of(&problem), "not-found");
    let document = app.openapi_document().await;
    assert!(document["paths"].get("/api/v1/dev/clock").is_none());
}
