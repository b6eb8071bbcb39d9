//! Building and running the server: store, keys, authenticator, HTTP listener, expiry sweep,
//! audit checkpoints.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::api::{self, AppState};
use crate::audit::checkpoint;
use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::ServeConfig;
use crate::guard::{self, Guard, QuietRootSpan};
use crate::keys::{self, KeyRing};
use crate::prescriptions;
use crate::prescriptions::Unsigned;
use crate::store::Store;

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    address: String,
    server: Server,
    /// `--metrics-listen`: the metrics listener and its `http://host:port`.
    metrics: Option<(Server, String)>,
    state: Arc<AppState>,
    sweep_interval: std::time::Duration,
    housekeeping: prescriptions::Housekeeping,
    checkpoint_interval: Duration,
    checkpoint_file: std::path::PathBuf,
    /// The identity provider's JWKS, re-read every `jwks_refresh`.
    issuer_keys: Option<(crate::issuer::JwksSource, String, Duration)>,
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
        auth.cap_lifetime(chrono::Duration::from_std(config.max_token_lifetime)?);
        let jwks_source = crate::issuer::JwksSource::from_config(config)?;
        if config.dev {
            tracing::warn!(
                "development mode (--dev): trusting the development issuer's bearer tokens and \
                 accepting prescriptions without a prescriber signature; never in production"
            );
            auth.trust_dev_issuer(&keys::dev_issuer(&config.keys.keys_dir)?);
        } else if jwks_source.is_none() {
            anyhow::bail!(
                "no bearer-token issuer is configured: give --jwks-url or --jwks-file (your \
                 identity provider's keys) or, for a local trial only, run `prescrypt serve --dev`"
            );
        }
        let auth = actix_web::web::Data::new(auth);
        if let Some(source) = &jwks_source {
            load_issuer_keys(source, &auth, &config.jwks_issuer)?;
        }
        let state = Arc::new(AppState {
            store,
            keys,
            auth,
            metrics: crate::telemetry::metrics_handle(),
            unsigned: if config.dev {
                Unsigned::Allowed
            } else {
                Unsigned::Refused
            },
            prepared_ttl: chrono::Duration::from_std(config.prepared_ttl)?,
            clock: Clock::default(),
            renders: Arc::new(tokio::sync::Semaphore::new(usize::from(config.max_renders))),
            dev: config.dev,
            claim_window: chrono::Duration::from_std(config.claim_window)?,
        });
        let shared = state.clone();
        let guard = Guard::new(&config.guard, state.store.clone(), state.clock.clone());
        let mut server = HttpServer::new(move || {
            // The last `wrap` is the outermost: headers on every response, then the span, then
            // the body (read before the request takes a slot), then shedding before anything
            // else is spent on a request. The throttle and the refusal audit wrap the routes
            // themselves (`api::routes`).
            App::new()
                .app_data(guard.clone())
                .wrap(from_fn(guard::time_limit))
                .wrap(from_fn(guard::shed))
                .wrap(from_fn(guard::read_body))
                .wrap(TracingLogger::<QuietRootSpan>::new())
                .wrap(from_fn(guard::security_headers))
                .configure(crate::console::configure)
                .configure(api::configure(shared.clone()))
        })
        .max_connections(config.guard.max_connections)
        .backlog(config.guard.backlog)
        .client_request_timeout(config.guard.client_request_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(config.guard.keep_alive);
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        // actix binds the socket itself so that the backlog applies.
        let server = server.bind(&config.bind)?;
        let local = *server
            .addrs()
            .first()
            .ok_or_else(|| anyhow::anyhow!("{} names no address", config.bind))?;
        let metrics = match &config.metrics_listen {
            Some(listen) => Some(metrics_server(listen, state.clone())?),
            None => None,
        };
        Ok(Self {
            port: local.port(),
            address: format!("http://{local}"),
            server: server.run(),
            metrics,
            state,
            sweep_interval: config.sweep_interval,
            housekeeping: prescriptions::Housekeeping {
                claim_window: chrono::Duration::from_std(config.claim_window)?,
                retention: chrono::Duration::from_std(config.retention)?,
                idempotency_retention: chrono::Duration::from_std(config.idempotency_retention)?,
                batch: 500,
            },
            checkpoint_interval: config.audit_checkpoints.interval,
            checkpoint_file: config.audit_checkpoints.file.resolve(&config.keys.keys_dir),
            issuer_keys: jwks_source
                .map(|source| (source, config.jwks_issuer.clone(), config.jwks_refresh)),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `http://host:port` of the metrics listener (`--metrics-listen`), if there is one.
    pub fn metrics_address(&self) -> Option<&str> {
        self.metrics.as_ref().map(|(_, address)| address.as_str())
    }

    /// Stops the server (its workers, and with them the store's connections) when told to;
    /// `prescrypt serve` stops on a signal instead.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// The service's clock (shared with the running server).
    pub fn clock(&self) -> Clock {
        self.state.clock.clone()
    }

    /// Serves until the server stops; runs the housekeeping jobs alongside.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let clock = self.state.clock.clone();
        let interval = self.sweep_interval;
        let policy = self.housekeeping;
        let sweep = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                run_housekeeping(&store, &clock, policy).await;
            }
        });
        let checkpoints = tokio::spawn(checkpoint_periodically(
            self.state.clone(),
            self.checkpoint_interval,
            self.checkpoint_file,
        ));
        let refresh = self.issuer_keys.map(|(source, issuer, interval)| {
            tokio::spawn(source.refresh_periodically(self.state.auth.clone(), issuer, interval))
        });
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        sweep.abort();
        checkpoints.abort();
        if let Some(refresh) = refresh {
            refresh.abort();
        }
        if let Some((handle, served)) = metrics {
            // Nothing on the metrics listener is worth waiting for: a graceful stop would wait
            // for the scrapers' idle keep-alive connections.
            handle.stop(false).await;
            let _stopped = served.await;
        }
        result
    }
}

