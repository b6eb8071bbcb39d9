//! Bad input is a 400/413/415 problem naming the field, never a 500.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(app.prescriber())
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some("application/problem+json".to_owned())
    );
    read(response).await
}

async fn assert_field(app: &TestApp, body: Value, code: &str, field: &str) {
    let (status, problem) = app
        .post("/api/v1/prescriptions", &app.prescriber(), &body)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(code_of(&problem), code, "{problem}");
    assert_eq!(problem["field"], field, "{problem}");
    assert!(problem["type"].as_str().unwrap().ends_with(code));
}

#[tokio::test]
async fn invalid_nhs_numbers_are_rejected_with_the_field() {
    let app = spawn_app().await;
    for bad in [
        "9434765918",
        "943476591",
        "94347659190",
        "abcdefghij",
        "1000000010",
    ] {
        let mut body = new_prescription();
        body["patient"]["nhs_number"] = json!(bad);
        assert_field(&app, body, "invalid-nhs-number", "patient.nhs_number").await;
    }
    let mut spaced = new_prescription();
    spaced["patient"]["nhs_number"] = json!("943 476 5919");
    let created = app.create(&spaced).await;
    assert_eq!(created["patient"]["nhs_number"], "9434765919");
}

#[tokio::test]
async fn field_validation_names_the_field() {
    let app = spawn_app().await;
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|b| b["items"][1]["quantity"] = json!(0)),
            "items[1].quantity",
        ),
        (
            Box::new(|b| b["items"][0]["quantity"] = json!(-3.5)),
            "items[0].quantity",
        ),
        (
            Box::new(|b| b["items"][0]["display"] = json!("  ")),
            "items[0].display",
        ),
        (Box::new(|b| b["items"] = json!([])), "items"),
        (
            Box::new(|b| {
                let item = b["items"][0].clone();
                b["items"] = json!([item.clone(), item.clone(), item.clone(), item.clone(), item]);
            }),
            "items",
        ),
        (
            Box::new(|b| b["patient"]["birth_date"] = json!("31/01/1970")),
            "patient.birth_date",
        ),
        (
            Box::new(|b| b["patient"]["name"] = json!("")),
            "patient.name",
        ),
        (
            Box::new(|b| b["treatment_type"] = json!("0009")),
            "treatment_type",
        ),
        (
            Box::new(|b| b["controlled_drug_schedule"] = json!(1)),
            "controlled_drug_schedule",
        ),
        (Box::new(|b| b["issue_count"] = json!(3)), "issue_count"),
    ];
    for (mutate, field) in cases {
        let mut body = new_prescription();
        mutate(&mut body);
        assert_field(&app, body, "invalid-field", field).await;
    }
    let mut body = new_prescription();
    body["nominated_pharmacy"] = json!("FA-565");
    assert_field(&app, body, "invalid-ods-code", "nominated_pharmacy").await;
    let mut body = new_prescription();
    body["patient"].as_object_mut().unwrap().remove("name");
    assert_field(&app, body, "invalid-field", "name").await;
}

#[tokio::test]
async fn malformed_json_unknown_fields_oversize_and_wrong_content_type() {
    let app = spawn_app().await;
    let (status, problem) = post_raw(
        &app,
        "/api/v1/prescriptions",
        "application/json",
        b"{\"patient\": ".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&problem), "malformed-json");
    assert!(
        problem["detail"].as_str().unwrap().contains("EOF"),
        "{problem}"
    );

    let (status, problem) = post_raw(
        &app,
        "/api/v1/prescriptions",
        "application/json",
        b"{,}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&problem), "malformed-json");

    let mut body = new_prescription();
    body["colour"] = json!("blue");
    assert_field(&app, body, "unknown-field", "colour").await;
    let mut body = new_prescription();
    body["items"][0]["strength"] = json!("500mg");
    assert_field(&app, body, "unknown-field", "strength").await;

    let mut huge = new_prescription();
    huge["patient"]["name"] = json!("x".repeat(70 * 1024));
    let (status, problem) = post_raw(
        &app,
        "/api/v1/prescriptions",
        "application/json",
        serde_json::to_vec(&huge).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code_of(&problem), "payload-too-large");

    let (status, problem) = post_raw(
        &app,
        "/api/v1/prescriptions",
        "text/plain",
        b"hello".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code_of(&problem), "unsupported-media-type");
}

