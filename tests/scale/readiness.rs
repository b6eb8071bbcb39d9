//! `/readyz` follows the database: 503 while PostgreSQL is down, 200 again by itself once it is
//! back, and requests succeed without restarting the service.

use std::time::{Duration, Instant};

use prescrypt::auth::Role;
use reqwest::StatusCode;

use prescrypt_testkit::{Service, dev_token, new_prescription};

use crate::instance;
use crate::pg::{Cluster, require_postgres};

async fn wait_for_ready(service: &Service, want: StatusCode, within: Duration) -> StatusCode {
    let started = Instant::now();
    loop {
        let endpoint = service.endpoint();
        let status = endpoint
            .client
            .get(endpoint.url("/readyz"))
            .send()
            .await
            .map(|r| r.status())
            .expect("readyz answers even when the database does not");
        if status == want || started.elapsed() > within {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_database_is_down_and_recovers_by_itself() {
    let Some(bin) = require_postgres("readiness") else {
        return;
    };
    let mut cluster = Cluster::start_primary(&bin);
    let url = cluster.create_database("prescrypt");
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    let service = instance::start("readiness", &url, &keys, &["--db-timeout", "2s"]);
    let prescriber = dev_token(&keys, Role::Prescriber, "A83008", "G1234567");

    assert_eq!(
        wait_for_ready(&service, StatusCode::OK, Duration::ZERO).await,
        StatusCode::OK
    );
    cluster.stop();
    assert_eq!(
        wait_for_ready(
            &service,
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(15)
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, problem) = service
        .endpoint()
        .post("/api/v1/prescriptions", &prescriber, &new_prescription())
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");

    cluster.restart();
    assert_eq!(
        wait_for_ready(&service, StatusCode::OK, Duration::from_secs(30)).await,
        StatusCode::OK,
        "log: {}",
        service.log_path().display()
    );
    let (status, created) = service
        .endpoint()
        .post("/api/v1/prescriptions", &prescriber, &new_prescription())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}
