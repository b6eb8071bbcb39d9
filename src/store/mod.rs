//! The embedded store: diesel over SQLite (default) or PostgreSQL, chosen by the URL scheme.
//!
//! Reads use pooled connections. Writes go through [`Store::write`]: on SQLite one writer thread
//! does group commit — it drains the queue, opens one `BEGIN IMMEDIATE` transaction, runs every
//! job in its own savepoint (a failing job rolls back only itself), commits once with
//! `synchronous=FULL` and only then answers every job. A 2xx therefore means "on disk", and one
//! fsync is shared by every request that arrived meanwhile. On PostgreSQL a write is a pooled
//! transaction; correctness never depends on the single writer (updates check status/version).
//!
//! A checkpointer thread copies the WAL into the database file between the writer's groups and
//! has the writer restart the WAL once it is long (`writer`). Queries are written once
//! in diesel's DSL and run on the concrete connection (`on_backend!`); `UPDATE`s that must stay
//! prepared go through [`update_where`].

pub mod claims;
pub mod codes;
pub mod prescriptions;
pub mod quantity;
mod query;
pub mod schema;
pub mod sequences;
pub mod signatures;
pub mod supplies;
mod writer;

pub(crate) use query::on_backend;
pub use query::{Update, ordered_uuid, update_where};
use writer::{
    DEFAULT_WAL_RESTART_FRAMES, checkpoint_loop, group_commit_loop, run_in_savepoint, wal_signals,
};

use std::sync::mpsc;
use std::time::Duration;

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::AppError;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection type for both backends.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

impl std::fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Postgresql(_) => "DbConnection::Postgresql",
            Self::Sqlite(_) => "DbConnection::Sqlite",
        })
    }
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }
}

/// Opens one connection of the right kind (MultiConnection's own `establish` would take any
/// string as a SQLite path) and applies the per-connection SQLite settings.
pub fn connect(url: &str) -> Result<DbConnection, AppError> {
    let connection = match Backend::of(url) {
        Backend::Postgres => {
            let mut pg = diesel::PgConnection::establish(url)
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            // A stuck statement or a lock queue must not hold a pooled connection forever.
            pg.batch_execute(
                "SET statement_timeout = '15s'; SET lock_timeout = '10s'; \
                 SET idle_in_transaction_session_timeout = '30s';",
            )
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
            pg.set_instrumentation(Health::default());
            DbConnection::Postgresql(pg)
        }
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            create_private(path)?;
            let mut sqlite = diesel::SqliteConnection::establish(path)
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            sqlite
                .batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
                )
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            DbConnection::Sqlite(sqlite)
        }
    };
    Ok(connection)
}

/// Creates a new SQLite database file readable by its owner only (it holds patient data), before
/// SQLite creates it with the umask's mode; its `-wal` and `-shm` files take the same mode.
fn create_private(path: &str) -> Result<(), AppError> {
    use std::os::unix::fs::OpenOptionsExt;
    if path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(AppError::Unavailable(format!("creating {path}: {e}"))),
    }
}

#[derive(diesel::QueryableByName)]
struct CompileOption {
    #[diesel(sql_type = diesel::sql_types::Text)]
    compile_options: String,
}

/// Whether this SQLite keeps one plan per statement whatever is bound to it (compiled with
/// `SQLITE_ENABLE_QPSG`, see `.cargo/config.toml`). Without it every statement with a bound
/// `LIMIT ?` is recompiled at each use, which costs the single writer dearly.
pub fn sqlite_plans_are_stable(sqlite: &mut diesel::SqliteConnection) -> Result<bool, AppError> {
    let options: Vec<CompileOption> = diesel::sql_query("PRAGMA compile_options").load(sqlite)?;
    Ok(options.iter().any(|o| o.compile_options == "ENABLE_QPSG"))
}

