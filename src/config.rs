//! Configuration: clap flags with environment fallbacks (`PRESCRYPT_*`).

use std::path::PathBuf;
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
    /// A JWKS file of an identity provider whose bearer tokens are trusted.
    #[arg(long, env = "PRESCRYPT_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
    /// The `iss` that tokens signed by the JWKS file's keys must carry.
    #[arg(long, env = "PRESCRYPT_JWKS_ISSUER", default_value = "prescrypt-idp")]
    pub jwks_issuer: String,
    /// Do not trust the local development issuer key (production).
    #[arg(long, env = "PRESCRYPT_NO_DEV_ISSUER")]
    pub no_dev_issuer: bool,
    /// How often the expiry sweep runs, e.g. `60s`, `5m`.
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
    #[command(flatten)]
    pub guard: crate::guard::GuardArgs,
    #[command(flatten)]
    pub audit_checkpoints: crate::audit::checkpoint::CheckpointArgs,
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
    /// A configuration for tests and benchmarks: port 0 on loopback, the given paths.
    pub fn for_test(database_url: String, keys_dir: PathBuf) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            store: StoreArgs { database_url },
            keys: KeysArgs { keys_dir },
            jwks_file: None,
            jwks_issuer: "prescrypt-idp".into(),
            no_dev_issuer: false,
            sweep_interval: Duration::from_secs(60),
            workers: Some(2),
            read_database_url: None,
            db_pool_size: 16,
            db_timeout: Duration::from_secs(5),
            guard: crate::guard::GuardArgs::for_test(),
            audit_checkpoints: crate::audit::checkpoint::CheckpointArgs::default(),
        }
    }

    /// What the store needs from this configuration.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            url: self.store.database_url.clone(),
            read_url: self.read_database_url.clone(),
            pool_size: self.db_pool_size,
            checkout_timeout: self.db_timeout,
            write_queue: self.guard.write_queue,
        }
    }
}
