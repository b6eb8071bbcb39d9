//! Health, readiness, metrics, the OpenAPI snapshot, the audit chain and the binary's process contract.

use diesel::prelude::*;
use prescrypt::audit::{self, Verification};
use prescrypt_testkit::service::{audit_verify, run_prescrypt};
use prescrypt_testkit::{Service, prescrypt_bin};
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
    let ok = audit_verify(prescrypt_bin!(), &app.database_url);
    assert!(ok.success(), "{ok:?}");
    assert!(ok.stdout.contains("intact: 4 entries"), "{ok:?}");

    use prescrypt::store::schema::audit_log::dsl::*;
    diesel::update(audit_log.filter(seq.eq(2)))
        .set(actor.eq("someone-else"))
        .execute(&mut conn)
        .unwrap();
    assert!(matches!(
        audit::verify(&mut conn).unwrap(),
        Verification::Broken { seq: 2, .. }
    ));
    let broken = audit_verify(prescrypt_bin!(), &app.database_url);
    assert!(!broken.success(), "{broken:?}");
    assert!(broken.stdout.contains(" entry 2: "), "{broken:?}");

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
    let keys_arg = keys.display().to_string();
    let token = run_prescrypt(
        prescrypt_bin!(),
        [
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
            keys_arg.as_str(),
        ],
    );
    assert!(token.success(), "{token:?}");
    assert!(
        token.stderr.contains("--dev"),
        "a dev token says where it works: {token:?}"
    );
    let token = token.stdout.trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    // Without --dev and without an identity provider the service refuses to start.
    let database = dir.path().join("db.sqlite").display().to_string();
    let refused = run_prescrypt(
        prescrypt_bin!(),
        [
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            database.as_str(),
            "--keys-dir",
            keys_arg.as_str(),
        ],
    );
    assert!(!refused.success(), "{refused:?}");
    assert!(
        refused.stderr.contains("--jwks-file") && refused.stderr.contains("--dev"),
        "{refused:?}"
    );

    let service = Service::builder(prescrypt_bin!())
        .dir(dir.path())
        .database_url(dir.path().join("db.sqlite").display().to_string())
        .keys_dir(&keys)
        .start();
    assert!(
        service
            .stdout()
            .starts_with("listening on http://127.0.0.1:"),
        "{}",
        service.stdout()
    );
    assert!(
        service.url.starts_with("http://127.0.0.1:"),
        "{}",
        service.url
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, created) = runtime.block_on(service.endpoint().post(
        "/api/v1/prescriptions",
        &token,
        &new_prescription(),
    ));
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metric_labels() {
    let app = spawn_app().await;
    for n in 0..5 {
        let method = reqwest::Method::from_bytes(format!("BREW{n}").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/api/v1/prescriptions"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let text = app.metrics_text().await;
    assert!(!text.contains("BREW"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

/// Issue 21 item 2: `/metrics` answered anyone on the API listener, without a token (and
/// SECURITY.md's nginx example published it). It is served only on the metrics listener
/// (`serve --metrics-listen`), which serves nothing else.
#[tokio::test]
async fn metrics_are_served_only_on_their_own_listener() {
    let app = spawn_app().await;
    for bearer in [None, Some(app.admin())] {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(bearer) = &bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let text = response.text().await.unwrap();
        assert!(!text.contains("prescrypt_"), "{text}");
    }
    let metrics = app.metrics_address.clone().unwrap();
    assert_ne!(metrics, app.address);
    assert!(
        app.metrics_text()
            .await
            .contains("prescrypt_http_requests_total")
    );
    for path in ["/api/v1/openapi.json", "/healthz", "/api/v1/prescriptions"] {
        let response = app
            .client
            .get(format!("{metrics}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
