//! Issue 21: hostile free text, placeholder NHS numbers, loose birth dates and inexact quantities
//! are refused with a problem naming the field; accepted text is signed and stored in NFC.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn assert_refused(app: &TestApp, body: &Value, code: &str, field: &str) {
    let (status, problem) = app
        .post("/api/v1/prescriptions", &app.prescriber(), body)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {problem}");
    assert_eq!(code_of(&problem), code, "{problem}");
    assert_eq!(problem["field"], field, "{problem}");
}

fn signed_payload(jws: &str) -> Value {
    let payload = jws.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn invisible_and_control_characters_in_text_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let hostile = [
        '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200B}', '\u{200D}', '\u{2060}',
        '\u{FEFF}', '\u{2028}', '\u{2029}', '\u{001B}', '\u{0085}', '\u{009B}',
    ];
    let fields: [(&[&str], &str); 5] = [
        (&["patient", "name"], "patient.name"),
        (&["items", "0", "display"], "items[0].display"),
        (&["items", "1", "dosage"], "items[1].dosage"),
        (&["items", "0", "unit"], "items[0].unit"),
        (&["items", "1", "code"], "items[1].code"),
    ];
    for c in hostile {
        for (path, field) in fields {
            let mut body = new_prescription();
            let mut at = &mut body;
            for key in path {
                at = match key.parse::<usize>() {
                    Ok(i) => &mut at[i],
                    Err(_) => &mut at[*key],
                };
            }
            let text = format!("Jane{c}Smith");
            *at = json!(text);
            assert_refused(&app, &body, "invalid-field", field).await;
        }
    }
}

#[tokio::test]
async fn accepted_text_is_signed_and_stored_in_nfc() {
    let app = spawn_app().await;
    let mut body = new_prescription();
    // "Zoë" with a combining diaeresis (NFD) and a decomposed "é" in the dosage.
    body["patient"]["name"] = json!("Zoe\u{0308} Smith");
    body["items"][0]["dosage"] = json!("one daily, apre\u{0300}s repas");
    let created = app.create(&body).await;
    assert_eq!(created["patient"]["name"], "Zo\u{00EB} Smith");
    assert_eq!(
        created["items"][0]["dosage"],
        "one daily, apr\u{00E8}s repas"
    );
    let signed = signed_payload(created["jws"].as_str().unwrap());
    assert_eq!(signed["patient"]["name"], "Zo\u{00EB} Smith");
    assert_eq!(
        signed["items"][0]["dosage"],
        "one daily, apr\u{00E8}s repas"
    );
    let id = created["id"].as_str().unwrap();
    let (status, stored) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.prescriber())
        .await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["patient"]["name"], "Zo\u{00EB} Smith");
}

#[tokio::test]
async fn placeholder_nhs_numbers_are_refused() {
    let app = spawn_app().await;
    for bad in ["0000000000", "000 000 0000", "1111111111"] {
        let mut body = new_prescription();
        body["patient"]["nhs_number"] = json!(bad);
        assert_refused(&app, &body, "invalid-nhs-number", "patient.nhs_number").await;
    }
}

#[tokio::test]
async fn birth_dates_are_strict_and_plausible() {
    let app = spawn_app().await;
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    for bad in [
        "0001-01-01",
        "+1970-01-31",
        "1970-1-31",
        "1970-01-1",
        "1869-12-31",
        " 1970-01-31",
        tomorrow.as_str(),
    ] {
        let mut body = new_prescription();
        body["patient"]["birth_date"] = json!(bad);
        assert_refused(&app, &body, "invalid-field", "patient.birth_date").await;
    }
    let mut body = new_prescription();
    body["patient"]["birth_date"] = json!("1870-01-01");
    assert_eq!(
        app.create(&body).await["patient"]["birth_date"],
        "1870-01-01"
    );
}

/// Posts `body` with its text as given (JSON numbers a `Value` cannot hold, such as `1e400`).
async fn post_text(
    app: &TestApp,
    path: &str,
    body: String,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body);
    request = match key {
        Some(key) => request
            .bearer_auth(app.pharmacist())
            .header("Idempotency-Key", key),
        None => request.bearer_auth(app.prescriber()),
    };
    read(request.send().await.unwrap()).await
}

const REFUSED_QUANTITIES: [&str; 14] = [
    "5e-324",
    "0.30000000000000004",
    "1e400",
    "-1e400",
    "-1",
    "0",
    "0.0001",
    "1000000.001",
    "1e7",
    "\"NaN\"",
    "\"Infinity\"",
    "\"-0.5\"",
    "null",
    "true",
];

#[tokio::test]
async fn inexact_tiny_huge_and_non_numeric_quantities_are_refused_naming_the_field() {
    let app = spawn_app().await;
    for bad in REFUSED_QUANTITIES {
        let mut body = new_prescription();
        body["items"][1]["quantity"] = json!("QUANTITY");
        let text = body.to_string().replace("\"QUANTITY\"", bad);
        let (status, problem) = post_text(&app, "/api/v1/prescriptions", text, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        assert_eq!(code_of(&problem), "invalid-field", "{bad}: {problem}");
        assert_eq!(problem["field"], "items[1].quantity", "{bad}: {problem}");
    }
}

#[tokio::test]
async fn quantities_are_exact_decimals_as_numbers_or_strings() {
    let app = spawn_app().await;
    let mut body = new_prescription();
    body["items"][0]["quantity"] = json!(0.001);
    body["items"][1]["quantity"] = json!("2.50");
    let created = app.create(&body).await;
    assert_eq!(created["items"][0]["quantity"], json!(0.001));
    assert_eq!(created["items"][1]["quantity"], json!(2.5));
    let signed = signed_payload(created["jws"].as_str().unwrap());
    assert_eq!(signed["items"][1]["quantity"], json!(2.5));
}

#[tokio::test]
async fn ten_partial_supplies_of_a_tenth_dispense_an_item_of_one_fully() {
    let app = spawn_app().await;
    let mut body = new_prescription();
    body["items"][0]["quantity"] = json!(1);
    let created = app.create(&body).await;
    let id = created["id"].as_str().unwrap();
    let (status, released) = app
        .release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{released}");
    let path = format!("/api/v1/prescriptions/{id}/dispense");
    for bad in REFUSED_QUANTITIES {
        let text = format!(r#"{{"items":[{{"line":1,"outcome":"partial","quantity":{bad}}}]}}"#);
        let (status, problem) = post_text(&app, &path, text, Some(&format!("bad-{bad}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        assert_eq!(problem["field"], "items[0].quantity", "{bad}: {problem}");
    }
    let tenth = json!({"items": [{"line": 1, "outcome": "partial", "quantity": 0.1}]});
    let mut view = Value::Null;
    for supply in 1..=10 {
        let (status, after) = app
            .dispense(&app.pharmacist(), id, &format!("tenth-{supply}"), &tenth)
            .await;
        assert_eq!(status, StatusCode::OK, "supply {supply}: {after}");
        view = after;
    }
    let item = &view["items"][0];
    assert_eq!(item["dispensed_quantity"], json!(1.0), "{view}");
    assert_eq!(
        item["status"]["code"],
        prescrypt::contract::ItemStatus::FullyDispensed.code(),
        "{view}"
    );
    // Nothing is left to supply: an eleventh tenth is refused, naming the field.
    let (status, problem) = app
        .dispense(&app.pharmacist(), id, "tenth-11", &tenth)
        .await;
    assert!(status.is_client_error(), "{problem}");
}
