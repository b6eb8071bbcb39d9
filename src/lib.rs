//! Prescrypt's central service: the API a GP system calls to issue signed prescriptions and a
//! pharmacy calls to release, dispense and claim them.
//!
//! Start at [`startup::Application`] (what `prescrypt serve` runs). The EPS rules live in
//! [`domain`] (THE status machine with its item-level rules, validity, when repeat and
//! future-dated issues become releasable); [`prescriptions`] applies them in store transactions,
//! one file per operation, plus the issues of one ID (`prescriptions::issues`) and the
//! housekeeping jobs `serve` runs (`prescriptions::expiry`); [`store`] is diesel over SQLite (group
//! commit) or PostgreSQL and holds every query; [`api`] holds the thin HTTP handlers and the
//! OpenAPI document, [`fhir`] the same operations as the NHS EPS FHIR R4 API; [`auth`] finds
//! the caller (its identity provider's keys kept fresh by [`issuer`]), [`guard`] bounds load and
//! abuse ([`config`] has
//! its settings); [`clock`] is the one clock all service time is read from; [`keys`],
//! [`signing`] and [`audit`] (hash chains, and signed checkpoints in `audit::checkpoint`) do the
//! security work. [`console`] serves the prescriber console (static files under `/console/`);
//! [`prescriber_cli`] is the client side of prescriber signatures
//! (`prescrypt prescriber keygen|enrol|sign`).
//! IDs, NHS numbers, barcode tokens and the classification of scanned text come from
//! `prescrypt_barcode`; the wire types (views, code tables, `Problem`, routes, limits) from
//! `prescrypt_contract`. docs/architecture.md draws the whole path.

pub mod api;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod fhir;
pub mod guard;
pub mod idempotency;
pub mod issuer;
pub mod keys;
pub mod prescriber_cli;
pub mod prescriptions;
pub mod signing;
pub mod startup;
pub mod store;
pub mod telemetry;

pub use error::AppError;
/// The wire contract (views, code tables, `Problem`, routes, limits) shared with clients.
pub use prescrypt_contract as contract;
