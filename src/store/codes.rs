//! Code columns read and written as the contract's code tables. A stored code the table does not
//! have is a deserialisation error (the request fails with 500), never a default.

use std::fmt::Debug;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

use crate::domain::{CancelReason, ItemStatus, NotDispensedReason, Status, TreatmentType};

/// A code table of the contract, as the store needs it.
pub trait CodeTable: Copy + Debug + Send + 'static {
    const NAME: &'static str;
    fn parse(code: &str) -> Option<Self>;
    fn code(self) -> &'static str;
}

macro_rules! code_tables {
    ($($table:ident),+) => {$(
        impl CodeTable for $table {
            const NAME: &'static str = stringify!($table);
            fn parse(code: &str) -> Option<Self> {
                $table::parse(code)
            }
            fn code(self) -> &'static str {
                $table::code(self)
            }
        }
    )+};
}

code_tables!(
    Status,
    ItemStatus,
    NotDispensedReason,
    CancelReason,
    TreatmentType
);

/// A `TEXT` column holding a code of table `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct Code<T: CodeTable>(pub T);

impl<T: CodeTable, DB: Backend> FromSql<Text, DB> for Code<T>
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let stored = String::from_sql(bytes)?;
        T::parse(&stored)
            .map(Code)
            .ok_or_else(|| format!("stored {} code {stored:?} is not in the table", T::NAME).into())
    }
}

impl<T: CodeTable, DB: Backend> ToSql<Text, DB> for Code<T>
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.code().to_sql(out)
    }
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use super::*;

    fn read(text: &str) -> QueryResult<Code<Status>> {
        let mut conn = crate::store::connect(":memory:").expect("in-memory SQLite");
        diesel::select(text.into_sql::<Text>()).get_result(&mut conn)
    }

    #[test]
    fn a_stored_code_reads_as_its_table_entry_and_an_unknown_one_is_an_error() {
        assert_eq!(
            read("0002").expect("a known code"),
            Code(Status::WithDispenser)
        );
        let error = read("0099").expect_err("0099 is no status");
        let chain = format!("{error:?}");
        assert!(
            chain.contains(r#"stored Status code \"0099\" is not in the table"#),
            "{chain}"
        );
    }
}
