//! Primary + streaming hot standby: reads are served by the standby without losing the caller's
//! own writes; after the primary is lost and the standby promoted, a service restarted against
//! it carries on with every committed prescription.

use std::time::Duration;

use prescrypt::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

use prescrypt_testkit::service::audit_verify;
use prescrypt_testkit::{dev_token, new_prescription, prescrypt_bin};

use crate::instance;
use crate::pg::{Cluster, require_postgres};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_come_from_the_standby_and_the_service_survives_its_promotion() {
    let Some(bin) = require_postgres("replica") else {
        return;
    };
    let mut primary = Cluster::start_primary(&bin);
    let primary_url = primary.create_database("prescrypt");
    let standby = Cluster::start_standby_of(&primary);
    let standby_url = standby.url("prescrypt");
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    let mut service = instance::start(
        "primary-with-replica",
        &primary_url,
        &keys,
        &["--read-database-url", &standby_url],
    );

    let prescriber = dev_token(&keys, Role::Prescriber, "A83008", "G1234567");
    let pharmacist = dev_token(&keys, Role::Pharmacist, "FA565", "P7654321");
    let (status, created) = service
        .endpoint()
        .post("/api/v1/prescriptions", &prescriber, &new_prescription())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/prescriptions/{id}");

    // Read-your-writes: every GET straight after the pharmacy's own change shows that change,
    // whichever server answers it.
    let (status, released) = service
        .endpoint()
        .post(
            "/api/v1/release",
            &pharmacist,
            &json!({"token": created["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{released}");
    for _ in 0..20 {
        let (status, seen) = service.endpoint().get(&path, &pharmacist).await;
        assert_eq!(status, StatusCode::OK, "{seen}");
        assert_eq!(
            seen["dispenser"], "FA565",
            "a just-written release never vanishes"
        );
        assert_eq!(seen["status"]["code"], "0002");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, history) = service
        .endpoint()
        .get(&format!("{path}/history"), &pharmacist)
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let actions: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["created", "released"]);
    let from_standby = service
        .endpoint()
        .metric_sum("prescrypt_reads_total", "source=\"replica\"")
        .await;
    assert!(
        from_standby >= 1.0,
        "the standby served no read (log: {})",
        service.log_path().display()
    );

    // Lose the primary, promote the standby, restart the service against it.
    service.kill();
    primary.stop();
    standby.promote();
    let promoted = instance::start("after-promotion", &standby_url, &keys, &[]);
    let (status, seen) = promoted.endpoint().get(&path, &pharmacist).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["dispenser"], "FA565");
    let (status, dispensed) = promoted.endpoint().post_with(&format!("{path}/dispense"), &pharmacist, &json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]}), Some("after-failover")).await;
    assert_eq!(status, StatusCode::OK, "{dispensed}");
    assert_eq!(dispensed["status"]["code"], "0006");
    let (status, fresh) = promoted
        .endpoint()
        .post("/api/v1/prescriptions", &prescriber, &new_prescription())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    let (status, ready) = promoted.endpoint().get("/readyz", &pharmacist).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    let report = audit_verify(prescrypt_bin!(), &standby_url);
    assert!(report.success(), "{report:?}");
}
