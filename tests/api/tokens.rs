//! The printable token endpoints (prescribing organisation only).

use reqwest::StatusCode;

use crate::helpers::*;

async fn fetch(app: &TestApp, path: &str, bearer: &str) -> (StatusCode, String, Vec<u8>) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

#[tokio::test]
async fn the_prescribing_org_gets_pdf_png_and_svg() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();

    let (status, content_type, pdf) = fetch(
        &app,
        &format!("/api/v1/prescriptions/{id}/token.pdf"),
        &app.prescriber(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/pdf");
    assert!(pdf.starts_with(b"%PDF-"));

    let (status, content_type, png) = fetch(
        &app,
        &format!("/api/v1/prescriptions/{id}/token.png?dpi=300"),
        &app.prescriber(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "image/png");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(width > 100 && height > 100, "{width}x{height}");

    let (status, content_type, svg) = fetch(
        &app,
        &format!("/api/v1/prescriptions/{id}/token.svg"),
        &app.prescriber(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "image/svg+xml");
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.contains("<svg"));
    assert!(svg.contains(id), "the human-readable ID is on the label");

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
            .any(|e| e["action"] == "token-printed")
    );
}

#[tokio::test]
async fn other_roles_get_403_other_practices_404_and_bad_parameters_are_problems() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    app.release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    let other_practice = app.token(prescrypt::auth::Role::Prescriber, "B82005", "G2");
    for (bearer, expected) in [
        // Printing is a prescriber's action: other roles are refused before the lookup.
        (app.pharmacist(), StatusCode::FORBIDDEN),
        (other_practice, StatusCode::NOT_FOUND),
    ] {
        let (status, _, _) = fetch(
            &app,
            &format!("/api/v1/prescriptions/{id}/token.pdf"),
            &bearer,
        )
        .await;
        assert_eq!(status, expected);
    }
    let (status, _, _) = fetch(
        &app,
        &format!("/api/v1/prescriptions/{id}/token.gif"),
        &app.prescriber(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = fetch(
        &app,
        &format!("/api/v1/prescriptions/{id}/token.png?dpi=20"),
        &app.prescriber(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["field"], "dpi");
}
