//! Crash consistency: the real service is SIGKILLed under load and restarted, the real pharmacy
//! client is SIGKILLed mid-send; afterwards every acknowledged request must be there exactly once
//! and the database must be intact. See docs/crash-consistency.md.

// Test helpers outside #[test] functions may unwrap and panic like the tests themselves.
#![allow(clippy::unwrap_used, clippy::panic)]

mod outbox;
mod service;
