//! Scale-out tests: real `prescrypt serve` processes on real PostgreSQL clusters started in temp
//! dirs (initdb/pg_ctl/pg_basebackup; as root the server runs as the `postgres` user).
//! Without PostgreSQL binaries the tests skip with a message — except in CI (`CI=true`), where
//! they fail.

// Test helpers outside #[test] functions may unwrap and panic like the tests themselves.
#![allow(clippy::unwrap_used, clippy::panic)]

mod instance;
mod pg;

mod housekeeping;
mod multi_instance;
mod readiness;
mod replica;