/// Runs the pending migrations of the connection's backend (and, once, switches SQLite to WAL).
pub fn migrate(connection: &mut DbConnection) -> Result<usize, AppError> {
    let applied = match connection {
        DbConnection::Sqlite(sqlite) => {
            sqlite
                .batch_execute("PRAGMA journal_mode = WAL;")
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            sqlite
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.len())
        }
        DbConnection::Postgresql(pg) => {
            // Instances starting together take turns (session advisory lock) so only one
            // applies each migration.
            pg.batch_execute("SELECT pg_advisory_lock(7263011)")
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            let applied = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.len());
            pg.batch_execute("SELECT pg_advisory_unlock(7263011)")
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            applied
        }
    };
    applied.map_err(|e| AppError::Unavailable(format!("migration failed: {e}")))
}

/// An existing database whose schema is current, for the commands that read or append to a
/// store `serve` created (`audit verify`, `audit checkpoint`): a path that names no database, or
/// one with migrations pending, is refused with what to do instead of failing half-way (or
/// creating an empty database at a mistyped path).
pub fn connect_existing(url: &str) -> anyhow::Result<DbConnection> {
    if Backend::of(url) == Backend::Sqlite
        && url != ":memory:"
        && !std::path::Path::new(url).exists()
    {
        anyhow::bail!(
            "{url}: no such database (give --database-url, or start `prescrypt serve` once to \
             create it)"
        );
    }
    let mut connection = connect(url)?;
    let pending = match &mut connection {
        DbConnection::Sqlite(sqlite) => sqlite.has_pending_migration(SQLITE_MIGRATIONS),
        DbConnection::Postgresql(pg) => pg.has_pending_migration(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| anyhow::anyhow!("{url}: reading the schema version: {e}"))?;
    if pending {
        anyhow::bail!(
            "{url}: the schema is older than this version of prescrypt: run `prescrypt migrate` \
             first"
        );
    }
    Ok(connection)
}

/// Opens pooled connections with [`connect`] (so SQLite gets its pragmas on every connection).
#[derive(Debug)]
pub struct Manager {
    url: String,
}

impl diesel::r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        connect(&self.url).map_err(|e| {
            diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                e.to_string(),
            ))
        })
    }

    /// A PostgreSQL connection that answered within `ANSWERED_RECENTLY` is taken as it is;
    /// one idle for longer answers `SELECT 1` first (after an outage, idle connections are
    /// stale). Under load that saves a round trip per request: 3 of 35 statements a lifecycle.
    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        match conn {
            DbConnection::Sqlite(_) => Ok(()),
            DbConnection::Postgresql(pg) => {
                if Health::of(pg).is_some_and(|health| health.answered_within(ANSWERED_RECENTLY)) {
                    return Ok(());
                }
                pg.batch_execute("SELECT 1")
                    .map_err(diesel::r2d2::Error::QueryError)
            }
        }
    }

    /// A PostgreSQL connection that lost its server is dropped when it returns to the pool.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        match conn {
            DbConnection::Sqlite(_) => false,
            DbConnection::Postgresql(pg) => Health::of(pg).is_some_and(|health| health.lost),
        }
    }
}

/// How recently a pooled PostgreSQL connection must have answered to skip the check on checkout.
const ANSWERED_RECENTLY: Duration = Duration::from_secs(1);

/// What a PostgreSQL connection's own statements tell of its health, recorded through diesel's
/// per-connection instrumentation: when it last answered, and whether it lost its server.
#[derive(Debug, Default)]
struct Health {
    last_answer: Option<std::time::Instant>,
    lost: bool,
}

impl Health {
    fn of(pg: &mut diesel::PgConnection) -> Option<&Health> {
        pg.instrumentation().downcast_ref::<Health>()
    }

    fn answered_within(&self, window: Duration) -> bool {
        !self.lost && self.last_answer.is_some_and(|at| at.elapsed() < window)
    }
}

