//! Prescrypt's central service: the API a GP system calls to issue signed prescriptions and a
//! pharmacy calls to release, dispense and claim them.
//!
//! Start at [`startup::Application`] (what `prescrypt serve` runs). The EPS rules live in
//! [`domain`] (codes, THE status machine, validity); [`prescriptions`] applies them in store
//! transactions; [`store`] is diesel over SQLite (group commit) or PostgreSQL; [`api`] holds the
//! thin HTTP handlers; [`auth`], [`keys`], [`signing`] and [`audit`] (hash chains, and signed
//! checkpoints in `audit::checkpoint`) do the security work.
//! IDs, NHS numbers and barcode tokens come from `prescrypt_barcode`.

pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod guard;
pub mod idempotency;
pub mod keys;
pub mod prescriptions;
pub mod signing;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod views;

pub use error::AppError;
