//! The SQLite single writer (group commit) and its checkpointer, which also has the writer
//! restart the WAL once it is long.

use std::sync::mpsc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;

use super::{DbConnection, Finisher, Job};
use crate::error::AppError;

/// Largest number of write jobs committed together.
const MAX_GROUP: usize = 256;

/// Runs one job inside a savepoint; a panic is turned into an error so the writer survives.
pub(super) fn run_in_savepoint<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conn.transaction(|conn| f(conn))
    }))
    .unwrap_or_else(|_| Err(AppError::Internal("a write job panicked".into())))
}

/// How often the checkpointer copies the committed WAL into the database file. Often, so each
/// copy and its fsync of the database file are small: they share the disk with the writer's
/// fsync of the WAL, and a long one showed up in the writer's slowest commits (with 200 ms, its
/// p99 was 25-28 ms on lifecycles; with 50 ms, 23 ms; docs/benchmarks-service.md).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// A WAL this long (in frames, 4 KiB pages each: 64 MiB) is started again from its beginning.
pub(super) const DEFAULT_WAL_RESTART_FRAMES: u32 = 16_384;

/// The row of `PRAGMA wal_checkpoint`.
#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    /// Frames in the WAL.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
    /// Frames of the WAL now in the database file.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    checkpointed: i32,
}

/// The writer's side of what the writer and the checkpointer tell each other.
pub(super) struct WriterSignals {
    /// One token after each commit (dropped when one is already waiting).
    committed: mpsc::SyncSender<()>,
    restart_due: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The checkpointer's side; it stops when the writer has stopped.
pub(super) struct CheckpointerSignals {
    committed: mpsc::Receiver<()>,
    /// Set when the WAL is long: the writer checkpoints the rest between two groups.
    restart_due: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// How long is long.
    restart_frames: u32,
}

pub(super) fn wal_signals(restart_frames: u32) -> (WriterSignals, CheckpointerSignals) {
    let (committed, commits) = mpsc::sync_channel(1);
    let restart_due = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    (
        WriterSignals {
            committed,
            restart_due: std::sync::Arc::clone(&restart_due),
        },
        CheckpointerSignals {
            committed: commits,
            restart_due,
            restart_frames,
        },
    )
}

fn checkpoint_passive(sqlite: &mut diesel::SqliteConnection) -> QueryResult<CheckpointResult> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(sqlite)
}

/// Checkpoints the WAL (PASSIVE: never blocks the writer or readers; durability does not depend
/// on it, the WAL is already on disk) until the writer stops. Each checkpoint starts right
/// after a commit, so its copying overlaps the writer running the next group rather than that
/// group's fsync.
///
/// SQLite starts the WAL again from its beginning only when a write transaction begins while
/// every frame is already in the database file, which never happens while the writer commits
/// group after group: the WAL would grow without end (gigabytes in a minute of load), and each
/// fsync of a growing file also commits its new size. So once the WAL is long, the checkpointer
/// asks the writer to checkpoint what was committed since its own pass between two groups (a
/// few groups' pages), and the writer's next transaction restarts the WAL.
pub(super) fn checkpoint_loop(mut conn: DbConnection, signals: &CheckpointerSignals) {
    let DbConnection::Sqlite(sqlite) = &mut conn else {
        return;
    };
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        match signals.committed.recv_timeout(Duration::from_secs(1)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        match checkpoint_passive(sqlite) {
            Ok(done) if i64::from(done.log) >= i64::from(signals.restart_frames) => {
                signals
                    .restart_due
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed; retrying"),
        }
    }
}

/// Between two groups, when the checkpointer asks for it: checkpoints the rest of the WAL so that
/// the next transaction starts it again (see [`checkpoint_loop`]).
fn restart_wal(conn: &mut DbConnection) {
    let DbConnection::Sqlite(sqlite) = conn else {
        return;
    };
    match checkpoint_passive(sqlite) {
        Ok(done) => {
            let outcome = if done.busy == 0 && done.checkpointed == done.log {
                "checkpointed"
            } else {
                "readers-behind"
            };
            metrics::counter!("prescrypt_wal_restarts_total", "outcome" => outcome).increment(1);
        }
        Err(error) => tracing::warn!(%error, "WAL checkpoint before a restart failed"),
    }
}

pub(super) fn group_commit_loop(
    mut conn: DbConnection,
    queue: &mpsc::Receiver<Job>,
    wal: &WriterSignals,
) {
    let mut finishers: Vec<Finisher> = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = queue.recv() {
        let began = begin_immediate(&mut conn);
        if let Err(error) = &began {
            tracing::error!(%error, "could not begin the group transaction");
        }
        // Outside a transaction a job would autocommit: when BEGIN failed, nothing runs.
        let run = |job: Job, conn: &mut DbConnection| {
            if began.is_ok() {
                job(Some(conn))
            } else {
                job(None)
            }
        };
        finishers.push(run(first, &mut conn));
        while finishers.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => finishers.push(run(job, &mut conn)),
                Err(_) => break,
            }
        }
        let committed = began.is_ok() && commit(&mut conn);
        metrics::histogram!("prescrypt_group_commit_size").record(finishers.len() as f64);
        for finish in finishers.drain(..) {
            finish(committed);
        }
        let _dropped_if_one_is_waiting = wal.committed.try_send(());
        if wal
            .restart_due
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            restart_wal(&mut conn);
        }
    }
}

fn begin_immediate(conn: &mut DbConnection) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(sqlite) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgresql(pg) => AnsiTransactionManager::begin_transaction(pg),
    }
}

fn commit(conn: &mut DbConnection) -> bool {
    match <DbConnection as Connection>::TransactionManager::commit_transaction(conn) {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, "group commit failed; rolling back");
            let _already_reported =
                <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
            false
        }
    }
}
