//! The service's HTTP integration tests: each test spawns the real app on port 0 with a fresh
//! SQLite database and keys directory, and drives it over loopback HTTP.

// Test helpers outside #[test] functions may unwrap and panic like the tests themselves.
#![allow(clippy::unwrap_used, clippy::panic)]

mod helpers;

mod audit;
mod auth;
mod authz_matrix;
mod bad_input;
mod cancel;
mod claims;
mod clock;
mod concurrency;
mod expiry;
mod fhir;
mod hygiene;
mod input;
mod issuer;
mod lifecycle;
mod operations;
mod overload;
mod prescriber_signatures;
mod repeats;
mod search;
mod signing;
mod supplies;
mod throttle;
mod tokens;
mod transitions;