impl diesel::connection::Instrumentation for Health {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::result::{DatabaseErrorKind, Error};
        if let diesel::connection::InstrumentationEvent::FinishQuery { error, .. } = event {
            match error {
                None => self.last_answer = Some(std::time::Instant::now()),
                Some(Error::DatabaseError(
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                    _,
                )) => self.lost = true,
                Some(_) => {}
            }
        }
    }
}

type DbPool = Pool<Manager>;
pub type PooledDb = PooledConnection<Manager>;

/// A queued write: given the connection (or `None` when the group transaction could not begin),
/// it runs and returns what answers the caller once the outcome of the commit is known.
type Job = Box<dyn FnOnce(Option<&mut DbConnection>) -> Finisher + Send>;
type Finisher = Box<dyn FnOnce(bool) + Send>;

/// How the store connects: the primary, an optional read replica and the pool limits.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// SQLite path or `postgres://` URL of the primary (all writes).
    pub url: String,
    /// A PostgreSQL hot standby for read-only endpoints (see [`Store::read_fresh`]).
    pub read_url: Option<String>,
    /// Most pooled connections per pool (PostgreSQL; SQLite readers use 4).
    pub pool_size: u32,
    /// How long a request waits for a pooled connection before answering 503.
    pub checkout_timeout: Duration,
    /// Most write jobs waiting for the SQLite writer; when full, a write fails at once with
    /// [`AppError::Overloaded`] (503) instead of queueing without bound.
    pub write_queue: usize,
    /// SQLite: a WAL of this many frames (pages) is started again from its beginning; a WAL
    /// file left longer than twice this is cut back (see `writer::checkpoint_loop`).
    pub wal_restart_frames: u32,
}

impl StoreOptions {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            read_url: None,
            pool_size: 16,
            checkout_timeout: Duration::from_secs(5),
            write_queue: 4096,
            wal_restart_frames: DEFAULT_WAL_RESTART_FRAMES,
        }
    }
}

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    pool: DbPool,
    replica: Option<DbPool>,
    writer: Option<mpsc::SyncSender<Job>>,
    sequences: std::sync::Arc<sequences::SequenceBlocks>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("replica", &self.replica.is_some())
            .finish()
    }
}

impl Store {
    /// Opens the database with default pool limits (see [`Store::open_with`]).
    pub fn open(url: &str) -> Result<Self, AppError> {
        Self::open_with(&StoreOptions::new(url))
    }

    /// Opens the database, runs the migrations and (SQLite) starts the writer thread.
    pub fn open_with(options: &StoreOptions) -> Result<Self, AppError> {
        let url = options.url.as_str();
        let backend = Backend::of(url);
        let mut first = connect(url)?;
        migrate(&mut first)?;
        let pool = Pool::builder()
            .max_size(if backend == Backend::Sqlite {
                4
            } else {
                options.pool_size.max(1)
            })
            // Connections open on demand: many instances must not exhaust max_connections idle.
            .min_idle(Some(1))
            .connection_timeout(options.checkout_timeout)
            .build(Manager {
                url: url.to_owned(),
            })
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        let replica = match &options.read_url {
            Some(read_url) if Backend::of(read_url) == Backend::Postgres => Some(
                // A replica that is down at start-up only sends reads to the primary.
                Pool::builder()
                    .max_size(options.pool_size.max(1))
                    .min_idle(Some(0))
                    .connection_timeout(Duration::from_millis(500))
                    .build_unchecked(Manager {
                        url: read_url.clone(),
                    }),
            ),
            Some(_) => {
                return Err(AppError::Unavailable(
                    "--read-database-url must be a postgres:// URL".into(),
                ));
            }
            None => None,
        };
        let writer = match backend {
            Backend::Sqlite => {
                // The writer never checkpoints the WAL itself (copying pages into the database
                // file and its fsync stay out of the serial section): a checkpointer thread does.
                // Its savepoints' sub-journals stay in memory (they only serve rolling back one
                // job inside the group; the WAL is what makes a commit durable). Its page cache
                // is 8 MiB: the recent pages every write touches, without the cost SQLite pays
                // at each commit for a large one (at 64 MiB, 8 % of the writer's CPU went to
                // scanning the cache's hash table, docs/benchmarks-service.md). A WAL left
                // longer than the limit after a restart is cut back to it.
                first
                    .batch_execute(&format!(
                        "PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY; \
                         PRAGMA cache_size = -8192; PRAGMA journal_size_limit = {};",
                        u64::from(options.wal_restart_frames) * 4096 * 2
                    ))
                    .map_err(|e| AppError::Unavailable(e.to_string()))?;
                if let DbConnection::Sqlite(sqlite) = &mut first
                    && !sqlite_plans_are_stable(sqlite)?
                {
                    tracing::warn!(
                        "SQLite was built without SQLITE_ENABLE_QPSG (.cargo/config.toml): \
                         statements with a bound LIMIT are recompiled at every use"
                    );
                }
                let checkpointer = connect(url)?;
                let (wal_writer, wal_checkpointer) = wal_signals(options.wal_restart_frames);
                std::thread::Builder::new()
                    .name("prescrypt-checkpoint".into())
                    .spawn(move || checkpoint_loop(checkpointer, &wal_checkpointer))
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                let (sender, receiver) = mpsc::sync_channel::<Job>(options.write_queue.max(1));
                std::thread::Builder::new()
                    .name("prescrypt-writer".into())
                    .spawn(move || group_commit_loop(first, &receiver, &wal_writer))
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                Some(sender)
            }
            Backend::Postgres => None,
        };
        Ok(Self {
            backend,
            pool,
            replica,
            writer,
            sequences: std::sync::Arc::default(),
        })
    }

