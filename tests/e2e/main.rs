//! End-to-end tests of the pharmacy client against the real central service, real SQLite, real
//! ptys and the scanner simulator — no HTTP mocks. Binaries are built with `escargot`.

mod counter;
mod flow;
mod forged;
mod harness;
mod outbox;
mod serial;
mod wedge;
