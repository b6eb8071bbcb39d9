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
    body["items"][0]["dosage"] = json!("one daily, apre\u{0301}s repas");
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
