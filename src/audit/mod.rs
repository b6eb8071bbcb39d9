//! The hash-chained audit log. Each entry stores the previous entry's hash and its own:
//! `hash = SHA-256(prev_hash || "\n" || canonical JSON of the entry)`. Appends happen in the same
//! transaction as the change they record and update their chain's `audit_head` row, which
//! serialises appends to that chain on PostgreSQL (row lock) as the one writer does on SQLite and
//! pins the chain's end, so edited, deleted or truncated entries are all detected by [`verify`].
//!
//! There are [`CHAINS`] independent chains. A prescription's entries all go to one chain picked
//! from its UUID (entries about no prescription: from the organisation), so its history is one
//! ordered run of one chain, and transactions on different chains commit in parallel instead of
//! queueing on a single head row — the unit a sharded deployment would split by.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::error::AppError;
use crate::store::schema::{audit_head, audit_log};
use crate::store::{DbConnection, on_backend, update_where};

pub mod checkpoint;

pub use checkpoint::Checkpoint;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
pub struct AuditEntry {
    pub chain: i32,
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
    /// The hash this entry must carry: `SHA-256(prev_hash || "\\n" || canonical JSON)`.
    pub fn compute_hash(&self) -> Result<String, AppError> {
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

/// How many chains there are; the migration `audit_chains` creates their head rows `1..=CHAINS`.
pub const CHAINS: i32 = 16;

/// The chain an entry goes to: by prescription when it is about one, else by organisation.
pub fn chain_of(prescription_uuid: Option<&str>, org: &str) -> i32 {
    let key = prescription_uuid.unwrap_or(org);
    let digest = Sha256::digest(key.as_bytes());
    1 + i32::from(digest[0]) % CHAINS
}

/// An entry about a prescription, for [`append_each`].
#[derive(Debug, Clone)]
pub struct Pending {
    pub who: Principal,
    pub action: &'static str,
    pub prescription_uuid: String,
    pub detail: serde_json::Value,
}

/// Appends entries about several prescriptions (inside the caller's transaction) in ascending
/// chain order, as [`append`] requires; entries of one chain keep their order.
pub fn append_each(
    conn: &mut DbConnection,
    mut entries: Vec<Pending>,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    entries.sort_by_key(|entry| chain_of(Some(&entry.prescription_uuid), &entry.who.org));
    for entry in entries {
        append(
            conn,
            &entry.who,
            entry.action,
            Some(&entry.prescription_uuid),
            &entry.detail,
            at,
        )?;
    }
    Ok(())
}

/// Appends one entry (inside the caller's transaction). A transaction that appends to several
/// chains must do so in ascending chain order (see [`chain_of`]) so that two such transactions
/// cannot deadlock on each other's head rows.
pub fn append(
    conn: &mut DbConnection,
    who: &Principal,
    action: &str,
    prescription_uuid: Option<&str>,
    detail: &serde_json::Value,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    let chain = chain_of(prescription_uuid, &who.org);
    let head = read_head(conn, chain)?;
    let mut entry = AuditEntry {
        chain,
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
    let moved = match conn {
        // One round trip instead of two: PostgreSQL pays for each (a lifecycle is 32 statements).
        DbConnection::Postgresql(pg) => {
            MoveHeadAndInsert {
                entry: &entry,
                head_seq: head.0,
            }
            .execute(pg)?
                == 1
        }
        DbConnection::Sqlite(sqlite) => {
            update_where(
                &audit_head::table,
                audit_head::id.eq(chain).and(audit_head::seq.eq(head.0)),
                (
                    audit_head::seq.eq(entry.seq),
                    audit_head::hash.eq(&entry.hash),
                ),
            )
            .execute(sqlite)?
                == 1
                && diesel::insert_into(audit_log::table)
                    .values(&entry)
                    .execute(sqlite)?
                    == 1
        }
    };
    if !moved {
        return Err(AppError::Unavailable(
            "audit chain head moved concurrently".into(),
        ));
    }
    Ok(())
}

/// PostgreSQL: moves the chain's head from `head_seq` to the entry and inserts the entry, in one
/// statement; inserts nothing when the head is no longer at `head_seq`.
struct MoveHeadAndInsert<'a> {
    entry: &'a AuditEntry,
    head_seq: i64,
}

impl diesel::query_builder::QueryId for MoveHeadAndInsert<'_> {
    type QueryId = MoveHeadAndInsert<'static>;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for MoveHeadAndInsert<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
        let entry = self.entry;
        out.push_sql("WITH moved AS (UPDATE audit_head SET seq = ");
        out.push_bind_param::<BigInt, _>(&entry.seq)?;
        out.push_sql(", hash = ");
        out.push_bind_param::<Text, _>(&entry.hash)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Integer, _>(&entry.chain)?;
        out.push_sql(" AND seq = ");
        out.push_bind_param::<BigInt, _>(&self.head_seq)?;
        out.push_sql(
            " RETURNING id) INSERT INTO audit_log (chain, seq, at, actor, org, role, action, \
             prescription_uuid, detail, prev_hash, hash) SELECT id, ",
        );
        out.push_bind_param::<BigInt, _>(&entry.seq)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&entry.at)?;
        for text in [&entry.actor, &entry.org, &entry.role, &entry.action] {
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(text)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&entry.prescription_uuid)?;
        for text in [&entry.detail, &entry.prev_hash, &entry.hash] {
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(text)?;
        }
        out.push_sql(" FROM moved");
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for MoveHeadAndInsert<'_> {}

fn read_head(conn: &mut DbConnection, chain: i32) -> Result<(i64, String), AppError> {
    let query = audit_head::table
        .filter(audit_head::id.eq(chain))
        .select((audit_head::seq, audit_head::hash));
    let head = match conn {
        // Lock the head row so concurrent appenders queue up behind it.
        DbConnection::Postgresql(pg) => query.for_update().first(pg)?,
        DbConnection::Sqlite(sqlite) => query.first(sqlite)?,
    };
    Ok(head)
}

/// The entries about one prescription, oldest first (they are all on one chain).
pub fn for_prescription(conn: &mut DbConnection, uuid: &str) -> Result<Vec<AuditEntry>, AppError> {
    let query = audit_log::table
        .filter(audit_log::chain.eq(chain_of(Some(uuid), "")))
        .filter(audit_log::prescription_uuid.eq(uuid))
        .order(audit_log::seq.asc());
    Ok(on_backend!(conn, |c| query
        .select(AuditEntry::as_select())
        .load(c)?))
}

/// The result of walking the chains.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Intact {
        entries: i64,
    },
    Broken {
        chain: i32,
        seq: i64,
        reason: String,
    },
}

