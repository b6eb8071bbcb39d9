//! The `claims` table: one claim per prescription, amended in place.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::claims;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = claims)]
pub struct ClaimRow {
    pub prescription_uuid: String,
    pub org: String,
    pub claimed_at: NaiveDateTime,
    pub amended_at: Option<NaiveDateTime>,
    /// The contract's `ClaimView` as JSON.
    pub body: String,
}

pub fn find(
    conn: &mut DbConnection,
    prescription_uuid: &str,
) -> Result<Option<ClaimRow>, AppError> {
    Ok(claims::table
        .find(prescription_uuid)
        .select(ClaimRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut DbConnection, row: &ClaimRow) -> Result<(), AppError> {
    diesel::insert_into(claims::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn amend(
    conn: &mut DbConnection,
    prescription_uuid: &str,
    body: &str,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::update(claims::table.find(prescription_uuid))
        .set((claims::body.eq(body), claims::amended_at.eq(at)))
        .execute(conn)?;
    Ok(())
}
