//! `/readyz` follows the database: 503 while PostgreSQL is down, 200 again by itself once it is
//! back, and requests succeed without restarting the service.

use std::time::{Duration, Instant};

use prescrypt::auth::Role;
use reqwest::StatusCode;

use crate::instance::{Instance, new_prescription, token};
use crate::pg::{Cluster, require_postgres};

async fn wait_for_ready(service: &Instance, want: StatusCode, within: Duration) -> StatusCode {
    let started = Instant::now();
    loop {
        let status = service
            .client
            .get(service.url("/readyz"))
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
    let service = Instance::start("readiness", &url, &keys, &["--db-timeout", "2s"]);
    let prescriber = token(&keys, Role::Prescriber, "A83008", "G1234567");

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
    let ((status, problem), _) = service
        .post(
            "/api/v1/prescriptions",
            &prescriber,
            &new_prescription(None),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");

    cluster.restart();
    assert_eq!(
        wait_for_ready(&service, StatusCode::OK, Duration::from_secs(30)).await,
        StatusCode::OK,
        "log: {}",
        service.log.display()
    );
    let ((status, created), _) = service
        .post(
            "/api/v1/prescriptions",
            &prescriber,
            &new_prescription(None),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}
