//! The prescription tables: rows as diesel maps them and every query the operations run,
//! including the PostgreSQL-only row locks. No SQL lives outside `store/`.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::codes::Code;
use super::quantity::Thousandths;
use super::schema::{
    claims, dispense_notifications, items, org_sequences, prescription_holders, prescriptions,
};
use super::supplies::Supplies;
use super::{DbConnection, on_backend, update_where};
use crate::domain::{CancelReason, ItemStatus, NotDispensedReason, Status, TreatmentType};
use crate::error::AppError;

/// After the insert only the `Progress` columns change (see [`update_if_version`]).
/// (`treat_none_as_default_value = false`: an absent value is bound as NULL, so the insert's SQL
/// is always the same and diesel keeps it prepared.)
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = prescriptions, treat_none_as_default_value = false)]
pub struct Row {
    pub uuid: String,
    pub short_id: String,
    pub status: Code<Status>,
    pub pending_cancellation: bool,
    pub cancellation_requested_by: Option<String>,
    pub cancel_reason: Option<Code<CancelReason>>,
    pub treatment_type: Code<TreatmentType>,
    pub issue_number: i32,
    pub issue_count: i32,
    pub prescriber_id: String,
    pub prescriber_org: String,
    pub patient_nhs_number: String,
    pub patient_name: String,
    pub patient_birth_date: NaiveDate,
    pub nominated_pharmacy: Option<String>,
    pub controlled_drug_schedule: Option<i32>,
    pub dispenser: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub jws: String,
    pub prescriber_jws: Option<String>,
    pub token: String,
    pub version: i64,
    pub updated_at: NaiveDateTime,
    /// The short-form ID every issue shares (compact); `short_id` is the row's unique key
    /// ([`issue_key`]).
    pub prescription_id: String,
    /// The dispensing interval of a repeat-dispensing prescription, in days (EPS daysSupply).
    pub days_supply: Option<i32>,
    /// Not releasable before this day (future-dated).
    pub start_date: Option<NaiveDate>,
    /// When a waiting issue (0000, 9001) becomes To Be Dispensed.
    pub ready_at: Option<NaiveDateTime>,
    /// Repeat prescribing: the (compact) ID of the prescription that authorised the repeats.
    pub authorisation: Option<String>,
}

/// The columns of a prescription that change after it is issued: what [`update_if_version`]
/// writes. diesel prepares every UPDATE afresh (it never caches them), so a statement naming only
/// these costs the single writer far less to bind than one naming every column (signed JWS and
/// token included), and its SQL is always the same, so it is kept prepared ([`update_where`]). The
/// signed content never changes.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = prescriptions, treat_none_as_null = true)]
struct Progress<'a> {
    status: Code<Status>,
    pending_cancellation: bool,
    cancellation_requested_by: Option<&'a str>,
    cancel_reason: Option<Code<CancelReason>>,
    dispenser: Option<&'a str>,
    version: i64,
    updated_at: NaiveDateTime,
    ready_at: Option<NaiveDateTime>,
}

impl<'a> Progress<'a> {
    fn of(row: &'a Row) -> Self {
        Self {
            status: row.status,
            pending_cancellation: row.pending_cancellation,
            cancellation_requested_by: row.cancellation_requested_by.as_deref(),
            cancel_reason: row.cancel_reason,
            dispenser: row.dispenser.as_deref(),
            version: row.version,
            updated_at: row.updated_at,
            ready_at: row.ready_at,
        }
    }
}

/// The unique row key of issue `issue_number` of the prescription `compact_id`: the ID itself
/// for issue 1, `ID/n` for a later issue of a repeat-dispensing prescription.
pub fn issue_key(compact_id: &str, issue_number: i32) -> String {
    if issue_number <= 1 {
        compact_id.to_owned()
    } else {
        format!("{compact_id}/{issue_number}")
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = items, treat_none_as_default_value = false)]
pub struct ItemRow {
    pub uuid: String,
    pub prescription_uuid: String,
    pub line: i32,
    pub code: String,
    pub display: String,
    #[diesel(column_name = quantity_milli)]
    pub quantity: Thousandths,
    pub unit: String,
    pub dosage: String,
    pub status: Code<ItemStatus>,
    #[diesel(column_name = dispensed_quantity_milli)]
    pub dispensed_quantity: Thousandths,
    pub not_dispensed_reason: Option<Code<NotDispensedReason>>,
    pub supplies: Supplies,
}

