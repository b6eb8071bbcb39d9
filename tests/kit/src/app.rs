//! The service in-process, on port 0 of loopback, on a thread and tokio runtime of its own.

use std::ffi::OsString;
use std::ops::Deref;
use std::path::PathBuf;

use clap::Parser;
use prescrypt::auth::Role;
use prescrypt::config::ServeConfig;
use prescrypt::startup::Application;
use prescrypt::store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::http::Endpoint;

/// The flags of `prescrypt serve`, parsed as the binary parses them; a later flag overrides an
/// earlier one, so a test's flags override the kit's.
#[derive(Debug, Parser)]
#[command(name = "prescrypt-serve", args_override_self = true)]
struct ServeFlags {
    #[command(flatten)]
    config: ServeConfig,
}

/// `prescrypt serve --dev`: the kit's apps trust the development issuer whose tokens the tests
/// mint, and accept one-step creates (see [`TestAppBuilder::production`]).
pub(crate) const DEV_FLAG: &str = "--dev";

/// Builds a [`TestApp`]: a temp dir, a fresh database (see [`crate::fresh_database_url`]), keys
/// in the temp dir, and the defaults of `prescrypt serve` except for what tests need:
/// port 0, two workers, `--dev`, the metrics listener on another port 0, and the brute-force
/// throttle off (tests make many failed lookups).
#[derive(Debug)]
pub struct TestAppBuilder {
    dir: TempDir,
    database_url: Option<String>,
    keys_dir: PathBuf,
    flags: Vec<OsString>,
    dev: bool,
}

impl TestAppBuilder {
    /// Serve this database instead of a fresh one.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Keep the keys here instead of in the app's temp dir.
    pub fn keys_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.keys_dir = dir.into();
        self
    }

    /// Without `--dev` (the kit's default), as in production: every prescription must carry its
    /// prescriber's signature, and bearer tokens are trusted only from a configured identity
    /// provider. The kit configures one (`--jwks-file`) whose key is the development issuer's,
    /// so [`TestApp::token`] still works; a test's own `--jwks-file` or `--jwks-url` replaces it.
    pub fn production(mut self) -> Self {
        self.dev = false;
        self
    }

    /// More `prescrypt serve` flags, e.g. `["--max-in-flight", "4"]`.
    pub fn flags<I, S>(mut self, flags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.flags.extend(flags.into_iter().map(Into::into));
        self
    }

    /// The configuration the app will be built from (creates the fresh database once).
    pub fn config(&mut self) -> ServeConfig {
        let database_url = self
            .database_url
            .get_or_insert_with(|| crate::fresh_database_url(self.dir.path()))
            .clone();
        let mut argv: Vec<OsString> = [
            "prescrypt-serve",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--throttle-org-failures",
            "0",
            "--throttle-addr-failures",
            "0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--database-url",
            database_url.as_str(),
            "--keys-dir",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        argv.push(self.keys_dir.clone().into());
        let own_jwks_url = self.flags.iter().any(|flag| flag == "--jwks-url");
        if self.dev {
            argv.push(DEV_FLAG.into());
        } else if !own_jwks_url {
            let issuer = prescrypt::keys::dev_issuer(&self.keys_dir)
                .unwrap_or_else(|e| panic!("the issuer key in {}: {e:#}", self.keys_dir.display()));
            let jwks = serde_json::json!({"keys": [issuer.jwk().expect("the issuer's JWK")]});
            let path = self.dir.path().join("idp-jwks.json");
            std::fs::write(&path, jwks.to_string()).expect("write the identity provider's JWKS");
            argv.extend([
                "--jwks-file".into(),
                path.into_os_string(),
                "--jwks-issuer".into(),
                prescrypt::auth::DEV_ISSUER.into(),
            ]);
        }
        argv.extend(self.flags.iter().cloned());
        ServeFlags::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("prescrypt serve {argv:?}: {e}"))
            .config
    }

    /// Builds the app and runs it on a thread and runtime of its own, so that dropping the
    /// [`TestApp`] can stop it and wait until its workers (and their database connections) are
    /// gone, whatever happens to the test's runtime.
    pub async fn spawn(mut self) -> TestApp {
        let config = self.config();
        let database_url = config.store.database_url.clone();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("prescrypt-test-app".into())
            .spawn(move || serve_on_own_runtime(config, started_tx))
            .expect("a thread for the app");
        let started = match started_rx.await {
            Ok(Ok(started)) => started,
            Ok(Err(error)) => panic!("{error}"),
            Err(_) => panic!(
                "the app's thread ended before it started: {:?}",
                thread.join()
            ),
        };
        TestApp {
            endpoint: Endpoint::new(
                started.address,
                reqwest::Client::builder()
                    .pool_max_idle_per_host(64)
                    .build()
                    .expect("HTTP client"),
            )
            .with_metrics(started.metrics_address),
            database_url,
            keys_dir: self.keys_dir,
            store: started.store,
            server: started.server,
            thread: Some(thread),
            dir: self.dir,
        }
    }
}

