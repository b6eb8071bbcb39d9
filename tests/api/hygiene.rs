//! Hygiene: security headers on every response, size limits, private key files, and logs at
//! `info` that carry no secret and no patient data (checked on the real `prescrypt serve`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use prescrypt::auth::Role;
use prescrypt::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

use prescrypt_testkit::{PHARMACIST, PRESCRIBER, Service};

use crate::helpers::*;

const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

fn assert_security_headers(response: &reqwest::Response, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            response.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} on {what}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    let prescriber = app.prescriber();
    let requests = [
        ("healthz", app.client.get(app.url("/healthz"))),
        ("jwks", app.client.get(app.url("/.well-known/jwks.json"))),
        (
            "unauthenticated",
            app.client.get(app.url("/api/v1/prescriptions/x")),
        ),
        (
            "a prescription",
            app.client
                .get(app.url(&format!("/api/v1/prescriptions/{id}")))
                .bearer_auth(&prescriber),
        ),
        (
            "a token image",
            app.client
                .get(app.url(&format!("/api/v1/prescriptions/{id}/token.svg")))
                .bearer_auth(&prescriber),
        ),
        ("no such route", app.client.get(app.url("/nothing/here"))),
        (
            "a validation error",
            app.client
                .post(app.url("/api/v1/prescriptions"))
                .bearer_auth(&prescriber)
                .json(&json!({})),
        ),
    ];
    for (what, request) in requests {
        let response = request.send().await.unwrap();
        assert_security_headers(&response, what);
    }
}

