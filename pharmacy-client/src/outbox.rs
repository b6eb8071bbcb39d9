//! The durable outbox: every state-changing request is committed to local SQLite (WAL,
//! `synchronous = FULL`) with a fresh idempotency key *before* it is sent, and stays there until
//! the centre has answered for good.
//!
//! State machine per entry: `queued` →(2xx)→ `sent`; `queued` →(final 4xx)→ `failed`;
//! `queued` →(no answer, 5xx, 401, 408, 429)→ `queued` with `attempts + 1` and a backoff delay
//! (or the centre's longer `Retry-After`, capped at the longest backoff).
//! A kill at any point leaves the entry `queued`; sending it again carries the same
//! `Idempotency-Key`, so the centre applies it at most once. Entries for one prescription are sent
//! strictly in the order they were made (a claim never overtakes its dispense).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::routes;
use serde::Serialize;
use serde_json::Value;

use crate::api::{Api, ApiError, Problem, Shown};
use crate::error::{Error, Result};
use crate::private;
use crate::schema::outbox;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// First retry delay; doubles per failed attempt up to [`BACKOFF_MAX`].
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Delay before the next automatic attempt after `attempts` failed ones (1 → 2 s, 2 → 4 s, … ≤ 5 min).
pub fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    BACKOFF_BASE
        .saturating_mul(1u32 << exponent)
        .min(BACKOFF_MAX)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The state-changing operations the pharmacy sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Dispense,
    Return,
    Withdraw,
    Claim,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dispense => "dispense",
            Self::Return => "return",
            Self::Withdraw => "withdraw",
            Self::Claim => "claim",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Dispense, Self::Return, Self::Withdraw, Self::Claim]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The route the request goes to.
    pub fn path(self, prescription_id: &str) -> String {
        match self {
            Self::Dispense => routes::dispense(prescription_id),
            Self::Return => routes::return_(prescription_id),
            Self::Withdraw => routes::withdraw(prescription_id),
            Self::Claim => routes::claim(prescription_id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Sent,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            _ => Self::Queued,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct Row {
    id: i32,
    idempotency_key: String,
    kind: String,
    prescription_id: String,
    body: String,
    state: String,
    attempts: i32,
    next_attempt_at: i64,
    last_error: Option<String>,
    response: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub id: i32,
    pub idempotency_key: String,
    pub kind: Kind,
    pub prescription_id: String,
    pub body: Value,
    pub state: State,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub response: Option<Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<Row> for Entry {
    type Error = Error;

    fn try_from(row: Row) -> Result<Self> {
        Ok(Self {
            id: row.id,
            kind: Kind::parse(&row.kind)
                .ok_or_else(|| Error::Database(format!("unknown outbox kind {}", row.kind)))?,
            body: serde_json::from_str(&row.body).map_err(|e| Error::Database(e.to_string()))?,
            state: State::parse(&row.state),
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            response: row
                .response
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            idempotency_key: row.idempotency_key,
            prescription_id: row.prescription_id,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// 2xx: the centre applied it (or had already, for a replay); its answer.
    Delivered(Value),
    /// A final refusal.
    Refused(Box<Problem>),
    /// The centre answered but cannot process it now (5xx, 401, 408, 429): try again later,
    /// not before its `Retry-After` if it gave one.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// No answer at all (connection refused, timeout): try again later; the centre is down.
    Unreachable(String),
}

impl From<std::result::Result<String, ApiError>> for Attempt {
    fn from(result: std::result::Result<String, ApiError>) -> Self {
        match result {
            Ok(body) => Self::Delivered(serde_json::from_str(&body).unwrap_or(Value::Null)),
            Err(error @ ApiError::Unreachable(_)) => Self::Unreachable(error.to_string()),
            Err(error @ ApiError::Transient { retry_after, .. }) => Self::Transient {
                reason: error.to_string(),
                retry_after: retry_after.map(Duration::from_secs),
            },
            Err(ApiError::Refused(problem)) => Self::Refused(problem),
            // A 2xx we could not read was still applied centrally: never resend as something else.
            Err(ApiError::Unexpected(reason)) => Self::Delivered(Value::String(reason)),
        }
    }
}

/// The new column values after an attempt (pure: the state machine, tested on its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: State,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub response: Option<Value>,
}

/// Queued for another attempt after the backoff, or after the centre's `Retry-After` when that is
/// longer (capped at [`BACKOFF_MAX`], so a wrong header cannot park dispensing for days).
fn queued_again(
    attempts: u32,
    now: i64,
    reason: &str,
    retry_after: Option<Duration>,
) -> Transition {
    let delay = backoff(attempts).max(retry_after.unwrap_or_default().min(BACKOFF_MAX));
    Transition {
        state: State::Queued,
        attempts,
        next_attempt_at: now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        last_error: Some(reason.to_owned()),
        response: None,
    }
}

pub fn transition(entry: &Entry, attempt: &Attempt, now: i64) -> Transition {
    let attempts = entry.attempts.saturating_add(1);
    match attempt {
        Attempt::Delivered(response) => Transition {
            state: State::Sent,
            attempts,
            next_attempt_at: now,
            last_error: None,
            response: Some(response.clone()),
        },
        Attempt::Refused(problem) => Transition {
            state: State::Failed,
            attempts,
            next_attempt_at: now,
            last_error: Some(Shown(problem).to_string()),
            response: serde_json::to_value(problem).ok(),
        },
        Attempt::Transient {
            reason,
            retry_after,
        } => queued_again(attempts, now, reason, *retry_after),
        Attempt::Unreachable(reason) => queued_again(attempts, now, reason, None),
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub sent: Vec<Entry>,
    pub failed: Vec<Entry>,
    pub still_queued: Vec<Entry>,
    /// The centre could not be reached: the sync stopped early.
    pub offline: Option<String>,
}

/// Which queued entries a sync should attempt.
/// How many entries are in each state (the counter screen's status line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Only those whose backoff has run out (automatic retries).
    Now,
    /// All of them (the pharmacist asked).
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter<'a> {
    All,
    Queued,
    Prescription(&'a str),
}

pub struct Outbox {
    conn: SqliteConnection,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens (creating and migrating) the outbox database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            private::create_dir(parent)?;
        }
        // SQLite gives its -wal and -shm files the database file's mode: create that owner-only
        // first, and tighten any the older client left behind.
        private::create_file(path)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            private::tighten(Path::new(&side), private::FILE_MODE)?;
        }
        let url = path
            .to_str()
            .ok_or_else(|| Error::Config(format!("{}: not UTF-8", path.display())))?;
        let mut conn = SqliteConnection::establish(url)?;
        conn.batch_execute(
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| Error::Database(format!("migrations: {e}")))?;
        Ok(Self { conn })
    }

    /// Commits a new request (durably) and returns it; nothing has been sent yet.
    pub fn enqueue(&mut self, kind: Kind, id: &PrescriptionId, body: &Value) -> Result<Entry> {
        let now = now_ms();
        let key = uuid::Uuid::new_v4().to_string();
        let row: Row = diesel::insert_into(outbox::table)
            .values((
                outbox::idempotency_key.eq(&key),
                outbox::kind.eq(kind.as_str()),
                outbox::prescription_id.eq(id.to_string()),
                outbox::body.eq(body.to_string()),
                outbox::state.eq(State::Queued.as_str()),
                outbox::attempts.eq(0),
                outbox::next_attempt_at.eq(now),
                outbox::created_at.eq(now),
                outbox::updated_at.eq(now),
            ))
            .returning(Row::as_returning())
            .get_result(&mut self.conn)?;
        row.try_into()
    }

    pub fn get(&mut self, id: i32) -> Result<Entry> {
        outbox::table
            .find(id)
            .select(Row::as_select())
            .first(&mut self.conn)?
            .try_into()
    }

    pub fn list(&mut self, filter: Filter<'_>) -> Result<Vec<Entry>> {
        let mut query = outbox::table.select(Row::as_select()).into_boxed();
        match filter {
            Filter::All => {}
            Filter::Queued => query = query.filter(outbox::state.eq(State::Queued.as_str())),
            Filter::Prescription(id) => query = query.filter(outbox::prescription_id.eq(id)),
        }
        query
            .order(outbox::id.asc())
            .load(&mut self.conn)?
            .into_iter()
            .map(Entry::try_from)
            .collect()
    }

    /// Counts per state: (queued, sent, failed).
    pub fn counts(&mut self) -> Result<Counts> {
        let rows: Vec<(String, i64)> = outbox::table
            .group_by(outbox::state)
            .select((outbox::state, diesel::dsl::count_star()))
            .load(&mut self.conn)?;
        let count = |state: State| {
            rows.iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n)
        };
        Ok(Counts {
            queued: count(State::Queued),
            sent: count(State::Sent),
            failed: count(State::Failed),
        })
    }

    /// Records an attempt's outcome. A sent or failed entry is never changed again.
    pub fn record(&mut self, entry: &Entry, attempt: &Attempt, now: i64) -> Result<Entry> {
        let next = transition(entry, attempt, now);
        diesel::update(
            outbox::table
                .find(entry.id)
                .filter(outbox::state.eq(State::Queued.as_str())),
        )
        .set((
            outbox::state.eq(next.state.as_str()),
            outbox::attempts.eq(i32::try_from(next.attempts).unwrap_or(i32::MAX)),
            outbox::next_attempt_at.eq(next.next_attempt_at),
            outbox::last_error.eq(next.last_error),
            outbox::response.eq(next.response.map(|v| v.to_string())),
            outbox::updated_at.eq(now),
        ))
        .execute(&mut self.conn)?;
        self.get(entry.id)
    }

    /// Sends one entry (same idempotency key every time) and records the outcome.
    pub fn deliver(&mut self, api: &Api, entry: &Entry) -> Result<(Entry, Attempt)> {
        let attempt = Attempt::from(api.post_route(
            &entry.kind.path(&entry.prescription_id),
            &entry.body,
            Some(&entry.idempotency_key),
        ));
        Ok((self.record(entry, &attempt, now_ms())?, attempt))
    }

    /// Sends queued entries in creation order, at most one unsettled entry per prescription at a
    /// time; stops as soon as the centre is unreachable.
    pub fn sync(&mut self, api: &Api, due: Due, only: Option<&str>) -> Result<SyncReport> {
        let queued = match only {
            Some(id) => self
                .list(Filter::Prescription(id))?
                .into_iter()
                .filter(|e| e.state == State::Queued)
                .collect(),
            None => self.list(Filter::Queued)?,
        };
        let now = now_ms();
        let mut report = SyncReport::default();
        let mut blocked: HashSet<String> = HashSet::new();
        for entry in queued {
            let waiting = due == Due::Now && entry.next_attempt_at > now;
            if report.offline.is_some() || blocked.contains(&entry.prescription_id) || waiting {
                blocked.insert(entry.prescription_id.clone());
                report.still_queued.push(entry);
                continue;
            }
            let (after, attempt) = self.deliver(api, &entry)?;
            if let Attempt::Unreachable(reason) = attempt {
                report.offline = Some(reason);
            }
            match after.state {
                State::Sent => report.sent.push(after),
                State::Failed => report.failed.push(after),
                State::Queued => {
                    blocked.insert(after.prescription_id.clone());
                    report.still_queued.push(after);
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id() -> PrescriptionId {
        PrescriptionId::parse("D7AC09-A99968-4BA59C").unwrap()
    }

    fn open(dir: &tempfile::TempDir) -> Outbox {
        Outbox::open(&dir.path().join("outbox.sqlite")).unwrap()
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(2));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(9), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn a_longer_retry_after_from_the_centre_wins_over_the_backoff_up_to_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        let entry = outbox.enqueue(Kind::Claim, &id(), &json!({})).unwrap();
        let busy = |seconds| Attempt::Transient {
            reason: "overloaded".into(),
            retry_after: Some(Duration::from_secs(seconds)),
        };
        assert_eq!(transition(&entry, &busy(30), 1_000).next_attempt_at, 31_000);
        // Shorter than the backoff: the backoff still spaces the retries.
        assert_eq!(transition(&entry, &busy(1), 1_000).next_attempt_at, 3_000);
        assert_eq!(
            transition(&entry, &busy(86_400), 1_000).next_attempt_at,
            1_000 + 300_000
        );
    }

    #[test]
    fn transitions() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        let entry = outbox.enqueue(Kind::Claim, &id(), &json!({})).unwrap();
        let later = transition(
            &entry,
            &Attempt::Transient {
                reason: "down".into(),
                retry_after: None,
            },
            1_000,
        );
        assert_eq!(later.state, State::Queued);
        assert_eq!(later.attempts, 1);
        assert_eq!(later.next_attempt_at, 3_000);
        let sent = transition(&entry, &Attempt::Delivered(json!({"id": "x"})), 1_000);
        assert_eq!(sent.state, State::Sent);
        assert_eq!(sent.response, Some(json!({"id": "x"})));
        let refused = transition(
            &entry,
            &Attempt::Refused(Box::new(Problem {
                problem_type: "about:blank".into(),
                title: "Conflict".into(),
                status: 409,
                code: "held-by-another-dispenser".into(),
                detail: "another pharmacy holds it".into(),
                field: None,
                holder: Some("FCG71".into()),
            })),
            1_000,
        );
        assert_eq!(refused.state, State::Failed);
        assert!(refused.last_error.unwrap().contains("409"));
    }

    #[test]
    fn entries_survive_reopening_and_keep_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let body = json!({"items": [{"line": 1, "outcome": "complete"}]});
        let entry = open(&dir).enqueue(Kind::Dispense, &id(), &body).unwrap();
        assert_eq!(entry.state, State::Queued);
        assert_eq!(entry.attempts, 0);
        uuid::Uuid::parse_str(&entry.idempotency_key).unwrap();

        let mut reopened = open(&dir);
        let listed = reopened.list(Filter::Queued).unwrap();
        assert_eq!(listed, vec![entry]);
        assert_eq!(listed[0].body, body);
        assert_eq!(
            listed[0].kind.path(&listed[0].prescription_id),
            "/api/v1/prescriptions/D7AC09-A99968-4BA59C/dispense"
        );
    }

    #[test]
    fn settled_entries_never_change_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        let entry = outbox.enqueue(Kind::Withdraw, &id(), &json!({})).unwrap();
        let sent = outbox
            .record(&entry, &Attempt::Delivered(json!({"ok": 1})), 5)
            .unwrap();
        assert_eq!(sent.state, State::Sent);
        // A late transient answer from a concurrent sender must not resurrect it.
        let after = outbox
            .record(
                &entry,
                &Attempt::Transient {
                    reason: "late".into(),
                    retry_after: None,
                },
                6,
            )
            .unwrap();
        assert_eq!(after, sent);
        assert_eq!(
            outbox.counts().unwrap(),
            Counts {
                queued: 0,
                sent: 1,
                failed: 0
            }
        );
    }

    #[test]
    fn sync_against_an_unreachable_centre_keeps_everything_queued_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        let first = outbox
            .enqueue(Kind::Dispense, &id(), &json!({"items": []}))
            .unwrap();
        let second = outbox.enqueue(Kind::Claim, &id(), &json!({})).unwrap();
        // A port nothing listens on: a real connection refusal, not a mock.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let api = Api::new(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_secs(2),
        )
        .unwrap();
        let report = outbox.sync(&api, Due::All, None).unwrap();
        assert!(report.offline.is_some());
        assert!(report.sent.is_empty() && report.failed.is_empty());
        assert_eq!(report.still_queued.len(), 2);
        // Only the first was tried; the claim waits behind it.
        let first_after = outbox.get(first.id).unwrap();
        assert_eq!(first_after.attempts, 1);
        assert!(first_after.next_attempt_at > first.next_attempt_at);
        assert_eq!(outbox.get(second.id).unwrap().attempts, 0);
        // Automatic retries respect the backoff: nothing is due right now.
        let report = outbox.sync(&api, Due::Now, None).unwrap();
        assert_eq!(report.offline, None);
        assert_eq!(outbox.get(first.id).unwrap().attempts, 1);
    }
}
