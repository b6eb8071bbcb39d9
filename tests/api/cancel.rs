use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn cancel_path(id: &str) -> String {
    format!("/api/v1/prescriptions/{id}/cancel")
}

#[tokio::test]
async fn cancel_before_release_is_immediate_and_final() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    let (status, result) = app
        .post(
            &cancel_path(id),
            &app.prescriber(),
            &json!({"reason": "0002"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert!(result["response"].is_null());
    assert_eq!(status_of(&result["prescription"]), "0005");
    assert_eq!(result["prescription"]["items"][0]["status"]["code"], "0005");
    let (status, again) = app
        .post(&cancel_path(id), &app.prescriber(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["response"]["code"], "R-0006");
    // A cancelled prescription cannot be released.
    let (status, problem) = app
        .release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&problem), "illegal-transition");
}

#[tokio::test]
async fn cancel_with_dispenser_is_pending_until_returned() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    app.release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    let (status, result) = app
        .post(&cancel_path(id), &app.prescriber(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["response"]["code"], "R-0002");
    assert_eq!(status_of(&result["prescription"]), "0002");
    assert_eq!(result["prescription"]["pending_cancellation"], true);

    // The dispenser sees it on its next interaction and may not dispense.
    let (_, seen) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.pharmacist())
        .await;
    assert_eq!(seen["pending_cancellation"], true);
    let (status, problem) = app
        .dispense(
            &app.pharmacist(),
            id,
            "d",
            &json!({"items": [{"line": 1, "outcome": "complete"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&problem), "pending-cancellation");

    // Another prescriber of the same practice asking again: R-0007.
    let other = app.token(
        prescrypt::auth::Role::Prescriber,
        PRESCRIBER_ORG,
        "G9999999",
    );
    let (_, second) = app.post(&cancel_path(id), &other, &json!({})).await;
    assert_eq!(second["response"]["code"], "R-0007");

    let (status, returned) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/return"),
            &app.pharmacist(),
            &json!({"reason": "0002"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(status_of(&returned), "0005");
    assert_eq!(returned["pending_cancellation"], false);
}

#[tokio::test]
async fn cancel_answers_with_the_eps_r_codes() {
    let app = spawn_app().await;
    // With dispenser, active (partly dispensed): R-0003.
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    app.release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    app.dispense(
        &app.pharmacist(),
        id,
        "p",
        &json!({"items": [{"line": 1, "outcome": "complete"}]}),
    )
    .await;
    let (_, result) = app
        .post(&cancel_path(id), &app.prescriber(), &json!({}))
        .await;
    assert_eq!(result["response"]["code"], "R-0003");

    // Dispensed: R-0004. Not dispensed: R-0010.
    let done = app.create_default().await;
    let done_id = done["id"].as_str().unwrap();
    app.release(&app.pharmacist(), done["token"].as_str().unwrap())
        .await;
    app.dispense(
        &app.pharmacist(),
        done_id,
        "c",
        &json!({"items": [
        {"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]}),
    )
    .await;
    let (_, result) = app
        .post(&cancel_path(done_id), &app.prescriber(), &json!({}))
        .await;
    assert_eq!(result["response"]["code"], "R-0004");
    assert_eq!(status_of(&result["prescription"]), "0006");

    let none = app.create_default().await;
    let none_id = none["id"].as_str().unwrap();
    app.release(&app.pharmacist(), none["token"].as_str().unwrap())
        .await;
    app.dispense(
        &app.pharmacist(),
        none_id,
        "n",
        &json!({"items": [
        {"line": 1, "outcome": "not_dispensed", "reason": "0001"},
        {"line": 2, "outcome": "not_dispensed", "reason": "0001"}]}),
    )
    .await;
    let (_, result) = app
        .post(&cancel_path(none_id), &app.prescriber(), &json!({}))
        .await;
    assert_eq!(result["response"]["code"], "R-0010");

    let (status, problem) = app
        .post(
            &cancel_path(none_id),
            &app.prescriber(),
            &json!({"reason": "0042"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "reason");
}