/// Loads the rows of a batch query, on PostgreSQL locked up front with rows another instance is
/// working on skipped (`FOR UPDATE SKIP LOCKED`), so concurrent instances take disjoint batches;
/// SQLite has one writer, its reads inside a write are exclusive already. (A macro: the query's
/// type differs per call and diesel's locking clauses exist only for PostgreSQL.)
macro_rules! load_skipping_locked {
    ($conn:expr, $query:expr) => {
        match $conn {
            DbConnection::Postgresql(pg) => $query
                .select(Row::as_select())
                .for_update()
                .skip_locked()
                .load(pg)?,
            DbConnection::Sqlite(sqlite) => $query.select(Row::as_select()).load(sqlite)?,
        }
    };
}

/// Whether a load locks the prescription until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Every write decides its change from what it read: on PostgreSQL the row is locked
    /// (`FOR UPDATE`), so a racing instance waits and then decides from the outcome. (SQLite has
    /// one writer at a time, so its reads inside a write are already exclusive.)
    ForUpdate,
    /// Read-only paths (the replica cannot lock).
    None,
}

pub fn insert(conn: &mut DbConnection, row: &Row, item_rows: &[ItemRow]) -> Result<(), AppError> {
    on_backend!(conn, |c| {
        diesel::insert_into(prescriptions::table)
            .values(row)
            .execute(c)?;
        for item in item_rows {
            diesel::insert_into(items::table).values(item).execute(c)?;
        }
    });
    Ok(())
}

