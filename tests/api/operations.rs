//! Health, readiness, metrics, the OpenAPI snapshot, the audit chain and the binary's process contract.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use diesel::prelude::*;
use prescrypt::audit::{self, Verification};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    app.create_default().await;
    let text = app.metrics_text().await;
    assert!(text.contains("prescrypt_http_requests_total"), "{text}");
    assert!(
        text.contains("prescrypt_http_request_duration_seconds"),
        "{text}"
    );
    assert!(
        text.contains("prescrypt_prescriptions{status=\"0001\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_document_matches_the_committed_snapshot() {
    let app = spawn_app().await;
    let served = app.openapi_document().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/openapi.json");
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .expect("tests/api/openapi.json (UPDATE_SNAPSHOTS=1 writes it)");
    assert!(
        pretty == committed,
        "the API changed: review the diff, then UPDATE_SNAPSHOTS=1 cargo test -p prescrypt --test api"
    );
    for route in [
        "/api/v1/prescriptions",
        "/api/v1/release",
        "/api/v1/prescriptions/{id}/dispense",
    ] {
        assert!(served["paths"].get(route).is_some(), "{route}");
    }
}

/// Found by schemathesis (scripts/schemathesis.sh): the document must describe what the server
/// answers, or clients generated from it reject real responses.
#[tokio::test]
async fn openapi_document_describes_the_problems_the_server_answers() {
    let app = spawn_app().await;
    let doc = app.openapi_document().await;
    let problem = "#/components/schemas/Problem";
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for (status, response) in responses {
                let content = response["content"].as_object();
                let refs_problem = |media: &str| {
                    content
                        .and_then(|c| c.get(media))
                        .map(|m| &m["schema"]["$ref"])
                        == Some(&json!(problem))
                };
                assert!(
                    !refs_problem("application/json"),
                    "{method} {path} {status}: a Problem is application/problem+json"
                );
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        refs_problem("application/problem+json"),
                        "{method} {path} {status}"
                    );
                }
            }
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
            if secured {
                for status in ["401", "403"] {
                    assert!(statuses.contains(&status), "{method} {path} {statuses:?}");
                }
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(statuses.contains(&status), "{method} {path} {statuses:?}");
                }
            }
            if path.contains("{id}") {
                for status in ["400", "404"] {
                    assert!(statuses.contains(&status), "{method} {path} {statuses:?}");
                }
            }
            if method == "post" && path.starts_with("/api/v1/") {
                let names: Vec<&str> = operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert!(names.contains(&"Idempotency-Key"), "{path} {names:?}");
                for status in ["409", "422"] {
                    assert!(statuses.contains(&status), "{method} {path} {statuses:?}");
                }
            }
        }
    }
    let token = &doc["paths"]["/api/v1/prescriptions/{id}/token.{format}"]["get"];
    let dpi = token["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "dpi")
        .unwrap();
    assert_eq!(dpi["in"], "query", "{dpi}");
    assert_eq!(dpi["schema"]["minimum"], 150, "{dpi}");
}

#[tokio::test]
async fn audit_chain_verifies_and_catches_edits_and_deletions() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    app.get(&format!("/api/v1/prescriptions/{id}"), &app.prescriber())
        .await;
    app.release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    app.dispense(
        &app.pharmacist(),
        id,
        "k",
        &json!({"items": [{"line": 1, "outcome": "complete"}]}),
    )
    .await;

    let mut conn = app.store.connection().unwrap();
    assert_eq!(
        audit::verify(&mut conn).unwrap(),
        Verification::Intact { entries: 4 }
    );
    let cli = |db: &str| {
        Command::new(env!("CARGO_BIN_EXE_prescrypt"))
            .args(["audit", "verify", "--database-url"])
            .arg(db)
            .output()
            .unwrap()
    };
    let ok = cli(&app.database_url);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact: 4 entries"));

    use prescrypt::store::schema::audit_log::dsl::*;
    diesel::update(audit_log.filter(seq.eq(2)))
        .set(actor.eq("someone-else"))
        .execute(&mut conn)
        .unwrap();
    assert!(matches!(
        audit::verify(&mut conn).unwrap(),
        Verification::Broken { seq: 2, .. }
    ));
    let broken = cli(&app.database_url);
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stdout).contains(" entry 2: "));

    // Put it back, then delete the last entry: the head no longer matches.
    diesel::update(audit_log.filter(seq.eq(2)))
        .set(actor.eq("G1234567"))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(
        audit::verify(&mut conn).unwrap(),
        Verification::Intact { entries: 4 }
    );
    diesel::delete(audit_log.filter(seq.eq(4)))
        .execute(&mut conn)
        .unwrap();
    assert!(matches!(
        audit::verify(&mut conn).unwrap(),
        Verification::Broken { seq: 4, .. }
    ));
    diesel::delete(audit_log.filter(seq.eq(2)))
        .execute(&mut conn)
        .unwrap();
    assert!(matches!(
        audit::verify(&mut conn).unwrap(),
        Verification::Broken { seq: 2, .. }
    ));
}

#[test]
fn the_binary_serves_on_port_0_and_mints_tokens_it_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let token = Command::new(env!("CARGO_BIN_EXE_prescrypt"))
        .args([
            "token",
            "--role",
            "prescriber",
            "--org",
            "A83008",
            "--sub",
            "G1234567",
            "--ttl",
            "10m",
            "--keys-dir",
        ])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    let mut child = Command::new(env!("CARGO_BIN_EXE_prescrypt"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url"])
        .arg(dir.path().join("db.sqlite"))
        .arg("--keys-dir")
        .arg(&keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the listening line")
        .to_owned();
    assert!(address.starts_with("http://127.0.0.1:"), "{address}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{address}/api/v1/prescriptions"))
            .bearer_auth(&token)
            .json(&new_prescription())
            .send()
            .await
            .unwrap()
            .status()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, StatusCode::CREATED);
}
