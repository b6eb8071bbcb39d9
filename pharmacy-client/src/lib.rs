//! Prescrypt pharmacy client: the pharmacist's tool at the counter (binary `pharmacy`).
//!
//! A scanned code ([`scan`]: image file, keyboard wedge, or the counter scanner over [`serial`]) is
//! verified offline against the centre's cached signing keys ([`jwks`]) before anything is sent;
//! the prescription is then released over the HTTP [`api`] and its own signature checked ([`app`]).
//! Every state change (dispense, return, withdraw, claim) goes through the durable SQLite
//! [`outbox`] first, so outages and crashes lose nothing and never duplicate an effect.
//! [`counter`] is the interactive screen; [`commands`] the command line. See README.md.

pub mod api;
pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod counter;
pub mod error;
pub mod image;
pub mod jwks;
pub mod model;
pub mod nominated;
pub mod outbox;
pub mod scan;
mod schema;
pub mod serial;

pub use error::{Error, Result};
