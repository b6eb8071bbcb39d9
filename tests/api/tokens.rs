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

/// The peak resident memory of process `pid` so far (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("VmHWM in {status}"));
    kib / 1024
}

/// Issue 21 item 4: a `token.png?dpi=2400` render holds about 55 MB, and every request rendered
/// at once (64 concurrent requests took the service to 2.7 GB). Renders now take turns
/// (`--max-renders`, here 1), so four concurrent requests stay near one render's worth.
/// Measured on the real binary's peak resident memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_high_resolution_renders_take_turns() {
    use prescrypt_testkit::{PRESCRIBER, Service, prescrypt_bin};
    let service = Service::builder(prescrypt_bin!())
        .flags(["--request-timeout", "600s", "--max-renders", "1"])
        .start();
    let endpoint = service.endpoint();
    let prescriber = service.token(
        prescrypt::auth::Role::Prescriber,
        PRESCRIBER_ORG,
        PRESCRIBER,
    );
    let (status, created) = endpoint
        .post("/api/v1/prescriptions", &prescriber, &new_prescription())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!(
        "/api/v1/prescriptions/{}/token.png?dpi=2400",
        created["id"].as_str().unwrap()
    );
    let pid = service.pid().unwrap();
    let before = peak_rss_mib(pid);
    // Unoptimised renders are slow, the more so on a loaded machine.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .unwrap();
    let renders: Vec<_> = (0..4)
        .map(|_| {
            let request = client.get(endpoint.url(&path)).bearer_auth(&prescriber);
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                (response.status(), response.bytes().await.unwrap().len())
            })
        })
        .collect();
    for render in renders {
        let (status, size) = render.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(size > 1000, "{size} bytes");
    }
    let peak = peak_rss_mib(pid);
    // One render at a time: about 55 MiB above what the service held before; four at once would
    // be over 200 MiB.
    assert!(
        peak < before + 120,
        "peak {peak} MiB, {before} MiB before the renders"
    );
}
