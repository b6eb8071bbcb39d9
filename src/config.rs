//! Configuration: clap flags with environment fallbacks (`PRESCRYPT_*`).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the data lives.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// SQLite path (default) or a `postgres://` URL.
    #[arg(long, env = "PRESCRYPT_DATABASE_URL", default_value = "./prescrypt.db")]
    pub database_url: String,
}

/// Where the keys live.
#[derive(Debug, Clone, clap::Args)]
pub struct KeysArgs {
    /// Directory of the signing keys and the development issuer key (created 0700, files 0600).
    #[arg(long, env = "PRESCRYPT_KEYS_DIR", default_value = "./prescrypt-keys")]
    pub keys_dir: PathBuf,
}

/// `prescrypt serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "PRESCRYPT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub keys: KeysArgs,
    /// A JWKS file of an identity provider whose bearer tokens are trusted; re-read every
    /// `--jwks-refresh`.
    #[arg(long, env = "PRESCRYPT_JWKS_FILE", conflicts_with = "jwks_url")]
    pub jwks_file: Option<PathBuf>,
    /// The identity provider's JWKS at an `https://` URL, fetched at start and every
    /// `--jwks-refresh`; the last good copy is kept (and used at start when the provider is
    /// unreachable) in the keys directory.
    #[arg(long, env = "PRESCRYPT_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// A PEM file of extra root certificates for `--jwks-url` (a private identity provider's CA).
    #[arg(long, env = "PRESCRYPT_JWKS_CA", requires = "jwks_url")]
    pub jwks_ca: Option<PathBuf>,
    /// How often the identity provider's JWKS is re-read: a new key is trusted and a withdrawn
    /// key stops verifying within this time, without a restart.
    #[arg(long, env = "PRESCRYPT_JWKS_REFRESH", default_value = "60s", value_parser = parse_interval)]
    pub jwks_refresh: Duration,
    /// The `iss` that tokens signed by the JWKS's keys must carry.
    #[arg(long, env = "PRESCRYPT_JWKS_ISSUER", default_value = "prescrypt-idp")]
    pub jwks_issuer: String,
    /// The longest lifetime (`exp - iat`) of a bearer token this service accepts, e.g. `12h`.
    #[arg(long, env = "PRESCRYPT_MAX_TOKEN_LIFETIME", default_value = "12h", value_parser = parse_interval)]
    pub max_token_lifetime: Duration,
    /// Development mode, never for production: trust the local development issuer's bearer
    /// tokens (`prescrypt token`) and accept prescriptions without a prescriber signature.
    #[arg(long, env = "PRESCRYPT_DEV")]
    pub dev: bool,
    /// How long a prepared prescription waits for its prescriber's signature, e.g. `10m`.
    #[arg(long, env = "PRESCRYPT_PREPARED_TTL", default_value = "10m", value_parser = parse_interval)]
    pub prepared_ttl: Duration,
    /// How long an `Idempotency-Key` and the response kept for its replay are kept, e.g. `24h`.
    #[arg(long, env = "PRESCRYPT_IDEMPOTENCY_RETENTION", default_value = "24h", value_parser = parse_interval)]
    pub idempotency_retention: Duration,
    /// A dispensed or not-dispensed prescription not claimed within this becomes No-Claimed
    /// (0009), e.g. `180d`.
    #[arg(long, env = "PRESCRYPT_CLAIM_WINDOW", default_value = "180d", value_parser = parse_interval)]
    pub claim_window: Duration,
    /// A finished prescription (expired, cancelled, claimed, no-claimed) and its patient data are
    /// deleted this long after it finished, e.g. `730d`. The audit log keeps its entries.
    #[arg(long, env = "PRESCRYPT_RETENTION", default_value = "730d", value_parser = parse_interval)]
    pub retention: Duration,
    /// How often the housekeeping jobs run (expiry, waiting issues made ready, no-claim,
    /// retention, idempotency records), e.g. `60s`, `5m`.
    #[arg(long, env = "PRESCRYPT_SWEEP_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub sweep_interval: Duration,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "PRESCRYPT_WORKERS")]
    pub workers: Option<usize>,
    /// A PostgreSQL hot standby for GET prescription/history; a read goes there only when the
    /// standby has replayed everything the primary had written when the read began.
    #[arg(long, env = "PRESCRYPT_READ_DATABASE_URL")]
    pub read_database_url: Option<String>,
    /// Most database connections per pool (PostgreSQL).
    #[arg(long, env = "PRESCRYPT_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// How long a request waits for a database connection before answering 503, e.g. `5s`.
    #[arg(long, env = "PRESCRYPT_DB_TIMEOUT", default_value = "5s", value_parser = parse_interval)]
    pub db_timeout: Duration,
    /// Serve `/metrics` (Prometheus) on this address, a listener of its own, e.g.
    /// `127.0.0.1:9464`; port 0 picks a free port (printed on stdout). Without it there is no
    /// `/metrics`: the API listener never serves it.
    #[arg(long, env = "PRESCRYPT_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Most token renders (`token.pdf|png|svg`) at once; the others wait for a turn (within
    /// `--request-timeout`). Each render of a 2400 dpi PNG holds about 55 MB.
    #[arg(long, env = "PRESCRYPT_MAX_RENDERS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_renders: u16,
    #[command(flatten)]
    pub guard: GuardArgs,
    #[command(flatten)]
    pub audit_checkpoints: CheckpointArgs,
}

pub(crate) fn parse_interval(text: &str) -> Result<Duration, String> {
    let duration = crate::auth::parse_ttl(text)?;
    duration
        .to_std()
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("a positive duration: {text}"))
}