/// The current issue of the prescription `short_id` (compact): the latest issue that is no
/// longer a future instance (9000). For anything but repeat dispensing, its only row.
pub fn find_by_short_id(
    conn: &mut DbConnection,
    short_id: &str,
    lock: Lock,
) -> Result<Option<Row>, AppError> {
    let query = prescriptions::table
        .filter(prescriptions::prescription_id.eq(short_id))
        .filter(prescriptions::status.ne(Code(Status::RepeatDispenseFutureInstance)))
        .order(prescriptions::issue_number.desc());
    Ok(match conn {
        DbConnection::Postgresql(pg) if lock == Lock::ForUpdate => query
            .select(Row::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        DbConnection::Postgresql(pg) => query.select(Row::as_select()).first(pg).optional()?,
        DbConnection::Sqlite(sqlite) => query.select(Row::as_select()).first(sqlite).optional()?,
    })
}

/// Issue `issue_number` of the prescription `short_id` (compact).
pub fn find_issue(
    conn: &mut DbConnection,
    short_id: &str,
    issue_number: i32,
    lock: Lock,
) -> Result<Option<Row>, AppError> {
    let query =
        prescriptions::table.filter(prescriptions::short_id.eq(issue_key(short_id, issue_number)));
    Ok(match conn {
        DbConnection::Postgresql(pg) if lock == Lock::ForUpdate => query
            .select(Row::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        DbConnection::Postgresql(pg) => query.select(Row::as_select()).first(pg).optional()?,
        DbConnection::Sqlite(sqlite) => query.select(Row::as_select()).first(sqlite).optional()?,
    })
}

/// The latest issue of the prescription `short_id` (compact) that `org` dispenses or dispensed.
pub fn find_held_issue(
    conn: &mut DbConnection,
    short_id: &str,
    org: &str,
    lock: Lock,
) -> Result<Option<Row>, AppError> {
    let query = prescriptions::table
        .filter(prescriptions::prescription_id.eq(short_id))
        .filter(prescriptions::dispenser.eq(org))
        .order(prescriptions::issue_number.desc());
    Ok(match conn {
        DbConnection::Postgresql(pg) if lock == Lock::ForUpdate => query
            .select(Row::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        DbConnection::Postgresql(pg) => query.select(Row::as_select()).first(pg).optional()?,
        DbConnection::Sqlite(sqlite) => query.select(Row::as_select()).first(sqlite).optional()?,
    })
}

/// Every issue of the prescription `short_id` (compact), issue 1 first.
pub fn issues_of(conn: &mut DbConnection, short_id: &str) -> Result<Vec<Row>, AppError> {
    let query = prescriptions::table
        .filter(prescriptions::prescription_id.eq(short_id))
        .order(prescriptions::issue_number.asc());
    Ok(on_backend!(conn, |c| query
        .select(Row::as_select())
        .load(c)?))
}

/// How many prescriptions name `authorisation` (compact) as their repeat authorisation.
pub fn count_authorised(conn: &mut DbConnection, authorisation: &str) -> Result<i64, AppError> {
    let query = prescriptions::table
        .filter(prescriptions::authorisation.eq(authorisation))
        .count();
    Ok(on_backend!(conn, |c| query.get_result(c)?))
}

/// Up to `limit` waiting issues (0000, 9001) whose `ready_at` has come; locked as in
/// [`lock_nominated`].
pub fn lock_ready(
    conn: &mut DbConnection,
    at: NaiveDateTime,
    limit: i64,
) -> Result<Vec<Row>, AppError> {
    let waiting = [
        Code(Status::AwaitingReleaseReady),
        Code(Status::FutureDated),
    ];
    let query = prescriptions::table
        .filter(prescriptions::status.eq_any(waiting))
        .filter(prescriptions::ready_at.le(at))
        .limit(limit);
    Ok(load_skipping_locked!(conn, query))
}

/// Up to `limit` prescriptions in one of `statuses` last changed at or before `before`; locked
/// as in [`lock_nominated`].
pub fn lock_settled(
    conn: &mut DbConnection,
    statuses: &[Status],
    before: NaiveDateTime,
    limit: i64,
) -> Result<Vec<Row>, AppError> {
    let codes: Vec<Code<Status>> = statuses.iter().copied().map(Code).collect();
    let query = prescriptions::table
        .filter(prescriptions::status.eq_any(codes))
        .filter(prescriptions::updated_at.le(before))
        .limit(limit);
    Ok(load_skipping_locked!(conn, query))
}

/// Deletes a prescription row and everything that refers to it (its items, notifications and
/// holders); the audit log is left as it is (its chain must stay verifiable).
pub fn purge(conn: &mut DbConnection, prescription_uuid: &str) -> Result<(), AppError> {
    on_backend!(conn, |c| {
        diesel::delete(
            prescription_holders::table
                .filter(prescription_holders::prescription_uuid.eq(prescription_uuid)),
        )
        .execute(c)?;
        diesel::delete(
            dispense_notifications::table
                .filter(dispense_notifications::prescription_uuid.eq(prescription_uuid)),
        )
        .execute(c)?;
        diesel::delete(items::table.filter(items::prescription_uuid.eq(prescription_uuid)))
            .execute(c)?;
        diesel::delete(claims::table.filter(claims::prescription_uuid.eq(prescription_uuid)))
            .execute(c)?;
        diesel::delete(prescriptions::table.filter(prescriptions::uuid.eq(prescription_uuid)))
            .execute(c)?;
    });
    Ok(())
}

/// A prescription's items, in line order.
pub fn items_of(
    conn: &mut DbConnection,
    prescription_uuid: &str,
) -> Result<Vec<ItemRow>, AppError> {
    let query = items::table
        .filter(items::prescription_uuid.eq(prescription_uuid))
        .order(items::line.asc());
    Ok(on_backend!(conn, |c| query
        .select(ItemRow::as_select())
        .load(c)?))
}

/// Writes the row and its items' progress only if the row is still at `expected_version`;
/// `false` when somebody changed it meanwhile.
pub fn update_if_version(
    conn: &mut DbConnection,
    row: &Row,
    item_rows: &[ItemRow],
    expected_version: i64,
) -> Result<bool, AppError> {
    on_backend!(conn, |c| {
        let changed = update_where(
            &prescriptions::table,
            prescriptions::uuid
                .eq(&row.uuid)
                .and(prescriptions::version.eq(expected_version)),
            Progress::of(row),
        )
        .execute(c)?;
        if changed != 1 {
            return Ok(false);
        }
        for item in item_rows {
            update_where(
                &items::table,
                items::uuid.eq(&item.uuid),
                (
                    items::status.eq(item.status),
                    items::dispensed_quantity_milli.eq(item.dispensed_quantity),
                    items::not_dispensed_reason.eq(item.not_dispensed_reason),
                    items::supplies.eq(&item.supplies),
                ),
            )
            .execute(c)?;
        }
    });
    Ok(true)
}

/// Up to `limit` prescriptions nominated to `org` and waiting (To Be Dispensed, or a waiting
/// issue whose `ready_at` has come), oldest first. On PostgreSQL the batch is locked up front;
/// rows another instance is releasing are skipped, not waited for.
pub fn lock_nominated(
    conn: &mut DbConnection,
    org: &str,
    at: NaiveDateTime,
    limit: usize,
) -> Result<Vec<Row>, AppError> {
    let waiting = [
        Code(Status::AwaitingReleaseReady),
        Code(Status::FutureDated),
    ];
    let query = prescriptions::table
        .filter(prescriptions::nominated_pharmacy.eq(org))
        .filter(
            prescriptions::status
                .eq(Code(Status::ToBeDispensed))
                .or(prescriptions::status
                    .eq_any(waiting)
                    .and(prescriptions::ready_at.le(at))),
        )
        .filter(prescriptions::expires_at.gt(at))
        .order(prescriptions::created_at.asc())
        .limit(i64::try_from(limit).unwrap_or(i64::MAX));
    Ok(load_skipping_locked!(conn, query))
}

/// Up to `limit` prescriptions in one of `statuses` whose time is up; locked as in
/// [`lock_nominated`] (rows busy elsewhere wait for the next sweep).
pub fn lock_due(
    conn: &mut DbConnection,
    statuses: &[Status],
    at: NaiveDateTime,
    limit: i64,
) -> Result<Vec<Row>, AppError> {
    let codes: Vec<Code<Status>> = statuses.iter().copied().map(Code).collect();
    let query = prescriptions::table
        .filter(prescriptions::expires_at.le(at))
        .filter(prescriptions::status.eq_any(codes))
        .limit(limit);
    Ok(load_skipping_locked!(conn, query))
}

/// Records that `org` holds (has released) the prescription; once per organisation.
pub fn record_holder(
    conn: &mut DbConnection,
    org: &str,
    prescription_uuid: &str,
) -> Result<(), AppError> {
    let insert = diesel::insert_into(prescription_holders::table)
        .values((
            prescription_holders::org.eq(org),
            prescription_holders::prescription_uuid.eq(prescription_uuid),
        ))
        .on_conflict((
            prescription_holders::org,
            prescription_holders::prescription_uuid,
        ))
        .do_nothing();
    on_backend!(conn, |c| insert.execute(c)?);
    Ok(())
}

/// Who a tracker search may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchScope {
    /// Every prescription (administrators).
    All,
    /// Prescriptions the organisation issued or holds or ever held (released).
    Org(String),
}

/// A tracker search: the filters, and where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub scope: SearchScope,
    pub nhs_number: Option<String>,
    pub status: Option<Status>,
    /// Created at or after.
    pub from: Option<NaiveDateTime>,
    /// Created before.
    pub before: Option<NaiveDateTime>,
    /// The last `(created_at, uuid)` of the previous page.
    pub after: Option<(NaiveDateTime, String)>,
    pub limit: i64,
}

/// Up to `search.limit` matching prescriptions, newest first by `(created_at, uuid)` (a keyset:
/// each page starts strictly after the last row of the previous one, so pages neither repeat
/// nor skip rows while new prescriptions arrive).
pub fn search(conn: &mut DbConnection, search: &Search) -> Result<Vec<Row>, AppError> {
    let mut query = prescriptions::table.into_boxed();
    if let SearchScope::Org(org) = &search.scope {
        let held = prescription_holders::table
            .filter(prescription_holders::org.eq(org.clone()))
            .select(prescription_holders::prescription_uuid);
        query = query.filter(
            prescriptions::prescriber_org
                .eq(org.clone())
                .or(prescriptions::uuid.eq_any(held)),
        );
    }
    if let Some(nhs_number) = &search.nhs_number {
        query = query.filter(prescriptions::patient_nhs_number.eq(nhs_number.clone()));
    }
    if let Some(status) = search.status {
        query = query.filter(prescriptions::status.eq(Code(status)));
    }
    if let Some(from) = search.from {
        query = query.filter(prescriptions::created_at.ge(from));
    }
    if let Some(before) = search.before {
        query = query.filter(prescriptions::created_at.lt(before));
    }
    if let Some((created_at, uuid)) = &search.after {
        query = query.filter(
            prescriptions::created_at
                .lt(*created_at)
                .or(prescriptions::created_at
                    .eq(*created_at)
                    .and(prescriptions::uuid.lt(uuid.clone()))),
        );
    }
    Ok(query
        .order((prescriptions::created_at.desc(), prescriptions::uuid.desc()))
        .limit(search.limit)
        .select(Row::as_select())
        .load(conn)?)
}

/// The organisation's next sequence value (from 1), in the caller's transaction.
pub fn next_sequence(conn: &mut DbConnection, org: &str) -> Result<i64, AppError> {
    reserve_sequence(conn, org, 1)
}

/// Takes the next `count` values of the organisation's ID sequence (values start at 1) and
/// returns the last of them: the caller owns `last - count + 1 ..= last`.
pub fn reserve_sequence(conn: &mut DbConnection, org: &str, count: i64) -> Result<i64, AppError> {
    // One upsert, so two instances creating an organisation's first prescription at once
    // cannot both insert its row.
    let upsert = diesel::insert_into(org_sequences::table)
        .values((
            org_sequences::org.eq(org),
            org_sequences::next_value.eq(count),
        ))
        .on_conflict(org_sequences::org)
        .do_update()
        .set(org_sequences::next_value.eq(org_sequences::next_value + count));
    let last = org_sequences::table
        .filter(org_sequences::org.eq(org))
        .select(org_sequences::next_value);
    Ok(on_backend!(conn, |c| {
        upsert.execute(c)?;
        last.first(c)?
    }))
}

/// Prescription counts by status.
pub fn count_by_status(conn: &mut DbConnection) -> Result<Vec<(Status, i64)>, AppError> {
    use diesel::dsl::count_star;
    let query = prescriptions::table
        .group_by(prescriptions::status)
        .select((prescriptions::status, count_star()));
    let counts: Vec<(Code<Status>, i64)> = on_backend!(conn, |c| query.load(c)?);
    Ok(counts
        .into_iter()
        .map(|(status, count)| (status.0, count))
        .collect())
}

/// A dispense notification as recorded: what the prescription was before it, to withdraw it.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = dispense_notifications)]
pub struct Notification {
    pub uuid: String,
    pub prescription_uuid: String,
    pub org: String,
    pub actor: String,
    pub created_at: NaiveDateTime,
    pub withdrawn: bool,
    pub prior_status: Code<Status>,
    /// JSON: the items before the notification.
    pub prior_items: String,
    /// JSON: the notification as received.
    pub body: String,
}

pub fn insert_notification(
    conn: &mut DbConnection,
    notification: &Notification,
) -> Result<(), AppError> {
    let insert = diesel::insert_into(dispense_notifications::table).values(notification);
    on_backend!(conn, |c| insert.execute(c)?);
    Ok(())
}

/// The latest notification not withdrawn yet: its uuid, prior status and prior items (JSON).
pub fn latest_notification(
    conn: &mut DbConnection,
    prescription_uuid: &str,
) -> Result<Option<(String, Code<Status>, String)>, AppError> {
    let query = dispense_notifications::table
        .filter(dispense_notifications::prescription_uuid.eq(prescription_uuid))
        .filter(dispense_notifications::withdrawn.eq(false))
        .order(dispense_notifications::created_at.desc())
        .select((
            dispense_notifications::uuid,
            dispense_notifications::prior_status,
            dispense_notifications::prior_items,
        ));
    Ok(on_backend!(conn, |c| query.first(c).optional()?))
}

pub fn mark_withdrawn(conn: &mut DbConnection, notification_uuid: &str) -> Result<(), AppError> {
    let update = update_where(
        &dispense_notifications::table,
        dispense_notifications::uuid.eq(notification_uuid),
        dispense_notifications::withdrawn.eq(true),
    );
    on_backend!(conn, |c| update.execute(c)?);
    Ok(())
}
