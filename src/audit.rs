//! The hash-chained audit log. Each entry stores the previous entry's hash and its own:
//! `hash = SHA-256(prev_hash || "\n" || canonical JSON of the entry)`. Appends happen in the same
//! transaction as the change they record and update the single `audit_head` row, which serialises
//! appends on PostgreSQL (row lock) as the one writer does on SQLite and pins the chain's end, so
//! edited, deleted or truncated entries are all detected by [`verify`].

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::schema::{audit_head, audit_log};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor: String,
    pub org: String,
    pub role: String,
    pub action: String,
    pub prescription_uuid: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Serialize)]
struct Hashed<'a> {
    seq: i64,
    at: String,
    actor: &'a str,
    org: &'a str,
    role: &'a str,
    action: &'a str,
    prescription: Option<&'a str>,
    detail: &'a str,
}

impl AuditEntry {
    fn compute_hash(&self) -> Result<String, AppError> {
        let body = crate::signing::canonical_json(&Hashed {
            seq: self.seq,
            at: self.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            actor: &self.actor,
            org: &self.org,
            role: &self.role,
            action: &self.action,
            prescription: self.prescription_uuid.as_deref(),
            detail: &self.detail,
        })?;
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(body.as_bytes());
        Ok(data_encoding::HEXLOWER.encode(&hasher.finalize()))
    }
}

/// Appends one entry (inside the caller's transaction).
pub fn append(
    conn: &mut DbConnection,
    who: &Principal,
    action: &str,
    prescription_uuid: Option<&str>,
    detail: &serde_json::Value,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    let head = read_head(conn)?;
    let mut entry = AuditEntry {
        seq: head.0 + 1,
        at,
        actor: who.sub.clone(),
        org: who.org.clone(),
        role: who.role.as_str().to_owned(),
        action: action.to_owned(),
        prescription_uuid: prescription_uuid.map(str::to_owned),
        detail: detail.to_string(),
        prev_hash: head.1.clone(),
        hash: String::new(),
    };
    entry.hash = entry.compute_hash()?;
    let moved = diesel::update(
        audit_head::table
            .filter(audit_head::id.eq(1))
            .filter(audit_head::seq.eq(head.0)),
    )
    .set((
        audit_head::seq.eq(entry.seq),
        audit_head::hash.eq(&entry.hash),
    ))
    .execute(conn)?;
    if moved != 1 {
        return Err(AppError::Unavailable(
            "audit chain head moved concurrently".into(),
        ));
    }
    diesel::insert_into(audit_log::table)
        .values(&entry)
        .execute(conn)?;
    Ok(())
}

fn read_head(conn: &mut DbConnection) -> Result<(i64, String), AppError> {
    let query = audit_head::table
        .filter(audit_head::id.eq(1))
        .select((audit_head::seq, audit_head::hash));
    let head = match conn {
        // Lock the head row so concurrent appenders queue up behind it.
        DbConnection::Postgresql(pg) => query.for_update().first(pg)?,
        DbConnection::Sqlite(sqlite) => query.first(sqlite)?,
    };
    Ok(head)
}

/// The entries about one prescription, oldest first.
pub fn for_prescription(conn: &mut DbConnection, uuid: &str) -> Result<Vec<AuditEntry>, AppError> {
    Ok(audit_log::table
        .filter(audit_log::prescription_uuid.eq(uuid))
        .order(audit_log::seq.asc())
        .select(AuditEntry::as_select())
        .load(conn)?)
}

/// The result of walking the chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Intact { entries: i64 },
    Broken { seq: i64, reason: String },
}

/// Walks the whole chain and reports the first broken entry.
pub fn verify(conn: &mut DbConnection) -> Result<Verification, AppError> {
    // Not locked: verifying must not stall writers, and it also runs on a read-only standby.
    let head: (i64, String) = audit_head::table
        .filter(audit_head::id.eq(1))
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    let mut expected_prev = "0".repeat(64);
    let mut expected_seq = 1;
    let mut last_seen = 0;
    loop {
        // Entries appended after the head was read (other instances keep writing) are left
        // for the next run: the walk covers exactly the chain the head pinned.
        let page: Vec<AuditEntry> = audit_log::table
            .filter(audit_log::seq.gt(last_seen))
            .filter(audit_log::seq.le(head.0))
            .order(audit_log::seq.asc())
            .limit(1000)
            .select(AuditEntry::as_select())
            .load(conn)?;
        if page.is_empty() {
            break;
        }
        for entry in page {
            if entry.seq != expected_seq {
                return Ok(Verification::Broken {
                    seq: expected_seq,
                    reason: format!("entry {expected_seq} is missing (next is {})", entry.seq),
                });
            }
            if entry.prev_hash != expected_prev {
                return Ok(Verification::Broken {
                    seq: entry.seq,
                    reason: "prev_hash does not match the previous entry".into(),
                });
            }
            if entry.compute_hash()? != entry.hash {
                return Ok(Verification::Broken {
                    seq: entry.seq,
                    reason: "content does not match its hash (edited)".into(),
                });
            }
            expected_prev = entry.hash;
            expected_seq += 1;
            last_seen = entry.seq;
        }
    }
    if head.0 != last_seen || head.1 != expected_prev {
        return Ok(Verification::Broken {
            seq: last_seen + 1,
            reason: format!("the chain ends at {last_seen} but the head says {}", head.0),
        });
    }
    Ok(Verification::Intact { entries: last_seen })
}