/// What the app's thread hands back once the app listens.
struct Started {
    address: String,
    metrics_address: Option<String>,
    store: Store,
    server: actix_web::dev::ServerHandle,
}

fn serve_on_own_runtime(
    config: ServeConfig,
    started: tokio::sync::oneshot::Sender<Result<Started, String>>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the app");
    runtime.block_on(async move {
        let app = match Application::build(&config) {
            Ok(app) => app,
            Err(e) => {
                let _ = started.send(Err(format!("the app builds from {config:?}: {e:#}")));
                return;
            }
        };
        let handed = Started {
            address: app.address().to_owned(),
            metrics_address: app.metrics_address().map(str::to_owned),
            store: app.store(),
            server: app.handle(),
        };
        if started.send(Ok(handed)).is_ok() {
            let _stopped = app.run_until_stopped().await;
        }
    });
}

/// How long dropping a [`TestApp`] waits for its server to stop before giving up on it.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The service running in-process, with its store at hand and HTTP helpers (it dereferences to
/// its [`Endpoint`]).
#[derive(Debug)]
pub struct TestApp {
    endpoint: Endpoint,
    pub dir: TempDir,
    pub store: Store,
    /// What `--database-url` the app was given (SQLite path or PostgreSQL URL).
    pub database_url: String,
    keys_dir: PathBuf,
    server: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestApp {
    /// Stops the server and waits for its thread: a finished test must not keep its database
    /// connections open (on PostgreSQL a suite would run out of connection slots).
    fn drop(&mut self) {
        let stopping = self.server.stop(false);
        let Some(thread) = self.thread.take() else {
            return;
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Completion is reported by the app's own runtime; this thread only waits for it.
            let _ = done_tx.send(thread.join());
        });
        drop(stopping);
        if let Ok(Err(panic)) = done_rx.recv_timeout(STOP_WAIT)
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Deref for TestApp {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys_dir = dir.path().join("keys");
        TestAppBuilder {
            dir,
            database_url: None,
            keys_dir,
            flags: Vec::new(),
            dev: true,
        }
    }

    /// An app with the test defaults (see [`TestAppBuilder`]).
    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.keys_dir.clone()
    }

    /// A bearer token from the app's development issuer.
    pub fn token(&self, role: Role, org: &str, sub: &str) -> String {
        crate::dev_token(&self.keys_dir, role, org, sub)
    }

    pub fn prescriber(&self) -> String {
        self.token(Role::Prescriber, crate::PRESCRIBER_ORG, crate::PRESCRIBER)
    }

    pub fn pharmacist(&self) -> String {
        self.token(Role::Pharmacist, crate::PHARMACY, crate::PHARMACIST)
    }

    pub fn other_pharmacist(&self) -> String {
        self.token(
            Role::Pharmacist,
            crate::OTHER_PHARMACY,
            crate::OTHER_PHARMACIST,
        )
    }

    /// Creates `body` as the prescriber; the 201's body.
    pub async fn create(&self, body: &Value) -> Value {
        let (status, created) = self
            .post("/api/v1/prescriptions", &self.prescriber(), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    pub async fn create_default(&self) -> Value {
        self.create(&crate::new_prescription()).await
    }

    pub async fn release(&self, bearer: &str, token: &str) -> (StatusCode, Value) {
        self.post("/api/v1/release", bearer, &json!({"token": token}))
            .await
    }

    /// A prescription of the default body, created and released to the kit's pharmacy; its ID.
    pub async fn released_default(&self) -> String {
        let created = self.create_default().await;
        let token = created["token"].as_str().expect("token");
        let (status, body) = self.release(&self.pharmacist(), token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        created["id"].as_str().expect("id").to_owned()
    }

    /// [`released_default`](Self::released_default), then both items supplied whole (0006).
    pub async fn dispensed_default(&self) -> String {
        let id = self.released_default().await;
        let (status, body) = self
            .dispense(
                &self.pharmacist(),
                &id,
                "all",
                &json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        id
    }

    /// An administrator (organisation `XA0001`).
    pub fn admin(&self) -> String {
        self.token(Role::Admin, "XA0001", "A0000001")
    }

    /// Moves the service's clock `seconds` forward (`POST /api/v1/dev/clock`, needs `--dev`, the
    /// kit's default); the service's new now.
    pub async fn advance_clock(&self, seconds: i64) -> chrono::DateTime<chrono::Utc> {
        let (status, body) = self
            .post(
                prescrypt::contract::routes::DEV_CLOCK,
                &self.admin(),
                &json!({ "advance_seconds": seconds }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        chrono::DateTime::parse_from_rfc3339(body["now"].as_str().expect("now"))
            .expect("RFC 3339")
            .to_utc()
    }

    pub async fn dispense(
        &self,
        bearer: &str,
        id: &str,
        key: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.post_with(
            &format!("/api/v1/prescriptions/{id}/dispense"),
            bearer,
            body,
            Some(key),
        )
        .await
    }
}