/// The hash a chain starts from (and an empty chain's head carries).
pub fn genesis_hash() -> String {
    "0".repeat(64)
}

/// Walks every chain and reports the first broken entry: every chain `1..=CHAINS` must have a
/// head, every entry up to the head must link to the one before and match its hash, the last
/// one must be the head, and no entry may lie beyond it.
pub fn verify(conn: &mut DbConnection) -> Result<Verification, AppError> {
    verify_extends(conn, &[])
}

/// [`verify`], and also that the log still extends every checkpoint: each chain's entries up
/// to the checkpointed head still hash to the checkpointed hash (so nothing before it changed,
/// even if every later hash was recomputed) and the chain was not cut back below it.
pub fn verify_extends(
    conn: &mut DbConnection,
    checkpoints: &[Checkpoint],
) -> Result<Verification, AppError> {
    // Not locked: verifying must not stall writers, and it also runs on a read-only standby.
    let heads: Vec<(i32, i64, String)> = audit_head::table
        .order(audit_head::id.asc())
        .select((audit_head::id, audit_head::seq, audit_head::hash))
        .load(conn)?;
    if let Some((stray, _, _)) = heads.iter().find(|(id, _, _)| !(1..=CHAINS).contains(id)) {
        return Ok(Verification::Broken {
            chain: *stray,
            seq: 0,
            reason: format!("a head for chain {stray}, which does not exist"),
        });
    }
    let mut entries = 0;
    for chain in 1..=CHAINS {
        let Some((_, seq, hash)) = heads.iter().find(|(id, _, _)| *id == chain) else {
            return Ok(Verification::Broken {
                chain,
                seq: 0,
                reason: "the chain has no head (its audit_head row was deleted)".into(),
            });
        };
        let pins = Pins::of(checkpoints, chain);
        match verify_chain(conn, chain, *seq, hash, &pins)? {
            Ok(walked) => entries += walked,
            Err((seq, reason)) => return Ok(Verification::Broken { chain, seq, reason }),
        }
    }
    if let Some(stray) = audit_log::table
        .filter(audit_log::chain.lt(1).or(audit_log::chain.gt(CHAINS)))
        .select(audit_log::chain)
        .first::<i32>(conn)
        .optional()?
    {
        return Ok(Verification::Broken {
            chain: stray,
            seq: 0,
            reason: "entries on a chain that has no head".into(),
        });
    }
    Ok(Verification::Intact { entries })
}

/// What the checkpoints say one chain's entries hash to: seq → (hash, checkpoint time).
struct Pins(std::collections::BTreeMap<i64, Vec<(String, String)>>);

