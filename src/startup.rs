//! Building and running the server: store, keys, authenticator, HTTP listener, expiry sweep.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::api::{self, AppState};
use crate::auth::Authenticator;
use crate::config::ServeConfig;
use crate::keys::{self, KeyRing};
use crate::prescriptions;
use crate::store::Store;

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    address: String,
    server: Server,
    state: Arc<AppState>,
    sweep_interval: std::time::Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        let store = Store::open_with(&config.store_options())?;
        let keys = KeyRing::load_or_create(&config.keys.keys_dir)?;
        let mut auth = Authenticator::new();
        if !config.no_dev_issuer {
            auth.trust_dev_issuer(&keys::dev_issuer(&config.keys.keys_dir)?);
        }
        if let Some(path) = &config.jwks_file {
            let count = auth.trust_jwks_file(path, &config.jwks_issuer)?;
            tracing::info!(count, path = %path.display(), "trusting issuer keys from JWKS file");
        }
        let state = Arc::new(AppState {
            store,
            keys,
            auth,
            metrics: crate::telemetry::metrics_handle(),
        });
        let listener = TcpListener::bind(&config.bind)?;
        let local = listener.local_addr()?;
        let shared = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .configure(api::configure(shared.clone()))
        })
        .listen(listener)?;
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        Ok(Self {
            port: local.port(),
            address: format!("http://{local}"),
            server: server.run(),
            state,
            sweep_interval: config.sweep_interval,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// Serves until the server stops; runs the expiry sweep alongside.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let interval = self.sweep_interval;
        let sweep = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                match store
                    .write(|conn| prescriptions::sweep_expired(conn, 500))
                    .await
                {
                    Ok(0) => {}
                    Ok(expired) => tracing::info!(expired, "expiry sweep"),
                    Err(error) => tracing::warn!(%error, "expiry sweep failed"),
                }
            }
        });
        let result = self.server.await;
        sweep.abort();
        result
    }
}
