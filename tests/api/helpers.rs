use prescrypt::auth::{self, Role};
use prescrypt::config::ServeConfig;
use prescrypt::startup::Application;
use prescrypt::store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const PRESCRIBER_ORG: &str = "A83008";
pub const PHARMACY: &str = "FA565";
pub const OTHER_PHARMACY: &str = "FCG71";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
    pub store: Store,
    /// What `--database-url` the app was given (SQLite path or PostgreSQL URL).
    pub database_url: String,
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = ServeConfig::for_test(fresh_database_url(&dir), dir.path().join("keys"));
    spawn_with(config, dir).await
}

/// The environment variable naming a PostgreSQL server to run the suite against
/// (e.g. `postgres://postgres@127.0.0.1:5432/postgres`); unset means embedded SQLite.
pub const PG_ENV: &str = "PRESCRYPT_TEST_DATABASE_URL";

/// A database of its own for one test: a SQLite file in `dir`, or — when [`PG_ENV`] is set —
/// a freshly created database on that PostgreSQL server.
pub fn fresh_database_url(dir: &TempDir) -> String {
    match std::env::var(PG_ENV) {
        Ok(server) if !server.is_empty() => create_pg_database(&server),
        _ => dir.path().join("prescrypt.db").display().to_string(),
    }
}

fn create_pg_database(server: &str) -> String {
    use diesel::{Connection, RunQueryDsl};
    let name = format!("prescrypt_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = diesel::PgConnection::establish(server)
        .unwrap_or_else(|e| panic!("{PG_ENV}={server} is not reachable: {e}"));
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("create test database");
    let (base, _) = server
        .rsplit_once('/')
        .filter(|(base, _)| base.contains("//"))
        .unwrap_or((server, ""));
    format!("{base}/{name}")
}

pub async fn spawn_with(config: ServeConfig, dir: TempDir) -> TestApp {
    let database_url = config.store.database_url.clone();
    let app = Application::build(&config).expect("app builds");
    let address = app.address().to_owned();
    let store = app.store();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client"),
        dir,
        store,
        database_url,
    }
}

impl TestApp {
    pub fn keys_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("keys")
    }

    pub fn token(&self, role: Role, org: &str, sub: &str) -> String {
        let issuer = prescrypt::keys::dev_issuer(&self.keys_dir()).expect("issuer key");
        auth::mint(&issuer, role, org, sub, chrono::Duration::hours(1)).expect("mint")
    }

    pub fn prescriber(&self) -> String {
        self.token(Role::Prescriber, PRESCRIBER_ORG, "G1234567")
    }

    pub fn pharmacist(&self) -> String {
        self.token(Role::Pharmacist, PHARMACY, "P7654321")
    }

    pub fn other_pharmacist(&self) -> String {
        self.token(Role::Pharmacist, OTHER_PHARMACY, "P1111111")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The served OpenAPI document.
    pub async fn openapi_document(&self) -> Value {
        let response = self
            .client
            .get(self.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// The value of one series on `/metrics`, e.g. `prescrypt_shed_total{reason="in-flight"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics_text().await;
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("{series} in {text}"))
            .trim()
            .parse()
            .unwrap()
    }

    pub async fn get(&self, path: &str, bearer: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn post(&self, path: &str, bearer: &str, body: &Value) -> (StatusCode, Value) {
        self.post_with(path, bearer, body, None).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        bearer: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(path))
            .bearer_auth(bearer)
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        read(request.send().await.expect("request")).await
    }

    pub async fn create(&self, body: &Value) -> Value {
        let (status, created) = self
            .post("/api/v1/prescriptions", &self.prescriber(), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    pub async fn create_default(&self) -> Value {
        self.create(&new_prescription()).await
    }

    pub async fn release(&self, bearer: &str, token: &str) -> (StatusCode, Value) {
        self.post("/api/v1/release", bearer, &json!({"token": token}))
            .await
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

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

pub fn new_prescription() -> Value {
    json!({
        "patient": {"nhs_number": "9434765919", "name": "Jane Smith", "birth_date": "1970-01-31"},
        "items": [
            {"code": "39720311000001101", "display": "Paracetamol 500mg tablets", "quantity": 32,
             "unit": "tablet", "dosage": "2 four times a day"},
            {"code": "39113611000001102", "display": "Amoxicillin 500mg capsules", "quantity": 21,
             "unit": "capsule", "dosage": "1 three times a day"}
        ]
    })
}

pub fn status_of(prescription: &Value) -> &str {
    prescription["status"]["code"]
        .as_str()
        .expect("status code")
}

pub fn code_of(problem: &Value) -> &str {
    problem["code"].as_str().unwrap_or("<no code>")
}

// Forged and faulty bearer tokens (the authentication tests and the authorisation matrix).

/// Claims of `role`/`org`/`sub`, issued by `iss` for `aud`, expiring `exp_offset` seconds from now.
pub fn claims_as(
    role: Role,
    org: &str,
    sub: &str,
    iss: &str,
    aud: &str,
    exp_offset: i64,
) -> auth::Claims {
    let now = chrono::Utc::now().timestamp();
    auth::Claims {
        sub: sub.into(),
        role,
        org: org.into(),
        iss: iss.into(),
        aud: aud.into(),
        iat: now,
        exp: now + exp_offset,
    }
}

/// Whatever claims are given, correctly signed by the development issuer key the app trusts.
pub fn signed_by_dev_issuer(app: &TestApp, claims: &auth::Claims) -> String {
    let issuer = prescrypt::keys::dev_issuer(&app.keys_dir()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(issuer.kid.as_str().to_owned());
    jsonwebtoken::encode(&header, claims, &issuer.encoding).unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// `alg: none` naming the trusted issuer's kid: the claims with an empty signature.
pub fn alg_none(app: &TestApp, claims: &auth::Claims) -> String {
    let issuer = prescrypt::keys::dev_issuer(&app.keys_dir()).unwrap();
    let header = json!({"alg": "none", "typ": "JWT", "kid": issuer.kid.as_str()});
    let payload = serde_json::to_vec(claims).unwrap();
    format!(
        "{}.{}.",
        b64(&serde_json::to_vec(&header).unwrap()),
        b64(&payload)
    )
}

/// HS256 keyed with a public key's bytes under that key's kid: the classic key-confusion attack.
pub fn hs256_keyed_with(public_key: &[u8], kid: &str, claims: &auth::Claims) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(public_key),
    )
    .unwrap()
}
