//! The Prescrypt test kit, shared by the service's test suites (`tests/api`, `e2e`, `crash`,
//! `scale`) and the load generator (`examples/loadgen.rs`). Test-only code lives here, not in
//! the library.
//!
//! - [`app`]: the service in-process on port 0 ([`TestApp`]), configured by parsing the real
//!   `prescrypt serve` flags, so its defaults are the binary's own.
//! - [`service`]: `prescrypt serve` as a real process ([`Service`]): port 0 or a fixed port, its
//!   `listening on` line, SIGKILL and restart on the same data; `prescrypt` subcommands.
//! - [`http`]: an [`Endpoint`] (base address and client) with the JSON request helpers and metrics.
//! - [`database`]: a database of its own per test (SQLite file, or PostgreSQL when
//!   [`database::PG_ENV`] names a server).
//! - [`proxy`]: a loopback TCP proxy that holds back a dispense request or its answer.
//! - [`pharmacy`]: the pharmacy client and scanner simulator as real processes; [`Run`].
//! - [`signer`]: a prescriber's Ed25519 key: enrol it, issue prescriptions signed with it.
//! - [`fhir`]: the same through the EPS FHIR R4 API (`$prepare`, a signature, `$process-message`).
//! - here: the organisations and professionals of the tests, dev tokens, a prescription body.

// A test kit fails the test that calls it, loudly: panics are its error reporting.
#![allow(clippy::panic, clippy::unwrap_used)]

pub mod app;
pub mod database;
pub mod fhir;
pub mod http;
pub mod pharmacy;
pub mod proxy;
pub mod service;
pub mod signer;

use std::path::Path;

use prescrypt::auth::{self, Role};
use serde_json::{Value, json};

pub use app::{TestApp, TestAppBuilder};
pub use database::fresh_database_url;
pub use http::{Endpoint, Reply, read};
pub use pharmacy::{Pharmacy, Run};
pub use proxy::{Hold, Proxy};
pub use service::{Service, ServiceBuilder, actions};
pub use signer::PrescriberSigner;

/// The path of the `prescrypt` binary cargo built for the calling test crate (`CARGO_BIN_EXE_*`
/// exists only there, so this expands in the caller).
#[macro_export]
macro_rules! prescrypt_bin {
    () => {
        ::std::path::Path::new(env!("CARGO_BIN_EXE_prescrypt"))
    };
}

/// The prescribing organisation (a GP practice) of the tests.
pub const PRESCRIBER_ORG: &str = "A83008";
/// The prescriber of the tests.
pub const PRESCRIBER: &str = "G1234567";
/// The pharmacy of the tests.
pub const PHARMACY: &str = "FA565";
/// The pharmacist of the tests.
pub const PHARMACIST: &str = "P7654321";
/// A second pharmacy, which holds nothing of the first one's.
pub const OTHER_PHARMACY: &str = "FCG71";
/// The pharmacist of [`OTHER_PHARMACY`].
pub const OTHER_PHARMACIST: &str = "P1111111";

/// A bearer token valid for an hour from the development issuer whose key is in `keys_dir`.
pub fn dev_token(keys_dir: &Path, role: Role, org: &str, sub: &str) -> String {
    dev_token_lasting(keys_dir, role, org, sub, chrono::Duration::hours(1))
}

/// A bearer token valid for `ttl` from the development issuer whose key is in `keys_dir`.
pub fn dev_token_lasting(
    keys_dir: &Path,
    role: Role,
    org: &str,
    sub: &str,
    ttl: chrono::Duration,
) -> String {
    let issuer = prescrypt::keys::dev_issuer(keys_dir)
        .unwrap_or_else(|e| panic!("the dev issuer key in {}: {e:#}", keys_dir.display()));
    auth::mint(&issuer, role, org, sub, ttl).expect("mint a dev token")
}

/// A valid new prescription: one patient, two items, no nominated pharmacy.
pub fn new_prescription() -> Value {
    json!({
        "patient": {"nhs_number": "9434765919", "name": "Jane Smith", "birth_date": "1970-01-31"},
        "items": [
            {"code": "39720311000001101", "display": "Paracetamol 500mg tablets", "quantity": 32,
             "unit": "tablet", "dosage": "2 four times a day"},
            {"code": "39113611000001102", "display": "Amoxicillin 500mg capsules", "quantity": 21,
             "unit": "capsule", "dosage": "1 three times a day"}
        ]
    })
}

/// A valid claim for [`new_prescription`] with both items supplied: the patient is exempt
/// (0004, over 60, evidence seen) and neither item carries an endorsement (NDEC).
pub fn claim_both_supplied() -> Value {
    json!({"exemption": "0004", "evidence_seen": true, "items": [
        {"line": 1, "endorsements": [{"code": "NDEC"}]},
        {"line": 2, "endorsements": [{"code": "NDEC"}]}
    ]})
}

/// A valid claim for a prescription of which nothing was supplied (status 0007).
pub fn claim_nothing_supplied() -> Value {
    claim_for(&json!({"items": []}))
}

/// A valid claim for the prescription `view` (as the API shows it): every item supplied so far
/// claimed without endorsement (NDEC), exemption 0004 with evidence seen.
pub fn claim_for(view: &Value) -> Value {
    let supplied: Vec<Value> = view["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|item| item["dispensed_quantity"].as_f64().is_some_and(|q| q > 0.0))
        .map(|item| json!({"line": item["line"], "endorsements": [{"code": "NDEC"}]}))
        .collect();
    json!({"exemption": "0004", "evidence_seen": true, "items": supplied})
}

/// [`new_prescription`] nominated to the pharmacy `ods`.
pub fn nominated_prescription(ods: &str) -> Value {
    let mut body = new_prescription();
    body["nominated_pharmacy"] = json!(ods);
    body
}
