//! Housekeeping: expiry (lazily when a prescription is loaded, and by the periodic sweep), and
//! the other jobs `serve` runs periodically ([`housekeeping`]): waiting issues made ready,
//! no-claim after the claim window, deletion after the retention period, idempotency records
//! forgotten. On PostgreSQL only one instance runs a job at a time (a transaction-scoped
//! advisory lock, [`crate::store::try_housekeeping_lock`]).

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use super::{Loaded, issues, save, system, with_items};
use crate::audit;
use crate::domain::Status;
use crate::domain::machine::{self, Event};
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::prescriptions::{self as rows, Row};

/// Expires the prescription if its time is up and it is still active; whether it did. Later
/// issues of a repeat-dispensing prescription expire with it (EPS expires every later issue);
/// they are named in its entry (the sweep appends to one chain per prescription).
pub(super) fn expire_if_due(
    conn: &mut DbConnection,
    loaded: &mut Loaded,
    at: NaiveDateTime,
) -> Result<bool, AppError> {
    let status = loaded.status();
    if at < loaded.row.expires_at || !machine::is_active(status) {
        return Ok(false);
    }
    let to = machine::next(status, Event::Expire)
        .map_err(|_| AppError::illegal("expire", status.to_string()))?;
    loaded.map_items(machine::expire_item);
    save(conn, loaded, to, at)?;
    let later = if to == Status::Expired {
        issues::settle_later(conn, loaded, Event::Expire, None, at)?
    } else {
        Vec::new()
    };
    let mut detail = json!({"from": status.code(), "to": to.code()});
    if !later.is_empty() {
        let numbers: Vec<i32> = later.iter().map(|moved| moved.issue_number).collect();
        detail["later_issues_expired"] = json!(numbers);
    }
    audit::append(
        conn,
        &system(),
        "expired",
        Some(&loaded.row.uuid),
        &detail,
        at,
    )?;
    Ok(true)
}

/// How long a used or expired prepared prescription is kept: a prescriber's system that retries
/// a signed create within it gets the prescription it issued back.
const KEEP_PREPARED: chrono::Duration = chrono::Duration::hours(24);

/// Expires every prescription whose time is up (the periodic sweep) and forgets prepared
/// prescriptions past `KEEP_PREPARED`; returns how many prescriptions expired.
pub fn sweep_expired(
    conn: &mut DbConnection,
    at: NaiveDateTime,
    limit: i64,
) -> Result<usize, AppError> {
    crate::store::signatures::prune_prepared(conn, at - KEEP_PREPARED)?;
    let active: Vec<Status> = Status::ALL
        .iter()
        .copied()
        .filter(|s| machine::is_active(*s))
        .collect();
    let due = in_chain_order(rows::lock_due(conn, &active, at, limit)?);
    let mut expired = 0;
    for row in due {
        let mut loaded = with_items(conn, row)?;
        if expire_if_due(conn, &mut loaded, at)? {
            expired += 1;
        }
    }
    Ok(expired)
}

/// Rows are changed in audit-chain order: each change appends to its prescription's chain, and
/// several chains in one transaction are always taken in the same order.
fn in_chain_order(mut due: Vec<Row>) -> Vec<Row> {
    due.sort_by_key(|row| audit::chain_of(Some(&row.uuid), ""));
    due
}

/// The periods the housekeeping jobs keep things for (`serve` flags).
#[derive(Debug, Clone, Copy)]
pub struct Housekeeping {
    /// A dispensed or not-dispensed prescription not claimed within this becomes No-Claimed.
    pub claim_window: Duration,
    /// A finished prescription (expired, cancelled, claimed, no-claimed) is deleted this long
    /// after it finished.
    pub retention: Duration,
    /// `Idempotency-Key` records are forgotten after this.
    pub idempotency_retention: Duration,
    /// Most rows one job changes per run.
    pub batch: i64,
}

/// One housekeeping job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HousekeepingJob {
    Expire,
    Ready,
    NoClaim,
    Retention,
    Idempotency,
}