#[tokio::test]
async fn oversized_request_heads_are_refused_and_the_server_carries_on() {
    // (Bodies over 64 KiB: 413 `payload-too-large`, tested in bad_input.rs.)
    let app = spawn_app().await;
    // A request head past actix's limit (128 KiB) is refused with 431 before any handler runs
    // (or the connection is closed while the client is still sending it).
    let huge_header = app
        .client
        .get(app.url("/healthz"))
        .header("X-Padding", "p".repeat(200 * 1024))
        .send()
        .await;
    if let Ok(response) = huge_header {
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
    let huge_url = app
        .client
        .get(app.url(&format!("/api/v1/prescriptions/{}", "A".repeat(200 * 1024))))
        .bearer_auth(app.prescriber())
        .send()
        .await;
    if let Ok(response) = huge_url {
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
    app.create_default().await;
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn key_files(keys_dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![keys_dir.join("dev-issuer.pk8")];
    for entry in std::fs::read_dir(keys_dir.join("signing")).unwrap() {
        files.push(entry.unwrap().path());
    }
    files
}

#[tokio::test]
async fn key_files_are_owner_only_and_a_readable_key_is_refused_at_start() {
    let app = spawn_app().await;
    let keys_dir = app.keys_dir();
    assert_eq!(mode_of(&keys_dir), 0o700);
    assert_eq!(mode_of(&keys_dir.join("signing")), 0o700);
    let files = key_files(&keys_dir);
    assert_eq!(files.len(), 2);
    for file in &files {
        assert_eq!(mode_of(file), 0o600, "{}", file.display());
    }

    for file in &files {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let config = TestApp::builder()
            .database_url(app.database_url.clone())
            .keys_dir(&keys_dir)
            .config();
        let refused = Application::build(&config).expect_err("a readable key is refused");
        let message = format!("{refused:#}");
        assert!(message.contains("chmod 600"), "{message}");
        assert!(message.contains(&file.display().to_string()), "{message}");
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = TestApp::builder()
        .database_url(app.database_url.clone())
        .keys_dir(&keys_dir)
        .config();
    Application::build(&config).expect("private again: starts");
}

/// `prescrypt serve` as a child process with JSON logs at `info`.
fn serve(dir: &Path) -> Service {
    Service::builder(prescrypt_testkit::prescrypt_bin!())
        .dir(dir)
        .database_url(dir.join("logs.db").display().to_string())
        .global_flags(["--log-format", "json"])
        .flags(["--throttle-org-failures", "3"])
        .env("RUST_LOG", "info")
        .start()
}

/// Everything the service wrote on stdout and stderr, once it is killed.
fn output_of(mut served: Service) -> String {
    served.kill();
    format!("{}\n{}", served.stdout(), served.log())
}

/// Every way a private key's bytes could be written out.
fn key_encodings(keys_dir: &Path) -> Vec<String> {
    use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL_NOPAD, HEXLOWER, HEXUPPER};
    let mut encodings = Vec::new();
    for file in key_files(keys_dir) {
        let der = std::fs::read(&file).unwrap();
        // PKCS#8 v1 Ed25519: a 16-byte prefix, then the 32-byte seed.
        let seed = &der[der.len() - 32..];
        for bytes in [&der[..], seed] {
            for encoding in [
                &BASE64,
                &BASE64_NOPAD,
                &BASE64URL_NOPAD,
                &HEXLOWER,
                &HEXUPPER,
            ] {
                encodings.push(encoding.encode(bytes));
            }
        }
    }
    encodings
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    bearer: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, url).bearer_auth(bearer);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    read(request.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_at_info_carry_no_secrets_and_no_patient_data() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path());
    let base = served.url.clone();
    let url = |path: &str| format!("{base}{path}");
    let prescriber = served.token(Role::Prescriber, PRESCRIBER_ORG, PRESCRIBER);
    let pharmacist = served.token(Role::Pharmacist, PHARMACY, PHARMACIST);
    let client = reqwest::Client::new();

    // A whole lifecycle.
    let (status, created) = call(
        &client,
        Method::POST,
        url("/api/v1/prescriptions"),
        &prescriber,
        Some(new_prescription()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    for path in [
        format!("/api/v1/prescriptions/{id}"),
        format!("/api/v1/prescriptions/{id}/history"),
        format!("/api/v1/prescriptions/{id}/token.svg"),
    ] {
        let (status, _) = call(&client, Method::GET, url(&path), &prescriber, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let steps = [
        ("/api/v1/release".to_owned(), json!({"token": token}), None),
        (
            format!("/api/v1/prescriptions/{id}/dispense"),
            json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]}),
            Some("log-hygiene-1"),
        ),
        (
            format!("/api/v1/prescriptions/{id}/claim"),
            prescrypt_testkit::claim_both_supplied(),
            None,
        ),
    ];
    for (path, body, key) in steps {
        let (status, answer) = call(
            &client,
            Method::POST,
            url(&path),
            &pharmacist,
            Some(body),
            key,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    }

    // Failures whose error messages would echo what the client sent.
    // One signature character changed (the last one may only carry padding bits).
    let at = prescriber.rfind('.').unwrap() + 10;
    let mut tampered_bearer = prescriber.clone();
    let flipped = if &prescriber[at..=at] == "A" {
        "B"
    } else {
        "A"
    };
    tampered_bearer.replace_range(at..=at, flipped);
    let mut tampered_token = token.clone();
    let flipped = if &token[60..61] == "A" { "B" } else { "A" };
    tampered_token.replace_range(60..61, flipped);
    let mut wrong_types = new_prescription();
    wrong_types["patient"]["nhs_number"] = json!(9_434_765_919_u64);
    wrong_types["patient"]["birth_date"] = json!(19_700_131);
    wrong_types["items"][0]["quantity"] = json!("Paracetamol 500mg tablets");
    let mut bad_nhs = new_prescription();
    bad_nhs["patient"]["nhs_number"] = json!("9434765918");
    let mut unknown_field = new_prescription();
    unknown_field["patient"]["Jane Smith 1970-01-31"] = json!(true);
    let failures = [
        (
            Method::GET,
            format!("/api/v1/prescriptions/{id}"),
            tampered_bearer.clone(),
            None,
        ),
        (
            Method::POST,
            "/api/v1/prescriptions".into(),
            prescriber.clone(),
            Some(wrong_types),
        ),
        (
            Method::POST,
            "/api/v1/prescriptions".into(),
            prescriber.clone(),
            Some(bad_nhs),
        ),
        (
            Method::POST,
            "/api/v1/prescriptions".into(),
            prescriber.clone(),
            Some(unknown_field),
        ),
        (
            Method::GET,
            format!("/api/v1/prescriptions/{token}"),
            pharmacist.clone(),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/prescriptions/{tampered_token}"),
            pharmacist.clone(),
            None,
        ),
    ];
    for (method, path, bearer, body) in failures {
        let (status, _) = call(&client, method, url(&path), &bearer, body, None).await;
        assert!(status.is_client_error(), "{path}: {status}");
    }
    // Enough failed releases to throttle the pharmacy (a warning logged inside the request).
    for _ in 0..5 {
        let body = json!({"token": tampered_token});
        let (status, _) = call(
            &client,
            Method::POST,
            url("/api/v1/release"),
            &pharmacist,
            Some(body),
            None,
        )
        .await;
        assert!(status.is_client_error());
    }

    let logs = output_of(served);
    assert!(
        logs.contains("\"serving\""),
        "the logs are JSON at info: {logs}"
    );
    assert!(
        logs.contains("throttling"),
        "request-time warnings are logged: {logs}"
    );

    let mut secrets = vec![
        prescriber.clone(),
        pharmacist.clone(),
        tampered_bearer,
        token.clone(),
        tampered_token,
        token[28..].to_owned(),
        "9434765919".into(),
        "943 476 5919".into(),
        "9434765918".into(),
        "Jane Smith".into(),
        "1970-01-31".into(),
        "19700131".into(),
        "Paracetamol".into(),
        "Amoxicillin".into(),
        "four times a day".into(),
    ];
    // The signature halves of the bearer tokens on their own.
    for jwt in [&prescriber, &pharmacist] {
        secrets.push(jwt.rsplit('.').next().unwrap().to_owned());
    }
    secrets.extend(key_encodings(&dir.path().join("keys")));
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "the logs contain {secret:?}:\n{logs}"
        );
    }
}

#[tokio::test]
async fn the_sqlite_database_and_its_journal_are_owner_only_from_the_first_byte() {
    let app = spawn_app().await;
    if prescrypt::store::Backend::of(&app.database_url) != prescrypt::store::Backend::Sqlite {
        return; // The PostgreSQL run: the server's files are the cluster's business.
    }
    app.create_default().await;
    let database = Path::new(&app.database_url);
    for file in [
        database.to_path_buf(),
        PathBuf::from(format!("{}-wal", app.database_url)),
    ] {
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
    }
}
