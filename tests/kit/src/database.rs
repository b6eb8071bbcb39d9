//! A database of its own for each test.

use std::path::Path;

/// The environment variable naming a PostgreSQL server to run the suites against (e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`); unset or empty means embedded SQLite.
pub const PG_ENV: &str = "PRESCRYPT_TEST_DATABASE_URL";

/// A SQLite file in `dir`, or — when [`PG_ENV`] is set — a new database on that server.
pub fn fresh_database_url(dir: &Path) -> String {
    match std::env::var(PG_ENV) {
        Ok(server) if !server.is_empty() => create_pg_database(
            &server,
            &format!("prescrypt_test_{}", uuid::Uuid::new_v4().simple()),
        ),
        _ => dir.join("prescrypt.db").display().to_string(),
    }
}

/// Creates database `name` on the PostgreSQL server at `server` (a URL naming any database it
/// can connect to) and returns the new database's URL.
pub fn create_pg_database(server: &str, name: &str) -> String {
    use diesel::{Connection, RunQueryDsl};
    let mut admin = diesel::PgConnection::establish(server)
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} is not reachable: {e}"));
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let (base, _) = server
        .rsplit_once('/')
        .filter(|(base, _)| base.contains("//"))
        .unwrap_or((server, ""));
    format!("{base}/{name}")
}