impl ServeConfig {
    /// What the store needs from this configuration.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            url: self.store.database_url.clone(),
            read_url: self.read_database_url.clone(),
            pool_size: self.db_pool_size,
            checkout_timeout: self.db_timeout,
            write_queue: self.guard.write_queue,
            ..crate::store::StoreOptions::new(&self.store.database_url)
        }
    }
}

/// Capacity, time and abuse limits of `prescrypt serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct GuardArgs {
    /// Most requests handled at once; past it a request is answered 503 + Retry-After at once
    /// (`/healthz` and `/readyz` are exempt).
    #[arg(long, env = "PRESCRYPT_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// Most writes waiting for the SQLite writer thread; past it a write is answered 503.
    #[arg(long, env = "PRESCRYPT_WRITE_QUEUE", default_value_t = 1024)]
    pub write_queue: usize,
    /// The share of `--max-in-flight` one organisation may hold, from 0 (exclusive) to 1, e.g.
    /// `0.25` (at least one request); past it that organisation's requests get 503 while others
    /// still get through. Requests without a valid bearer token share one such allowance.
    #[arg(long, env = "PRESCRYPT_MAX_IN_FLIGHT_SHARE", default_value = "0.25", value_parser = parse_share)]
    pub max_in_flight_share: f64,
    /// How long a client has to send the request body once its head is read (else 408
    /// `body-timeout`). A body is read before the request takes one of `--max-in-flight`.
    #[arg(long, env = "PRESCRYPT_BODY_TIMEOUT", default_value = "5s", value_parser = parse_interval)]
    pub body_timeout: Duration,
    /// Longest a request may take once its body is read before it is answered 503 `timeout`.
    #[arg(long, env = "PRESCRYPT_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_interval)]
    pub request_timeout: Duration,
    /// How long a client has to send the request head once connected (else 408).
    #[arg(long, env = "PRESCRYPT_CLIENT_REQUEST_TIMEOUT", default_value = "5s", value_parser = parse_interval)]
    pub client_request_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    #[arg(long, env = "PRESCRYPT_KEEP_ALIVE", default_value = "5s", value_parser = parse_interval)]
    pub keep_alive: Duration,
    /// Most open connections per worker thread.
    #[arg(long, env = "PRESCRYPT_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Most connections waiting to be accepted (listen backlog).
    #[arg(long, env = "PRESCRYPT_BACKLOG", default_value_t = 1024)]
    pub backlog: u32,
    /// Failed lookups (unknown or invalid prescription ID or token, refusals) one organisation
    /// may make per `--throttle-window` before its lookups get 429; 0 turns this limit off.
    /// Authenticated callers are counted by organisation only, never by address.
    #[arg(long, env = "PRESCRYPT_THROTTLE_ORG_FAILURES", default_value_t = 30)]
    pub throttle_org_failures: u32,
    /// Lookups without a valid bearer token (401) one client address may make per window;
    /// 0 turns it off. Behind a reverse proxy every client has the proxy's address unless
    /// `--trust-forwarded-for` is set.
    #[arg(long, env = "PRESCRYPT_THROTTLE_ADDR_FAILURES", default_value_t = 100)]
    pub throttle_addr_failures: u32,
    /// The window of the failure limits, e.g. `60s`.
    #[arg(long, env = "PRESCRYPT_THROTTLE_WINDOW", default_value = "60s", value_parser = parse_interval)]
    pub throttle_window: Duration,
    /// Take the client address from `Forwarded` / `X-Forwarded-For` (only behind a proxy that
    /// overwrites them; otherwise clients choose their own address).
    #[arg(long, env = "PRESCRYPT_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
}

fn parse_share(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|share| *share > 0.0 && *share <= 1.0)
        .ok_or_else(|| format!("a share above 0 and at most 1: {text}"))
}

impl GuardArgs {
    /// The most requests one organisation may have in flight at once.
    pub fn max_in_flight_per_org(&self) -> usize {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let share = (self.max_in_flight as f64 * self.max_in_flight_share).floor() as usize;
        share.clamp(1, self.max_in_flight.max(1))
    }
}

/// Where checkpoints are written.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckpointFileArgs {
    /// File the signed audit checkpoints are appended to, one JSON line each (created 0600,
    /// fsynced); default `audit-checkpoints.jsonl` in the keys directory. In production put it
    /// beyond the reach of whoever can write the database (another volume, host or append-only
    /// store).
    #[arg(
        long = "audit-checkpoint-file",
        env = "PRESCRYPT_AUDIT_CHECKPOINT_FILE"
    )]
    pub path: Option<PathBuf>,
}

impl CheckpointFileArgs {
    /// The file, given the keys directory.
    pub fn resolve(&self, keys_dir: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| keys_dir.join("audit-checkpoints.jsonl"))
    }
}

/// `prescrypt serve`'s checkpoint settings.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub file: CheckpointFileArgs,
    /// How often the service signs a checkpoint of the audit log, e.g. `5m` (also once at start).
    #[arg(
        long = "audit-checkpoint-interval",
        env = "PRESCRYPT_AUDIT_CHECKPOINT_INTERVAL",
        default_value = "5m",
        value_parser = parse_interval
    )]
    pub interval: Duration,
}

impl Default for CheckpointArgs {
    /// The defaults of the flags (tests, benchmarks).
    fn default() -> Self {
        Self {
            file: CheckpointFileArgs { path: None },
            interval: Duration::from_secs(300),
        }
    }
}