/// Runs every housekeeping job once, each in its own transaction; each reports what it did in
/// `prescrypt_housekeeping_rows_total` / `prescrypt_housekeeping_runs_total` and the log.
pub async fn run_housekeeping(store: &Store, clock: &Clock, policy: prescriptions::Housekeeping) {
    use prescriptions::{HousekeepingJob, HousekeepingReport};
    for job in HousekeepingJob::ALL {
        let at = clock.clone();
        let outcome = store
            .write(move |conn| prescriptions::housekeeping(conn, job, &policy, at.now()))
            .await;
        let name = job.name();
        let result = match outcome {
            Ok(HousekeepingReport::Done(rows)) => {
                metrics::counter!("prescrypt_housekeeping_rows_total", "job" => name)
                    .increment(rows as u64);
                if rows > 0 {
                    tracing::info!(job = name, rows, "housekeeping");
                }
                "done"
            }
            Ok(HousekeepingReport::Skipped) => {
                tracing::debug!(job = name, "housekeeping: another instance is running it");
                "skipped"
            }
            Err(error) => {
                tracing::warn!(job = name, %error, "housekeeping failed");
                "failed"
            }
        };
        metrics::counter!("prescrypt_housekeeping_runs_total", "job" => name, "outcome" => result)
            .increment(1);
    }
}

/// The metrics listener: `GET /metrics` only, one worker, apart from the API's slots and
/// connections (a scrape is never shed, and API clients never reach it).
fn metrics_server(listen: &str, state: Arc<AppState>) -> anyhow::Result<(Server, String)> {
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(guard::security_headers))
            .configure(api::routes::configure_metrics(state.clone()))
    })
    .workers(1)
    .max_connections(64)
    .bind(listen)?;
    let local = *server
        .addrs()
        .first()
        .ok_or_else(|| anyhow::anyhow!("{listen} names no address"))?;
    Ok((server.run(), format!("http://{local}")))
}

/// Signs a checkpoint every `interval` (the first at once) until the task is aborted.
async fn checkpoint_periodically(
    state: Arc<AppState>,
    interval: Duration,
    file: std::path::PathBuf,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let shared = state.clone();
        let path = file.clone();
        // Read, sign, append and fsync off the async workers; the insert goes through the
        // store's writer like every write.
        let signed =
            tokio::task::spawn_blocking(move || -> anyhow::Result<checkpoint::SignedCheckpoint> {
                let mut conn = shared.store.connection()?;
                let checkpoint = checkpoint::checkpoint_of(
                    checkpoint::heads(&mut conn)?,
                    shared.clock.now_utc(),
                );
                let signed = checkpoint::SignedCheckpoint::sign(checkpoint, shared.keys.active())?;
                checkpoint::append_to_file(&path, &signed)?;
                Ok(signed)
            })
            .await;
        let outcome = match signed {
            Ok(Ok(signed)) => state
                .store
                .write(move |conn| checkpoint::publish(conn, &signed))
                .await
                .map_err(anyhow::Error::from),
            Ok(Err(error)) => Err(error),
            Err(join) => Err(anyhow::anyhow!(join.to_string())),
        };
        match outcome {
            Ok(()) => metrics::counter!("prescrypt_audit_checkpoints_total").increment(1),
            Err(error) => {
                metrics::counter!("prescrypt_audit_checkpoint_failures_total").increment(1);
                tracing::error!(%error, "could not write an audit checkpoint");
            }
        }
    }
}

/// The identity provider's keys before the first request: read on a runtime of its own, since
/// [`Application::build`] is synchronous and may be called from inside another runtime.
fn load_issuer_keys(
    source: &crate::issuer::JwksSource,
    auth: &actix_web::web::Data<Authenticator>,
    issuer: &str,
) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(source.load_at_start(auth, issuer))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("reading the identity provider's keys panicked"))?
    })
}
