//! Quantity columns: exact decimals stored as whole thousandths in a `BIGINT` (the same on
//! SQLite and PostgreSQL), within the contract's [`MAX_SCALE`] of 3 decimal places.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;
use prescrypt_contract::quantity::{Decimal, MAX_SCALE};
use rust_decimal::RoundingStrategy;
use rust_decimal::prelude::ToPrimitive;

/// A `BIGINT` column holding a quantity in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[diesel(sql_type = BigInt)]
pub struct Thousandths {
    value: Decimal,
    stored: i64,
}

impl Thousandths {
    pub const ZERO: Self = Self {
        value: Decimal::ZERO,
        stored: 0,
    };

    /// `value` to the nearest thousandth. Quantities under the contract's rule (and their sums,
    /// which never exceed the prescribed quantity) are whole thousandths, so nothing is rounded.
    pub fn new(value: Decimal) -> Self {
        let value = value
            .round_dp_with_strategy(MAX_SCALE, RoundingStrategy::MidpointAwayFromZero)
            .normalize();
        let stored = (value * Decimal::from(1000)).to_i64().unwrap_or(i64::MAX);
        Self { value, stored }
    }

    /// The quantity.
    pub fn get(self) -> Decimal {
        self.value
    }
}

impl<DB: Backend> FromSql<BigInt, DB> for Thousandths
where
    i64: FromSql<BigInt, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let stored = i64::from_sql(bytes)?;
        Ok(Self {
            value: Decimal::new(stored, MAX_SCALE).normalize(),
            stored,
        })
    }
}

impl<DB: Backend> ToSql<BigInt, DB> for Thousandths
where
    i64: ToSql<BigInt, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.stored.to_sql(out)
    }
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn thousandths_round_trip_exactly() {
        let mut conn = crate::store::connect(":memory:").expect("in-memory SQLite");
        for text in ["0.001", "0.1", "2.5", "21", "1000000"] {
            let back: Thousandths = diesel::select(Thousandths::new(d(text)).into_sql::<BigInt>())
                .get_result(&mut conn)
                .unwrap();
            assert_eq!(back, Thousandths::new(d(text)));
            assert_eq!(back.get(), d(text));
        }
        let stored: i64 = diesel::select(Thousandths::new(d("2.5")).into_sql::<BigInt>())
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(stored, 2500);
    }
}
