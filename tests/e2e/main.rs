//! End-to-end tests of the pharmacy client against the real central service, real SQLite, real
//! ptys and the scanner simulator — no HTTP mocks. Binaries are built with `escargot`.

// Test helpers outside #[test] functions may unwrap and panic like the tests themselves.
#![allow(clippy::unwrap_used, clippy::panic)]

mod counter;
mod flow;
mod forged;
mod handed_over;
mod outbox;
mod prescriber;
mod repeat_dispensing;
mod serial;
mod signatures;
mod wedge;
