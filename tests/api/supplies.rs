//! What was handed over: per item, every supply with its product (a substitution flagged), pack
//! details from a scanned GS1 DataMatrix (GTIN, batch, expiry, serial), and owed items supplied
//! later (EPS item status 0004).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// GS1's own example GTIN (valid check digit).
const GTIN: &str = "09501101530003";

fn future_date(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

fn item(prescription: &Value, line: usize) -> &Value {
    &prescription["items"][line - 1]
}

#[tokio::test]
async fn the_product_pack_and_quantity_of_every_supply_are_recorded() {
    let app = spawn_app().await;
    let id = app.released_default().await;
    let expiry = future_date(400);
    let (status, body) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "d1",
            &json!({"items": [
                {"line": 1, "outcome": "complete", "supplied": {
                    "gtin": GTIN, "batch": "AB-12", "expiry": expiry, "serial": "SN0001"}},
                {"line": 2, "outcome": "partial", "quantity": 7, "supplied": {
                    "code": "42222111000001100", "display": "Amoxicillin 500mg capsules (Brand X)"}},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = &item(&body, 1)["supplies"][0];
    assert_eq!(first["quantity"], json!(32.0), "{first}");
    assert_eq!(first["unit"], "tablet");
    assert_eq!(first["code"], "39720311000001101");
    assert_eq!(first["substitution"], false);
    assert_eq!(first["gtin"], GTIN);
    assert_eq!(first["batch"], "AB-12");
    assert_eq!(first["expiry"], expiry.as_str());
    assert_eq!(first["serial"], "SN0001");
    assert!(first["at"].is_string());
    let substituted = &item(&body, 2)["supplies"][0];
    assert_eq!(substituted["substitution"], true, "{substituted}");
    assert_eq!(substituted["code"], "42222111000001100");
    assert_eq!(substituted["quantity"], json!(7.0));
    assert!(substituted.get("batch").is_none(), "{substituted}");

    // The rest later: a second supply of the same item.
    let (status, body) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "d2",
            &json!({"items": [{"line": 2, "outcome": "complete"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let supplies = item(&body, 2)["supplies"].as_array().unwrap();
    assert_eq!(supplies.len(), 2, "{supplies:?}");
    assert_eq!(supplies[1]["quantity"], json!(14.0));
    assert_eq!(supplies[1]["substitution"], false);
    assert_eq!(status_of(&body), "0006");

    // The record is what a later read shows, and the history keeps what was sent.
    let (_, read) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.pharmacist())
        .await;
    assert_eq!(read["items"], body["items"]);
    let (_, history) = app
        .get(
            &format!("/api/v1/prescriptions/{id}/history"),
            &app.prescriber(),
        )
        .await;
    let dispensed = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["action"] == "dispensed")
        .expect("a dispensed event");
    assert_eq!(
        dispensed["detail"]["items"][0]["supplied"]["batch"], "AB-12",
        "{dispensed}"
    );
}

#[tokio::test]
async fn an_owed_item_keeps_the_prescription_open_until_it_is_supplied() {
    let app = spawn_app().await;
    let id = app.released_default().await;
    let (status, body) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "d1",
            &json!({"items": [
                {"line": 1, "outcome": "complete"},
                {"line": 2, "outcome": "owing"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(item(&body, 2)["status"]["code"], "0004", "{body}");
    assert_eq!(item(&body, 2)["supplies"], json!([]));
    assert_eq!(status_of(&body), "0003");

    let (status, body) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "d2",
            &json!({"items": [{"line": 2, "outcome": "complete"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(item(&body, 2)["status"]["code"], "0001");
    assert_eq!(item(&body, 2)["supplies"][0]["quantity"], json!(21.0));
    assert_eq!(status_of(&body), "0006");
}

#[tokio::test]
async fn withdrawing_a_notification_withdraws_its_supplies() {
    let app = spawn_app().await;
    let id = app.released_default().await;
    let (status, body) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "d1",
            &json!({"items": [{"line": 1, "outcome": "complete", "supplied": {"batch": "B1"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(item(&body, 1)["supplies"][0]["batch"], "B1");
    let (status, body) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/dispense/withdraw"),
            &app.pharmacist(),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(item(&body, 1)["supplies"], json!([]));
    assert_eq!(status_of(&body), "0002");
}

#[tokio::test]
async fn a_bad_product_record_is_refused_naming_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    let id = app.released_default().await;
    let line = |supplied: Value| json!({"items": [{"line": 1, "outcome": "complete", "supplied": supplied}]});
    for (key, body, field) in [
        (
            "wrong-check-digit",
            line(json!({"gtin": "09501101530004"})),
            "items[0].supplied.gtin",
        ),
        (
            "short-gtin",
            line(json!({"gtin": "950110153000"})),
            "items[0].supplied.gtin",
        ),
        (
            "expired",
            line(json!({"expiry": "2001-01-31"})),
            "items[0].supplied.expiry",
        ),
        (
            "long-batch",
            line(json!({"batch": "B".repeat(21)})),
            "items[0].supplied.batch",
        ),
        (
            "batch-with-gs",
            line(json!({"batch": "B1\u{1d}21X"})),
            "items[0].supplied.batch",
        ),
        (
            "code-without-display",
            line(json!({"code": "42222111000001100"})),
            "items[0].supplied.display",
        ),
        (
            "not-dispensed-with-product",
            json!({"items": [{"line": 1, "outcome": "not_dispensed", "reason": "0002",
                              "supplied": {"batch": "B1"}}]}),
            "items[0].supplied",
        ),
    ] {
        let (status, problem) = app.dispense(&app.pharmacist(), &id, key, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}: {problem}");
        assert_eq!(problem["field"], field, "{key}: {problem}");
    }
    let (_, read) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.pharmacist())
        .await;
    assert_eq!(status_of(&read), "0002", "{read}");
    assert_eq!(item(&read, 1)["supplies"], json!([]));
}

#[tokio::test]
async fn the_signed_receipt_says_what_was_handed_over_and_claimed() {
    let app = spawn_app().await;
    let id = app.released_default().await;
    let receipt_path = format!("/api/v1/prescriptions/{id}/receipt");
    let (status, problem) = app.get(&receipt_path, &app.pharmacist()).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "nothing dispensed yet: {problem}"
    );

    let (status, body) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "d1",
            &json!({"items": [
                {"line": 1, "outcome": "complete", "supplied": {"gtin": GTIN, "batch": "AB-12"}},
                {"line": 2, "outcome": "complete"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, claimed) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/claim"),
            &app.pharmacist(),
            &claim_both_supplied(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");

    let (status, receipt) = app.get(&receipt_path, &app.pharmacist()).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    let jws = receipt["jws"].as_str().expect("jws");
    let header = jsonwebtoken::decode_header(jws).unwrap();
    assert_eq!(header.typ.as_deref(), Some("prescrypt-receipt+jws"));
    let (_, jwks) = app.get("/.well-known/jwks.json", &app.pharmacist()).await;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let key = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the receipt's key is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let content: Value = jsonwebtoken::decode(
        jws,
        &jsonwebtoken::DecodingKey::from_jwk(key).unwrap(),
        &validation,
    )
    .expect("the receipt verifies with the service's published key")
    .claims;
    assert_eq!(content["id"], id.as_str());
    assert_eq!(content["dispenser"], PHARMACY);
    assert_eq!(content["status"]["code"], "0008");
    assert_eq!(
        content["items"][0]["supplies"][0]["batch"], "AB-12",
        "{content}"
    );
    assert_eq!(content["claim"]["exemption"]["code"], "0004");
    assert_eq!(content["patient"]["nhs_number"], "9434765919");

    // Tampering shows.
    let (head, rest) = jws.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_payload = data_encoding::BASE64URL_NOPAD
        .encode(content.to_string().replace("AB-12", "ZZ-99").as_bytes());
    let forged = format!("{head}.{forged_payload}.{signature}");
    assert!(
        jsonwebtoken::decode::<Value>(
            &forged,
            &jsonwebtoken::DecodingKey::from_jwk(key).unwrap(),
            &validation
        )
        .is_err()
    );
}
