//! Claims that pay: the exemption or the charges paid, evidence seen, and the dispenser
//! endorsements of every supplied item, checked against the EPS code lists; amended within the
//! claim window and not after.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn claim(app: &TestApp, id: &str, body: &Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/prescriptions/{id}/claim"),
        &app.pharmacist(),
        body,
    )
    .await
}

fn paid_with_endorsements() -> Value {
    json!({"exemption": "0001", "evidence_seen": false, "charges_paid": 2, "items": [
        {"line": 1, "endorsements": [{"code": "NDEC"}]},
        {"line": 2, "endorsements": [{"code": "BB", "text": "21 of a pack of 28"},
                                     {"code": "XP", "text": "courier 4.50"}]}
    ]})
}

#[tokio::test]
async fn a_claim_records_charges_and_endorsements_and_is_shown() {
    let app = spawn_app().await;
    let id = app.dispensed_default().await;
    let (status, claimed) = claim(&app, &id, &paid_with_endorsements()).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(status_of(&claimed), "0008");
    let recorded = &claimed["claim"];
    assert_eq!(recorded["exemption"]["code"], "0001", "{recorded}");
    assert_eq!(recorded["charges_paid"], 2);
    assert_eq!(recorded["evidence_seen"], false);
    assert!(recorded["amended_at"].is_null());
    let second = &recorded["items"][1];
    assert_eq!(second["line"], 2);
    assert_eq!(second["endorsements"][0]["code"]["code"], "BB");
    assert_eq!(second["endorsements"][0]["code"]["display"], "Broken Bulk");
    assert_eq!(second["endorsements"][0]["text"], "21 of a pack of 28");
    assert_eq!(second["endorsements"][1]["code"]["code"], "XP");

    let (status, read) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.prescriber())
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["claim"], claimed["claim"]);
}

#[tokio::test]
async fn a_claim_against_the_code_lists_is_refused_naming_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    let id = app.dispensed_default().await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = paid_with_endorsements();
        change(&mut body);
        body
    };
    for (why, body, field) in [
        (
            "unknown exemption",
            with(&|b| b["exemption"] = json!("0016")),
            "exemption",
        ),
        (
            "paid without count",
            with(&|b| b["charges_paid"] = Value::Null),
            "charges_paid",
        ),
        (
            "paid too many",
            with(&|b| b["charges_paid"] = json!(3)),
            "charges_paid",
        ),
        (
            "paid none",
            with(&|b| b["charges_paid"] = json!(0)),
            "charges_paid",
        ),
        (
            "exempt but paid",
            with(&|b| b["exemption"] = json!("0004")),
            "charges_paid",
        ),
        (
            "unknown endorsement",
            with(&|b| b["items"][0]["endorsements"][0]["code"] = json!("ZZ")),
            "items[0].endorsements[0].code",
        ),
        (
            "NDEC with another",
            with(&|b| b["items"][0]["endorsements"] = json!([{"code": "NDEC"}, {"code": "BB"}])),
            "items[0].endorsements[0].code",
        ),
        (
            "no endorsement",
            with(&|b| b["items"][0]["endorsements"] = json!([])),
            "items[0].endorsements",
        ),
        (
            "bidi in the supporting text",
            with(&|b| b["items"][1]["endorsements"][0]["text"] = json!("price\u{202e}86.4")),
            "items[1].endorsements[0].text",
        ),
        (
            "supplied item missing",
            with(&|b| {
                b["items"].as_array_mut().unwrap().pop();
            }),
            "items",
        ),
        (
            "line twice",
            with(&|b| b["items"][1]["line"] = json!(1)),
            "items[1].line",
        ),
        (
            "no such line",
            with(&|b| b["items"][1]["line"] = json!(9)),
            "items[1].line",
        ),
    ] {
        let (status, problem) = claim(&app, &id, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {problem}");
        assert_eq!(problem["field"], field, "{why}: {problem}");
    }
    let (_, read) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.pharmacist())
        .await;
    assert_eq!(status_of(&read), "0006", "{read}");
    assert!(read["claim"].is_null());
}

#[tokio::test]
async fn an_item_not_supplied_is_not_claimed() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    let (status, body) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "one",
            &json!({"items": [{"line": 1, "outcome": "complete"},
                              {"line": 2, "outcome": "not_dispensed", "reason": "0001"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, problem) = claim(&app, &id, &claim_both_supplied()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["field"], "items[1].line", "{problem}");
    let (status, claimed) = claim(&app, &id, &claim_for(&body)).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["claim"]["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_claim_is_amended_within_the_claim_window_and_not_after() {
    let app = TestApp::builder()
        .flags(["--claim-window", "1d"])
        .spawn()
        .await;
    let id = app.dispensed_default().await;
    let (status, first) = claim(&app, &id, &claim_both_supplied()).await;
    assert_eq!(status, StatusCode::OK, "{first}");

    app.advance_clock(3600).await;
    let (status, amended) = claim(&app, &id, &paid_with_endorsements()).await;
    assert_eq!(status, StatusCode::OK, "{amended}");
    assert_eq!(amended["claim"]["exemption"]["code"], "0001");
    assert_eq!(amended["claim"]["claimed_at"], first["claim"]["claimed_at"]);
    assert!(amended["claim"]["amended_at"].is_string(), "{amended}");
    let (_, history) = app
        .get(
            &format!("/api/v1/prescriptions/{id}/history"),
            &app.prescriber(),
        )
        .await;
    assert!(
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["action"] == "claim-amended"),
        "{history}"
    );

    app.advance_clock(24 * 3600).await;
    let (status, problem) = claim(&app, &id, &claim_both_supplied()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (_, read) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.pharmacist())
        .await;
    assert_eq!(
        read["claim"], amended["claim"],
        "an amendment after the window changed it"
    );
}
