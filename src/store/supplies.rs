//! The `items.supplies` column: every supply of an item (what was handed over, when, how much),
//! stored as a JSON array beside the item it belongs to.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use prescrypt_contract::views::Supply;

/// An item's supplies, oldest first, and their stored JSON (kept in step, so writing the row
/// borrows the text rather than serialising inside diesel).
#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct Supplies {
    list: Vec<Supply>,
    stored: String,
}

impl Supplies {
    pub fn new(list: Vec<Supply>) -> Self {
        let stored = serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
        Self { list, stored }
    }

    pub fn none() -> Self {
        Self::new(Vec::new())
    }

    pub fn list(&self) -> &[Supply] {
        &self.list
    }

    pub fn push(&mut self, supply: Supply) {
        let mut list = std::mem::take(&mut self.list);
        list.push(supply);
        *self = Self::new(list);
    }
}

impl<DB: Backend> FromSql<Text, DB> for Supplies
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let stored = String::from_sql(bytes)?;
        let list = serde_json::from_str(&stored)
            .map_err(|e| format!("stored item supplies are not a supply list: {e}"))?;
        Ok(Self { list, stored })
    }
}

impl<DB: Backend> ToSql<Text, DB> for Supplies
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.stored.as_str().to_sql(out)
    }
}