impl Pins {
    fn of(checkpoints: &[Checkpoint], chain: i32) -> Self {
        let mut pins = std::collections::BTreeMap::<i64, Vec<(String, String)>>::new();
        for checkpoint in checkpoints {
            for head in checkpoint.chains.iter().filter(|h| h.chain == chain) {
                pins.entry(head.seq)
                    .or_default()
                    .push((head.hash.clone(), checkpoint.at.clone()));
            }
        }
        Self(pins)
    }

    /// The first checkpoint that disagrees with entry `seq` hashing to `hash`.
    fn disagreement(&self, seq: i64, hash: &str) -> Option<String> {
        self.0.get(&seq)?.iter().find(|(pinned, _)| pinned != hash).map(|(pinned, at)| {
            format!(
                "does not extend the checkpoint of {at}: entry {seq} hashed to {pinned}, now to {hash} (rewritten)"
            )
        })
    }

    /// The first checkpointed entry past the chain's end.
    fn beyond(&self, end: i64) -> Option<(i64, String)> {
        let (seq, pins) = self.0.range(end + 1..).next()?;
        let at = &pins[0].1;
        Some((
            *seq,
            format!(
                "does not extend the checkpoint of {at}: it pinned entry {seq}, the chain now ends at {end} (truncated or rolled back)"
            ),
        ))
    }
}

/// Walks one chain up to the head read before the walk; `Err((seq, reason))` names the first
/// broken entry.
fn verify_chain(
    conn: &mut DbConnection,
    chain: i32,
    head_seq: i64,
    head_hash: &str,
    pins: &Pins,
) -> Result<Result<i64, (i64, String)>, AppError> {
    let mut expected_prev = genesis_hash();
    if let Some(reason) = pins.disagreement(0, &expected_prev) {
        return Ok(Err((0, reason)));
    }
    let mut expected_seq = 1;
    let mut last_seen = 0;
    loop {
        // Entries appended after the head was read (other instances keep writing) are left
        // for the next run: the walk covers exactly the chain the head pinned.
        let page: Vec<AuditEntry> = audit_log::table
            .filter(audit_log::chain.eq(chain))
            .filter(audit_log::seq.gt(last_seen))
            .filter(audit_log::seq.le(head_seq))
            .order(audit_log::seq.asc())
            .limit(1000)
            .select(AuditEntry::as_select())
            .load(conn)?;
        if page.is_empty() {
            break;
        }
        for entry in page {
            if entry.seq != expected_seq {
                return Ok(Err((
                    expected_seq,
                    format!("entry {expected_seq} is missing (next is {})", entry.seq),
                )));
            }
            if entry.prev_hash != expected_prev {
                return Ok(Err((
                    entry.seq,
                    "prev_hash does not match the previous entry".into(),
                )));
            }
            if entry.compute_hash()? != entry.hash {
                return Ok(Err((
                    entry.seq,
                    "content does not match its hash (edited)".into(),
                )));
            }
            if let Some(reason) = pins.disagreement(entry.seq, &entry.hash) {
                return Ok(Err((entry.seq, reason)));
            }
            expected_prev = entry.hash;
            expected_seq += 1;
            last_seen = entry.seq;
        }
    }
    if head_seq != last_seen || head_hash != expected_prev {
        return Ok(Err((
            last_seen + 1,
            format!("the chain ends at {last_seen} but the head says {head_seq}"),
        )));
    }
    if let Some(pinned) = pins.beyond(last_seen) {
        return Ok(Err(pinned));
    }
    // One statement, so the head it compares with is as new as the entries it sees: an entry
    // committed meanwhile moved the head in the same transaction and is not beyond it.
    let current_head = audit_head::table
        .filter(audit_head::id.eq(chain))
        .select(audit_head::seq)
        .single_value()
        .assume_not_null();
    if let Some(beyond) = audit_log::table
        .filter(audit_log::chain.eq(chain))
        .filter(audit_log::seq.gt(current_head))
        .order(audit_log::seq.asc())
        .select(audit_log::seq)
        .first::<i64>(conn)
        .optional()?
    {
        return Ok(Err((
            beyond,
            format!("entry {beyond} lies beyond the chain's head (the head was moved back)"),
        )));
    }
    Ok(Ok(last_seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_spread_over_all_chains_and_one_prescription_stays_on_one() {
        let mut used = std::collections::BTreeSet::new();
        for n in 0..2_000 {
            let uuid = uuid::Uuid::new_v4().to_string();
            let chain = chain_of(Some(&uuid), "FA565");
            assert!((1..=CHAINS).contains(&chain), "chain {chain} (n = {n})");
            assert_eq!(chain, chain_of(Some(&uuid), "another org"));
            used.insert(chain);
        }
        assert_eq!(used.len(), usize::try_from(CHAINS).unwrap());
        assert_eq!(chain_of(None, "FA565"), chain_of(None, "FA565"));
    }
}
