//! What every handler shares: the service's state.

use std::sync::Arc;

use actix_web::web;

use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::keys::KeyRing;
use crate::prescriptions::Unsigned;
use crate::store::Store;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub keys: KeyRing,
    /// Also registered as `App` data on its own: [`crate::auth`] extracts the caller from it.
    pub auth: web::Data<Authenticator>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Whether a prescription without a prescriber signature is accepted (`--dev` only).
    pub unsigned: Unsigned,
    /// How long a prepared prescription waits for its signature.
    pub prepared_ttl: chrono::Duration,
    /// THE clock: every time the service records or decides by is read from it.
    pub clock: Clock,
    /// Turns to render a printable token (`--max-renders`): renders past it wait.
    pub renders: Arc<tokio::sync::Semaphore>,
    /// `serve --dev`: the development endpoints (`/api/v1/dev/...`) are mounted.
    pub dev: bool,
    /// How long after a claim it may be amended (`--claim-window`).
    pub claim_window: chrono::Duration,
}

pub type State = web::Data<Arc<AppState>>;
