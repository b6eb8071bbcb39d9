//! The prescriber-signature tables: enrolled public keys and prepared prescriptions awaiting
//! their signature.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{prepared_prescriptions, prescriber_keys};
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = prescriber_keys)]
pub struct KeyRow {
    pub kid: String,
    pub sub: String,
    pub org: String,
    /// The public key, BASE64URL without padding (the JWK's `x`).
    pub x: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = prepared_prescriptions)]
pub struct PreparedRow {
    pub prepared_id: String,
    pub sub: String,
    pub org: String,
    pub kid: String,
    pub signing_input: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// Set, with `prescription_uuid`, when the signature was accepted.
    pub signature: Option<String>,
    pub prescription_uuid: Option<String>,
}

pub fn find_key(conn: &mut DbConnection, kid: &str) -> Result<Option<KeyRow>, AppError> {
    Ok(prescriber_keys::table
        .find(kid)
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert_key(conn: &mut DbConnection, row: &KeyRow) -> Result<(), AppError> {
    diesel::insert_into(prescriber_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn revoke_key(conn: &mut DbConnection, kid: &str, at: NaiveDateTime) -> Result<(), AppError> {
    diesel::update(prescriber_keys::table.find(kid))
        .filter(prescriber_keys::revoked_at.is_null())
        .set(prescriber_keys::revoked_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Every key ever enrolled, oldest first.
pub fn all_keys(conn: &mut DbConnection) -> Result<Vec<KeyRow>, AppError> {
    Ok(prescriber_keys::table
        .order((prescriber_keys::created_at, prescriber_keys::kid))
        .select(KeyRow::as_select())
        .load(conn)?)
}

pub fn insert_prepared(conn: &mut DbConnection, row: &PreparedRow) -> Result<(), AppError> {
    diesel::insert_into(prepared_prescriptions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// A prepared prescription, locked until the transaction ends on PostgreSQL (so two signed
/// creates of one prepared ID cannot both pass the "not used yet" check).
pub fn find_prepared(
    conn: &mut DbConnection,
    prepared_id: &str,
) -> Result<Option<PreparedRow>, AppError> {
    let query = prepared_prescriptions::table.find(prepared_id);
    Ok(match conn {
        DbConnection::Postgresql(pg) => query
            .select(PreparedRow::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        other => query
            .select(PreparedRow::as_select())
            .first(other)
            .optional()?,
    })
}

/// Records the accepted signature; false when someone else recorded one first.
pub fn mark_used(
    conn: &mut DbConnection,
    prepared_id: &str,
    signature: &str,
    prescription_uuid: &str,
) -> Result<bool, AppError> {
    let updated = diesel::update(prepared_prescriptions::table.find(prepared_id))
        .filter(prepared_prescriptions::signature.is_null())
        .set((
            prepared_prescriptions::signature.eq(signature),
            prepared_prescriptions::prescription_uuid.eq(prescription_uuid),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Deletes prepared prescriptions that expired before `before` (used or not).
pub fn prune_prepared(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, AppError> {
    Ok(diesel::delete(
        prepared_prescriptions::table.filter(prepared_prescriptions::expires_at.lt(before)),
    )
    .execute(conn)?)
}
