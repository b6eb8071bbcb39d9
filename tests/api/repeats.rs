//! The whole EPS lifecycle (issue 14): repeat dispensing (0003) issue by issue, repeat prescribing
//! (0002) linked to its authorisation, future-dated prescriptions, and the housekeeping jobs
//! (no-claim, retention) observed by moving the service's clock.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const DAY: i64 = 24 * 60 * 60;

fn repeat_dispensing(issue_count: i32, days_supply: i32) -> Value {
    let mut body = prescrypt_testkit::nominated_prescription(PHARMACY);
    body["treatment_type"] = json!("0003");
    body["issue_count"] = json!(issue_count);
    body["days_supply"] = json!(days_supply);
    body
}

fn all_complete() -> Value {
    json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]})
}

fn none_dispensed() -> Value {
    json!({"items": [
        {"line": 1, "outcome": "not_dispensed", "reason": "0001"},
        {"line": 2, "outcome": "not_dispensed", "reason": "0001"}
    ]})
}

async fn nominated(app: &TestApp) -> Vec<Value> {
    let (status, batch) = app
        .post("/api/v1/release/nominated", &app.pharmacist(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    batch["prescriptions"].as_array().unwrap().clone()
}

async fn current(app: &TestApp, id: &str) -> Value {
    let (status, seen) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.prescriber())
        .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    seen
}

#[tokio::test]
async fn repeat_dispensing_issues_follow_one_another_by_the_eps_rule() {
    let app = spawn_app().await;
    let created = app.create(&repeat_dispensing(3, 28)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(status_of(&created), "0001");
    assert_eq!(created["issue_number"], 1);
    assert_eq!(created["issue_count"], 3);
    assert_eq!(created["days_supply"], 28);

    // Issue 1 arrives by nominated release; the later issues do not (9000, future instances).
    let batch = nominated(&app).await;
    assert_eq!(batch.len(), 1, "{batch:?}");
    assert_eq!(batch[0]["issue_number"], 1);
    let (status, dispensed) = app
        .dispense(&app.pharmacist(), &id, "issue-1", &all_complete())
        .await;
    assert_eq!(status, StatusCode::OK, "{dispensed}");
    assert_eq!(status_of(&dispensed), "0006");

    // Issue 2 now waits for its nominated download date: prescribed + 28 days − 7 days.
    let second = current(&app, &id).await;
    assert_eq!(second["issue_number"], 2);
    assert_eq!(status_of(&second), "0000", "{second}");
    assert_ne!(
        second["uuid"], created["uuid"],
        "each issue has its own UUID"
    );
    assert_eq!(second["id"], created["id"], "one ID for every issue");
    assert_eq!(
        second["token"], created["token"],
        "one token for every issue"
    );
    let ready_at = chrono::DateTime::parse_from_rfc3339(second["ready_at"].as_str().unwrap())
        .unwrap()
        .to_utc();
    let created_at =
        chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        ready_at.date_naive(),
        created_at.date_naive() + chrono::Duration::days(21)
    );
    let (status, problem) = app.release(&app.pharmacist(), &token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(code_of(&problem), "not-yet-releasable");
    assert!(
        problem["detail"].as_str().unwrap().contains("issue 2 of 3"),
        "{problem}"
    );
    assert!(nominated(&app).await.is_empty(), "not due yet");

    // Three weeks on, issue 2 arrives through nominated release.
    app.advance_clock(22 * DAY).await;
    let batch = nominated(&app).await;
    assert_eq!(batch.len(), 1, "{batch:?}");
    assert_eq!(batch[0]["issue_number"], 2);
    assert_eq!(status_of(&batch[0]), "0002");
    // Not dispensed also completes an issue and brings on the next.
    let (status, not_dispensed) = app
        .dispense(&app.pharmacist(), &id, "issue-2", &none_dispensed())
        .await;
    assert_eq!(status, StatusCode::OK, "{not_dispensed}");
    assert_eq!(status_of(&not_dispensed), "0007");
    assert_eq!(not_dispensed["issue_number"], 2);
    let third = current(&app, &id).await;
    assert_eq!(third["issue_number"], 3);
    assert_eq!(status_of(&third), "0000");

    // The pharmacy can still claim the issue it held although issue 3 is now current.
    let (status, claimed) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/claim"),
            &app.pharmacist(),
            &claim_nothing_supplied(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["issue_number"], 2);
    assert_eq!(status_of(&claimed), "0008");

    // The prescriber cancels what is left.
    let (status, cancelled) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/cancel"),
            &app.prescriber(),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(status_of(&cancelled["prescription"]), "0005");
    assert_eq!(cancelled["prescription"]["issue_number"], 3);

    // History shows every issue.
    let (_, history) = app
        .get(
            &format!("/api/v1/prescriptions/{id}/history"),
            &app.prescriber(),
        )
        .await;
    let events = history["events"].as_array().unwrap();
    for issue in 1..=3 {
        assert!(
            events.iter().any(|e| e["issue_number"] == issue),
            "issue {issue} in {history}"
        );
    }
    let activated = events
        .iter()
        .find(|e| e["action"] == "dispensed" && e["issue_number"] == 1)
        .unwrap();
    assert_eq!(activated["detail"]["next_issue"]["issue_number"], 2);
    assert_eq!(activated["detail"]["next_issue"]["status"], "0000");
}

#[tokio::test]
async fn a_late_dispense_makes_the_next_issue_due_at_once_and_cancel_stops_every_later_one() {
    let app = spawn_app().await;
    let created = app.create(&repeat_dispensing(4, 28)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    app.advance_clock(30 * DAY).await;
    let (status, _) = app.release(&app.pharmacist(), &token).await;
    assert_eq!(status, StatusCode::OK);
    app.dispense(&app.pharmacist(), &id, "late", &all_complete())
        .await;
    // Issue 2's nominated download date (day 21) has passed: To Be Dispensed at once.
    let second = current(&app, &id).await;
    assert_eq!(
        (second["issue_number"].as_i64(), status_of(&second)),
        (Some(2), "0001")
    );
    let (status, held) = app.release(&app.pharmacist(), &token).await;
    assert_eq!(status, StatusCode::OK, "{held}");
    assert_eq!(held["issue_number"], 2);

    // Cancelling while issue 2 is with the dispenser marks it pending and cancels 3 and 4.
    let (status, answer) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/cancel"),
            &app.prescriber(),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["response"]["code"], "R-0002");
    let (_, page) = app
        .get(
            "/api/v1/prescriptions?nhs_number=9434765919",
            &app.prescriber(),
        )
        .await;
    let issues: Vec<(i64, String)> = page["prescriptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["id"] == json!(id))
        .map(|p| (p["issue_number"].as_i64().unwrap(), status_of(p).to_owned()))
        .collect();
    for (issue, status) in &issues {
        let want = match issue {
            1 => "0006",
            2 => "0002",
            _ => "0005",
        };
        assert_eq!(status, want, "issue {issue}: {issues:?}");
    }
    assert_eq!(issues.len(), 4, "{issues:?}");
}

#[tokio::test]
async fn withdrawing_a_completion_puts_the_next_issue_back_in_the_future() {
    let app = spawn_app().await;
    let created = app.create(&repeat_dispensing(2, 28)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    app.dispense(&app.pharmacist(), &id, "d1", &all_complete())
        .await;
    assert_eq!(current(&app, &id).await["issue_number"], 2);
    let (status, withdrawn) = app
        .post_with(
            &format!("/api/v1/prescriptions/{id}/dispense/withdraw"),
            &app.pharmacist(),
            &json!({}),
            Some("w1"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(status_of(&withdrawn), "0002");
    let back = current(&app, &id).await;
    assert_eq!(
        back["issue_number"], 1,
        "issue 2 is a future instance again"
    );
}

#[tokio::test]
async fn a_future_dated_prescription_is_not_releasable_before_its_start_date() {
    let app = spawn_app().await;
    let now = app.advance_clock(1).await;
    let start = (now + chrono::Duration::days(10)).date_naive();
    let mut body = new_prescription();
    body["start_date"] = json!(start.to_string());
    let created = app.create(&body).await;
    assert_eq!(status_of(&created), "9001", "{created}");
    assert_eq!(created["start_date"], json!(start.to_string()));
    let token = created["token"].as_str().unwrap();
    let (status, problem) = app.release(&app.pharmacist(), token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(code_of(&problem), "not-yet-releasable");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&start.to_string()),
        "{problem}"
    );
    app.advance_clock(10 * DAY).await;
    let (status, released) = app.release(&app.pharmacist(), token).await;
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(status_of(&released), "0002");

    let mut far = new_prescription();
    far["start_date"] = json!("2999-01-01");
    let (status, problem) = app
        .post("/api/v1/prescriptions", &app.prescriber(), &far)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "start_date");
}

#[tokio::test]
async fn repeat_prescribing_issues_are_prescriptions_linked_to_their_authorisation() {
    let app = spawn_app().await;
    let mut body = new_prescription();
    body["treatment_type"] = json!("0002");
    body["issue_count"] = json!(2);
    let first = app.create(&body).await;
    let authorisation = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["authorisation"], json!(authorisation));
    assert_eq!(first["issue_number"], 1);

    body["authorisation"] = json!(authorisation);
    let second = app.create(&body).await;
    assert_ne!(second["id"], first["id"], "each issue its own prescription");
    assert_eq!(second["issue_number"], 2);
    assert_eq!(second["authorisation"], json!(authorisation));
    assert_eq!(status_of(&second), "0001");

    let (status, problem) = app
        .post("/api/v1/prescriptions", &app.prescriber(), &body)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(code_of(&problem), "authorisation-used-up");

    let mut acute = new_prescription();
    acute["authorisation"] = json!(authorisation);
    let (status, problem) = app
        .post("/api/v1/prescriptions", &app.prescriber(), &acute)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "authorisation");
    let mut wrong_interval = new_prescription();
    wrong_interval["days_supply"] = json!(28);
    let (status, problem) = app
        .post("/api/v1/prescriptions", &app.prescriber(), &wrong_interval)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "days_supply");
}

/// Polls `GET /prescriptions/{id}` as the prescriber until `done` holds (the sweep runs every
/// second), or fails after ten seconds.
async fn wait_for(app: &TestApp, id: &str, done: impl Fn(StatusCode, &Value) -> bool) -> Value {
    for _ in 0..100 {
        let (status, seen) = app
            .get(&format!("/api/v1/prescriptions/{id}"), &app.prescriber())
            .await;
        if done(status, &seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never reached the state waited for");
}

#[tokio::test]
async fn housekeeping_no_claims_after_the_claim_window_and_deletes_after_retention() {
    let app = TestApp::builder()
        .flags([
            "--sweep-interval",
            "1s",
            "--claim-window",
            "10d",
            "--retention",
            "30d",
        ])
        .spawn()
        .await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    app.dispense(&app.pharmacist(), &id, "d", &all_complete())
        .await;
    let rows_before = app
        .metric_sum("prescrypt_housekeeping_rows_total", "job=\"no-claim\"")
        .await;

    app.advance_clock(9 * DAY).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        status_of(&current(&app, &id).await),
        "0006",
        "inside the window"
    );

    app.advance_clock(2 * DAY).await;
    let settled = wait_for(&app, &id, |_, seen| status_of(seen) == "0009").await;
    assert_eq!(settled["status"]["display"], "No-Claimed");
    assert!(
        app.metric_sum("prescrypt_housekeeping_rows_total", "job=\"no-claim\"")
            .await
            > rows_before
    );

    // Thirty days after it was settled, the prescription and its patient data are gone; the
    // audit log keeps its entries and still verifies.
    app.advance_clock(31 * DAY).await;
    wait_for(&app, &id, |status, _| status == StatusCode::NOT_FOUND).await;
    let uuid = created["uuid"].as_str().unwrap().to_owned();
    let remaining = app
        .store
        .read(move |conn| {
            use diesel::prelude::*;
            use prescrypt::store::schema::{items, prescription_holders, prescriptions};
            let rows: i64 = prescriptions::table
                .filter(prescriptions::uuid.eq(&uuid))
                .count()
                .get_result(conn)?;
            let items: i64 = items::table
                .filter(items::prescription_uuid.eq(&uuid))
                .count()
                .get_result(conn)?;
            let holders: i64 = prescription_holders::table
                .filter(prescription_holders::prescription_uuid.eq(&uuid))
                .count()
                .get_result(conn)?;
            Ok::<_, prescrypt::AppError>(rows + items + holders)
        })
        .await
        .unwrap();
    assert_eq!(remaining, 0);
    let verified = app.store.read(prescrypt::audit::verify).await.unwrap();
    assert!(
        matches!(verified, prescrypt::audit::Verification::Intact { .. }),
        "{verified:?}"
    );
}

#[tokio::test]
async fn prescriber_signed_repeats_carry_their_fields_and_two_issues_prepared_at_once_cannot_both_be_issued()
 {
    let app = spawn_app().await;
    let signer = prescrypt_testkit::PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;

    // A prescriber-signed repeat-dispensing prescription: the signed content names the interval.
    let batch = signer
        .issue(&app, &app.prescriber(), &repeat_dispensing(2, 56))
        .await;
    assert_eq!(batch["days_supply"], 56);
    let signed: Value = {
        let payload = batch["prescriber_jws"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap();
        serde_json::from_slice(
            &data_encoding::BASE64URL_NOPAD
                .decode(payload.as_bytes())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(signed["days_supply"], 56);
    assert_eq!(signed["issue_count"], 2);

    let mut body = new_prescription();
    body["treatment_type"] = json!("0002");
    body["issue_count"] = json!(3);
    let first = signer.issue(&app, &app.prescriber(), &body).await;
    body["authorisation"] = first["id"].clone();
    let (status, one) = signer.prepare(&app, &app.prescriber(), &body).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    let (status, other) = signer.prepare(&app, &app.prescriber(), &body).await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_eq!(one["prescription"]["issue_number"], 2);
    assert_eq!(other["prescription"]["issue_number"], 2);
    let create = |prepared: &Value| {
        json!({
            "prepared_id": prepared["prepared_id"],
            "signature": signer.sign(prepared["signing_input"].as_str().unwrap()),
        })
    };
    let (status, issued) = app
        .post("/api/v1/prescriptions", &app.prescriber(), &create(&one))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["authorisation"], first["id"]);
    let (status, problem) = app
        .post("/api/v1/prescriptions", &app.prescriber(), &create(&other))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(code_of(&problem), "authorisation-issue-taken");
}
