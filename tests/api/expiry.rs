use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// Moves a prescription's expiry into the past directly in the store (time travel for tests).
pub async fn force_expiry_into_the_past(app: &TestApp, id: &str) {
    use prescrypt::store::schema::prescriptions::dsl::*;
    let compact = id.replace('-', "");
    let past = chrono::Utc::now().naive_utc() - chrono::Duration::days(1);
    app.store
        .write(move |conn| {
            diesel::update(prescriptions.filter(short_id.eq(compact)))
                .set(expires_at.eq(past))
                .execute(conn)
                .map_err(prescrypt::AppError::from)
        })
        .await
        .expect("time travel");
}

#[tokio::test]
async fn expiry_on_access_moves_to_0004_and_partly_dispensed_to_0006() {
    let app = spawn_app().await;
    let waiting = app.create_default().await;
    let waiting_id = waiting["id"].as_str().unwrap();
    force_expiry_into_the_past(&app, waiting_id).await;
    let (status, seen) = app
        .get(
            &format!("/api/v1/prescriptions/{waiting_id}"),
            &app.prescriber(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_of(&seen), "0004");
    assert_eq!(seen["items"][0]["status"]["code"], "0006");
    let (status, problem) = app
        .release(&app.pharmacist(), waiting["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&problem), "illegal-transition");

    let active = app.create_default().await;
    let active_id = active["id"].as_str().unwrap();
    app.release(&app.pharmacist(), active["token"].as_str().unwrap())
        .await;
    app.dispense(
        &app.pharmacist(),
        active_id,
        "p",
        &json!({"items": [{"line": 1, "outcome": "complete"}]}),
    )
    .await;
    force_expiry_into_the_past(&app, active_id).await;
    let (_, seen) = app
        .get(
            &format!("/api/v1/prescriptions/{active_id}"),
            &app.pharmacist(),
        )
        .await;
    assert_eq!(status_of(&seen), "0006");
    assert_eq!(seen["items"][0]["status"]["code"], "0001");
    assert_eq!(seen["items"][1]["status"]["code"], "0006");
    let (_, history) = app
        .get(
            &format!("/api/v1/prescriptions/{active_id}/history"),
            &app.pharmacist(),
        )
        .await;
    assert_eq!(
        history["events"].as_array().unwrap().last().unwrap()["action"],
        "expired"
    );
}

#[tokio::test]
async fn the_sweep_expires_without_anyone_looking() {
    let app = spawn_app().await;
    let a = app.create_default().await;
    let b = app.create_default().await;
    force_expiry_into_the_past(&app, a["id"].as_str().unwrap()).await;
    let expired = app
        .store
        .write(|conn| {
            prescrypt::prescriptions::sweep_expired(conn, chrono::Utc::now().naive_utc(), 100)
        })
        .await
        .unwrap();
    assert_eq!(expired, 1);
    let again = app
        .store
        .write(|conn| {
            prescrypt::prescriptions::sweep_expired(conn, chrono::Utc::now().naive_utc(), 100)
        })
        .await
        .unwrap();
    assert_eq!(again, 0);
    let (_, seen) = app
        .get(
            &format!("/api/v1/prescriptions/{}", b["id"].as_str().unwrap()),
            &app.prescriber(),
        )
        .await;
    assert_eq!(status_of(&seen), "0001");
}

#[tokio::test]
async fn controlled_drugs_of_schedules_2_to_4_are_valid_for_28_days() {
    let app = spawn_app().await;
    for (schedule, days) in [(2, 28), (3, 28), (4, 28), (5, 181)] {
        let mut body = new_prescription();
        body["controlled_drug_schedule"] = json!(schedule);
        let created = app.create(&body).await;
        let start =
            chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).unwrap();
        let end =
            chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().unwrap()).unwrap();
        let length = (end - start).num_days();
        if schedule == 5 {
            assert!(
                (181..=184).contains(&length),
                "six months, got {length} days"
            );
        } else {
            assert_eq!(length, days);
        }
        assert_eq!(created["controlled_drug_schedule"], schedule);
    }
}