#[tokio::test]
async fn bad_ids_and_tokens() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let ph = app.pharmacist();
    // A wrong check character is a 400 naming the field.
    let (status, problem) = app.release(&ph, "6FOCBU-E776BJ-CMPMTX").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&problem), "invalid-prescription-id");
    assert_eq!(problem["field"], "token");
    let (status, problem) = app
        .get(
            "/api/v1/prescriptions/6FOCBU-E776BJ-CMPMTX",
            &app.prescriber(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&problem), "invalid-prescription-id");
    // A well-formed ID that does not exist: 404.
    let (status, _) = app.release(&ph, "D7AC09-A99968-4BA59C").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A token with a broken format: 400; with a signature that does not verify: 404.
    let (status, problem) = app.release(&ph, "RX1NOTATOKEN").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&problem), "invalid-token");
    let token = created["token"].as_str().unwrap();
    let mut tampered = token.to_owned();
    let at = tampered.len() - 2;
    let replacement = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, replacement);
    assert_ne!(tampered, token);
    let (status, problem) = app.release(&ph, &tampered).await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
        "{status} {problem}"
    );

    // Dispense lines that do not exist or lack what they need.
    app.release(&ph, token).await;
    let id = created["id"].as_str().unwrap();
    for (body, field) in [
        (
            json!({"items": [{"line": 9, "outcome": "complete"}]}),
            "items[0].line",
        ),
        (
            json!({"items": [{"line": 1, "outcome": "partial"}]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [{"line": 1, "outcome": "partial", "quantity": 32.001}]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [{"line": 1, "outcome": "not_dispensed"}]}),
            "items[0].reason",
        ),
        (
            json!({"items": [{"line": 1, "outcome": "not_dispensed", "reason": "0099"}]}),
            "items[0].reason",
        ),
        (
            json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 1, "outcome": "complete"}]}),
            "items[1].line",
        ),
        (json!({"items": []}), "items"),
    ] {
        let (status, problem) = app.dispense(&ph, id, &format!("bad-{field}"), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (status, problem) = app
        .dispense(
            &ph,
            id,
            "x",
            &json!({"items": [{"line": 1, "outcome": "eaten"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, problem) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/return"),
            &ph,
            &json!({"reason": "9999"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "reason");
    // Nothing above changed the prescription.
    let (_, now) = app.get(&format!("/api/v1/prescriptions/{id}"), &ph).await;
    assert_eq!(status_of(&now), "0002");
}

#[tokio::test]
async fn unknown_routes_are_problem_404s() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (_, problem) = read(response).await;
    assert_eq!(code_of(&problem), "not-found");
}

/// Found by schemathesis (`unsupported_method`): a documented path under another method was a
/// 404, as if the resource did not exist.
#[tokio::test]
async fn a_documented_path_under_another_method_is_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (
            reqwest::Method::DELETE,
            "/api/v1/prescriptions",
            "GET, HEAD, POST",
        ),
        (reqwest::Method::GET, "/api/v1/release", "POST"),
        (reqwest::Method::TRACE, "/healthz", "GET, HEAD"),
        (
            reqwest::Method::PUT,
            "/api/v1/prescriptions/ABC/token.pdf",
            "GET, HEAD",
        ),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(app.prescriber())
            .send()
            .await
            .unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(header("allow").as_deref(), Some(allow), "{method} {path}");
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let (status, problem) = read(response).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(code_of(&problem), "method-not-allowed", "{problem}");
    }
    let (status, problem) = app.get("/api/v1/nowhere", &app.prescriber()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
}

/// Issue 21 item 8: `HEAD` on a `GET` route was a 405. It answers like the `GET`, without the
/// body; on a route without `GET` it is still a 405.
#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    let prescriber = app.prescriber();
    for path in [
        format!("/api/v1/prescriptions/{id}"),
        "/healthz".to_owned(),
        "/.well-known/jwks.json".to_owned(),
    ] {
        let got = app
            .client
            .get(app.url(&path))
            .bearer_auth(&prescriber)
            .send()
            .await
            .unwrap();
        let (got_status, got_type) = (got.status(), got.headers()["content-type"].clone());
        let got_length = got.bytes().await.unwrap().len();
        let head = app
            .client
            .head(app.url(&path))
            .bearer_auth(&prescriber)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), got_status, "HEAD {path}");
        assert_eq!(head.headers()["content-type"], got_type, "HEAD {path}");
        let length: usize = head.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, got_length, "HEAD {path}");
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
    let unknown = prescrypt_barcode::PrescriptionId::new(0x00AB_0001, "ZZ999", 1).unwrap();
    let unknown = app
        .client
        .head(app.url(&format!("/api/v1/prescriptions/{unknown}")))
        .bearer_auth(&prescriber)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let post_only = app
        .client
        .head(app.url("/api/v1/release"))
        .bearer_auth(&prescriber)
        .send()
        .await
        .unwrap();
    assert_eq!(post_only.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post_only.headers()["allow"], "POST");
}