impl HousekeepingJob {
    pub const ALL: [Self; 5] = [
        Self::Expire,
        Self::Ready,
        Self::NoClaim,
        Self::Retention,
        Self::Idempotency,
    ];

    /// The `job` label of its metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Expire => "expire",
            Self::Ready => "ready",
            Self::NoClaim => "no-claim",
            Self::Retention => "retention",
            Self::Idempotency => "idempotency",
        }
    }
}

/// What one run of a job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HousekeepingReport {
    /// How many rows it changed (or deleted).
    Done(usize),
    /// Another instance was running it (PostgreSQL).
    Skipped,
}

/// Runs one housekeeping job in the caller's transaction, unless another instance is running
/// housekeeping at the moment.
pub fn housekeeping(
    conn: &mut DbConnection,
    job: HousekeepingJob,
    policy: &Housekeeping,
    at: NaiveDateTime,
) -> Result<HousekeepingReport, AppError> {
    if !crate::store::try_housekeeping_lock(conn)? {
        return Ok(HousekeepingReport::Skipped);
    }
    let done = match job {
        HousekeepingJob::Expire => sweep_expired(conn, at, policy.batch)?,
        HousekeepingJob::Ready => make_ready(conn, at, policy.batch)?,
        HousekeepingJob::NoClaim => no_claim(conn, at - policy.claim_window, at, policy.batch)?,
        HousekeepingJob::Retention => purge(conn, at - policy.retention, at, policy.batch)?,
        HousekeepingJob::Idempotency => {
            crate::idempotency::prune(conn, at - policy.idempotency_retention)?
        }
    };
    Ok(HousekeepingReport::Done(done))
}

/// Waiting issues whose day has come become To Be Dispensed.
fn make_ready(conn: &mut DbConnection, at: NaiveDateTime, limit: i64) -> Result<usize, AppError> {
    let mut made_ready = 0;
    for row in in_chain_order(rows::lock_ready(conn, at, limit)?) {
        let mut loaded = with_items(conn, row)?;
        if issues::ready_if_due(conn, &mut loaded, at)? {
            made_ready += 1;
        }
    }
    Ok(made_ready)
}

/// Dispensed and not-dispensed prescriptions finished at or before `before` and never claimed
/// become No-Claimed (0009).
fn no_claim(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    at: NaiveDateTime,
    limit: i64,
) -> Result<usize, AppError> {
    let unclaimed = [Status::Dispensed, Status::NotDispensed];
    let mut settled = 0;
    for row in in_chain_order(rows::lock_settled(conn, &unclaimed, before, limit)?) {
        let mut loaded = with_items(conn, row)?;
        let from = loaded.status();
        let to = machine::next(from, Event::NoClaim)
            .map_err(|_| AppError::illegal(Event::NoClaim.action(), from.to_string()))?;
        save(conn, &mut loaded, to, at)?;
        audit::append(
            conn,
            &system(),
            "no-claimed",
            Some(&loaded.row.uuid),
            &json!({"from": from.code(), "to": to.code()}),
            at,
        )?;
        settled += 1;
    }
    Ok(settled)
}

/// Finished prescriptions (expired, cancelled, claimed, no-claimed) that finished at or before
/// `before` are deleted with their items, notifications and holders. The audit log keeps its
/// entries (its hash chain stays verifiable): it names the prescription's UUID and ID only.
fn purge(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    at: NaiveDateTime,
    limit: i64,
) -> Result<usize, AppError> {
    let finished = [
        Status::Expired,
        Status::Cancelled,
        Status::Claimed,
        Status::NoClaimed,
    ];
    let mut purged = 0;
    for row in in_chain_order(rows::lock_settled(conn, &finished, before, limit)?) {
        rows::purge(conn, &row.uuid)?;
        audit::append(
            conn,
            &system(),
            "purged",
            Some(&row.uuid),
            &json!({
                "id": row.prescription_id,
                "issue_number": row.issue_number,
                "status": row.status.0.code(),
            }),
            at,
        )?;
        purged += 1;
    }
    Ok(purged)
}