    /// Whether read-only endpoints may be served by a replica.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// Readiness: a pooled connection answers within two seconds. Recovers by itself when the
    /// database returns (the pool validates connections on checkout and opens fresh ones).
    pub async fn ping(&self) -> Result<(), AppError> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get_timeout(Duration::from_secs(2))
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            conn.batch_execute("SELECT 1").map_err(AppError::from)
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
    }

    /// Runs the read-only `f` on the replica when it has replayed everything the primary had
    /// written when this call began (so no committed change — the caller's own included — can
    /// appear to vanish); otherwise, or without a replica, on the primary.
    pub async fn read_fresh<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        let Some(replica) = self.replica.clone() else {
            return self.read(f).await;
        };
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut primary = pool
                .get()
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            let written = wal_position(&mut primary)?;
            let fresh_replica =
                replica
                    .get()
                    .ok()
                    .and_then(|mut standby| match wal_position(&mut standby) {
                        Ok(replayed) if replayed >= written => Some(standby),
                        _ => None,
                    });
            match fresh_replica {
                Some(mut standby) => {
                    drop(primary);
                    metrics::counter!("prescrypt_reads_total", "source" => "replica").increment(1);
                    f(&mut standby)
                }
                None => {
                    metrics::counter!("prescrypt_reads_total", "source" => "primary").increment(1);
                    f(&mut primary)
                }
            }
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` on a pooled connection, off the async workers.
    pub async fn read<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = pool
                .get()
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
    }

    /// Runs `f` in a write transaction; the result is returned once it is committed.
    /// If `f` fails, its changes are rolled back and nothing else is affected.
    pub async fn write<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        let span = tracing::Span::current();
        match &self.writer {
            Some(writer) => {
                let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, AppError>>();
                let job: Job = Box::new(move |conn: Option<&mut DbConnection>| {
                    let _entered = span.enter();
                    let outcome = match conn {
                        Some(conn) => run_in_savepoint(conn, f),
                        None => Err(AppError::Unavailable(
                            "the store could not begin a transaction".into(),
                        )),
                    };
                    Box::new(move |committed: bool| {
                        let result = match outcome {
                            Ok(value) if committed => Ok(value),
                            Ok(_) => Err(AppError::Unavailable("commit failed".into())),
                            Err(error) => Err(error),
                        };
                        let _ignored_if_client_gone = reply.send(result);
                    })
                });
                // A full queue sheds the request (503 + Retry-After) rather than letting waits pile up.
                match writer.try_send(job) {
                    Ok(()) => {}
                    Err(mpsc::TrySendError::Full(_)) => {
                        metrics::counter!("prescrypt_shed_total", "reason" => "write-queue")
                            .increment(1);
                        return Err(AppError::Overloaded);
                    }
                    Err(mpsc::TrySendError::Disconnected(_)) => {
                        return Err(AppError::Unavailable("writer stopped".into()));
                    }
                }
                answer
                    .await
                    .map_err(|_| AppError::Unavailable("writer stopped".into()))?
            }
            None => {
                let pool = self.pool.clone();
                tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    let mut conn = pool
                        .get()
                        .map_err(|e| AppError::Unavailable(e.to_string()))?;
                    conn.transaction(|conn| f(conn))
                })
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
            }
        }
    }

    /// Runs `f` synchronously in one transaction (CLI commands, not the server).
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        conn.transaction(|conn| f(conn))
    }

    /// A pooled connection for synchronous callers (CLI, tests).
    pub fn connection(&self) -> Result<PooledDb, AppError> {
        self.pool
            .get()
            .map_err(|e| AppError::Unavailable(e.to_string()))
    }
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// The PostgreSQL advisory lock key of the housekeeping jobs (migrations use 7263011).
const HOUSEKEEPING_LOCK: i64 = 7_263_012;

/// Takes the housekeeping lock until the transaction ends, unless another instance holds it
/// (then `false`): on PostgreSQL one instance at a time runs a housekeeping job. SQLite has one
/// writer, which is already exclusive.
pub fn try_housekeeping_lock(conn: &mut DbConnection) -> Result<bool, AppError> {
    match conn {
        DbConnection::Postgresql(pg) => {
            let taken: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                .bind::<diesel::sql_types::BigInt, _>(HOUSEKEEPING_LOCK)
                .get_result(pg)?;
            Ok(taken.locked)
        }
        DbConnection::Sqlite(_) => Ok(true),
    }
}

#[derive(diesel::QueryableByName)]
struct WalPosition {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    lsn: i64,
}

/// How far a PostgreSQL server's WAL goes: what a primary has written, what a standby has
/// replayed (a promoted standby counts as a primary).
fn wal_position(conn: &mut DbConnection) -> Result<i64, AppError> {
    let DbConnection::Postgresql(pg) = conn else {
        return Err(AppError::Internal(
            "WAL positions exist on PostgreSQL only".into(),
        ));
    };
    let position: WalPosition = diesel::sql_query(
        "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
         ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint AS lsn",
    )
    .get_result(pg)?;
    Ok(position.lsn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::org_sequences;

    fn insert(conn: &mut DbConnection, org: &str) -> Result<usize, AppError> {
        Ok(diesel::insert_into(org_sequences::table)
            .values((
                org_sequences::org.eq(org),
                org_sequences::next_value.eq(1_i64),
            ))
            .execute(conn)?)
    }

    #[test]
    fn the_bundled_sqlite_keeps_one_plan_per_statement() {
        let dir = tempfile::tempdir().unwrap();
        let DbConnection::Sqlite(mut sqlite) =
            connect(&dir.path().join("t.db").display().to_string()).unwrap()
        else {
            unreachable!("a path is SQLite")
        };
        assert!(
            sqlite_plans_are_stable(&mut sqlite).unwrap(),
            "libsqlite3-sys built without LIBSQLITE3_FLAGS=-DSQLITE_ENABLE_QPSG (.cargo/config.toml)"
        );
    }

    #[test]
    fn updates_and_inserts_of_the_hot_path_are_prepared_once() {
        use crate::auth::{Principal, Role};
        use diesel::connection::{Instrumentation, InstrumentationEvent};
        use std::sync::{Arc, Mutex};

        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("t.db").display().to_string()).unwrap();
        migrate(&mut conn).unwrap();
        let cached: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = Arc::clone(&cached);
        let record = move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_owned());
            }
        };
        if let DbConnection::Sqlite(sqlite) = &mut conn {
            sqlite.set_instrumentation(Box::new(record) as Box<dyn Instrumentation>);
        }
        let who = Principal {
            sub: "P1".into(),
            role: Role::Pharmacist,
            org: "FA565".into(),
        };
        let at = chrono::DateTime::UNIX_EPOCH.naive_utc();
        for n in 0..3 {
            // Same chain each time: one head UPDATE and one entry INSERT per append.
            crate::audit::append(
                &mut conn,
                &who,
                "read",
                None,
                &serde_json::json!({ "n": n }),
                at,
            )
            .unwrap();
            // diesel's own UPDATE is never cached: what `update_where` is for.
            diesel::update(org_sequences::table)
                .set(org_sequences::next_value.eq(n))
                .execute(&mut conn)
                .unwrap();
        }
        let cached = cached.lock().unwrap();
        let count = |prefix: &str| cached.iter().filter(|sql| sql.starts_with(prefix)).count();
        assert_eq!(count("UPDATE `audit_head`"), 1, "{cached:?}");
        assert_eq!(count("INSERT INTO `audit_log`"), 1, "{cached:?}");
        assert_eq!(count("UPDATE `org_sequences`"), 0, "{cached:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_again_instead_of_growing_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db").display().to_string();
        let store = Store::open_with(&StoreOptions {
            wal_restart_frames: 64,
            ..StoreOptions::new(&path)
        })
        .unwrap();
        store
            .write(|conn| Ok(conn.batch_execute("CREATE TABLE filler (body TEXT NOT NULL)")?))
            .await
            .unwrap();
        let wal = std::path::PathBuf::from(format!("{path}-wal"));
        let mut longest = 0;
        // 1,500 commits of three pages or more each: 22 MB of WAL if it were never restarted.
        for _ in 0..1500 {
            store
                .write(|conn| {
                    Ok(diesel::sql_query("INSERT INTO filler (body) VALUES (?)")
                        .bind::<diesel::sql_types::Text, _>("x".repeat(6000))
                        .execute(conn)?)
                })
                .await
                .unwrap();
            longest = longest.max(std::fs::metadata(&wal).unwrap().len());
        }
        // Restarted once 64 frames are checkpointed, so only what the writer commits between the
        // checkpointer's passes (50 ms) piles up: about 3 MB here, whatever the count.
        assert!(longest < 6_000_000, "the WAL grew to {longest} bytes");
        let rows: i64 = store
            .read(|conn| {
                #[derive(diesel::QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                let count: Count =
                    diesel::sql_query("SELECT count(*) AS n FROM filler").get_result(conn)?;
                Ok(count.n)
            })
            .await
            .unwrap();
        assert_eq!(rows, 1500);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_rolls_back_only_itself_within_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db").display().to_string()).unwrap();
        let mut tasks = Vec::new();
        for n in 0..40 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write(move |conn| {
                        insert(conn, &format!("ORG{n}"))?;
                        if n % 4 == 0 {
                            // Wrote first, then fails: its write must vanish with it.
                            return Err(AppError::field("n", "multiple of four"));
                        }
                        Ok(n)
                    })
                    .await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            if task.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 30);
        let orgs: Vec<String> = store
            .read(|conn| Ok(org_sequences::table.select(org_sequences::org).load(conn)?))
            .await
            .unwrap();
        assert_eq!(orgs.len(), 30);
        assert!(!orgs.contains(&"ORG0".to_owned()) && !orgs.contains(&"ORG4".to_owned()));
        // A duplicate key fails inside its savepoint without breaking the writer.
        let duplicate = store.write(|conn| insert(conn, "ORG1")).await;
        assert!(matches!(duplicate, Err(AppError::Unavailable(_))));
        assert_eq!(store.write(|conn| insert(conn, "NEW")).await.unwrap(), 1);
    }
}
