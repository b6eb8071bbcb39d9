//! Prescrypt pharmacy client: the pharmacist's tool at the counter (binary `pharmacy`).
//!
//! What lives where:
//! - [`scan`]: where codes come from (image file via [`image`], keyboard wedge, the counter scanner
//!   over [`serial`]) and what the counter accepts of them (a token or a bare prescription ID, by
//!   the barcode crate's one classification).
//! - [`session`]: one run's settings, HTTP client and key caches; scan → offline token check
//!   ([`jwks`]) → release over the HTTP [`api`] → the prescription's signatures checked: the
//!   centre's, and the prescriber's with the prescribers' keys ([`prescriber_keys`]), also offline
//!   on the last copy seen (`show --offline`).
//! - [`outbox`]: every state change (dispense, return, withdraw, claim) is written to durable SQLite
//!   first, so outages and crashes lose nothing and never duplicate an effect.
//! - [`commands`] runs the command line ([`cli`]), printing through [`output`] (outside text made
//!   harmless by [`terminal`]); [`nominated`] is
//!   the batch download; [`counter`] the interactive screen; [`render`] shows the API's views.
//! - [`pack`]: medicine pack codes (GS1) scanned at the counter become what a dispense line
//!   records as handed over (GTIN, batch, expiry, serial).
//! - The wire types (views, problem details, signed content, routes, EPS codes, limits) are the
//!   service's own, from `prescrypt-contract`; [`config`] holds the settings, [`error`] the exit
//!   codes. See README.md.

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod counter;
pub mod error;
pub mod image;
pub mod jwks;
pub mod nominated;
pub mod outbox;
pub mod output;
pub mod pack;
pub mod prescriber_keys;
pub mod private;
pub mod render;
pub mod scan;
mod schema;
pub mod serial;
pub mod session;
pub mod terminal;

pub use error::{Error, Result};
