//! The HTTP API. [`routes`] is the route table (one line per endpoint) the server mounts and
//! the OpenAPI document ([`openapi`]) is built from. Handlers live one file per resource:
//! [`prescribing`], [`prescriber_keys`], [`prescriptions`], [`dispensing`], [`audit`], [`operations`], [`dev`] (`serve --dev` only); they share
//! [`state`], [`mutate`] (idempotent writes, audited reads) and [`extract`] (extractor errors).

pub mod audit;
pub mod dev;
pub mod dispensing;
pub mod endpoint;
pub mod extract;
pub mod mutate;
pub mod openapi;
pub mod operations;
pub mod prescriber_keys;
pub mod prescribing;
pub mod prescriptions;
pub mod routes;
pub mod state;

pub use routes::configure;
pub use state::AppState;
