//! How the store's queries are built: once in diesel's DSL, run on the concrete connection
//! ([`on_backend!`](crate::store::on_backend)), `UPDATE`s kept prepared ([`update_where`]), and
//! time-ordered row keys ([`ordered_uuid`]).

use diesel::prelude::*;

/// A new UUID (version 7) for a row created at `at`: time-ordered, so rows and index entries
/// keyed by it land at the end of their B-trees — one page written per group commit instead of
/// one random page per row (74 random bits; nothing relies on UUIDs being unguessable, every
/// access is authorised).
pub fn ordered_uuid(at: chrono::NaiveDateTime) -> String {
    let millis = u64::try_from(at.and_utc().timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random::<[u8; 10]>())
        .into_uuid()
        .to_string()
}

/// Runs `$body` with `$c` bound to `$conn`'s concrete connection: every query of the store is
/// written once in diesel's DSL and compiled for each backend.
///
/// Why not through the `MultiConnection` itself: it renders each query through its
/// `MultiBackend` first, which on the single writer cost more than SQLite's own work (a
/// prescription insert spent 58 % of its samples walking the query's AST; creates went from
/// 183 to 132 µs of writer CPU when run on the concrete connection, docs/benchmarks-service.md).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConnection::Sqlite($c) => $body,
            $crate::store::DbConnection::Postgresql($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// `UPDATE table SET changes WHERE filter`, kept in the connection's prepared-statement cache.
///
/// diesel never caches its own `UPDATE` statements (their SQL *may* vary with the values), so
/// each one was parsed and planned again at every execution: by SQLite on the single writer, by
/// PostgreSQL on every request. This is the same statement built from the same diesel parts,
/// all of which may be cached; its cache key is its SQL text. Use it only with changesets whose
/// SQL does not depend on the values (tuples of `eq`, `treat_none_as_null` structs), or the
/// cache grows by a statement per variant.
pub fn update_where<T, F, V>(
    table: &T,
    filter: F,
    changes: V,
) -> Update<T::FromClause, F, V::Changeset>
where
    T: diesel::Table,
    V: AsChangeset<Target = T>,
{
    Update {
        table: table.from_clause(),
        filter,
        changes: changes.as_changeset(),
    }
}

/// See [`update_where`].
#[derive(Debug, Clone, Copy)]
pub struct Update<T, F, C> {
    table: T,
    filter: F,
    changes: C,
}

impl<T, F, C, DB> diesel::query_builder::QueryFragment<DB> for Update<T, F, C>
where
    DB: diesel::backend::Backend,
    T: diesel::query_builder::QueryFragment<DB>,
    F: diesel::query_builder::QueryFragment<DB>,
    C: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        self.changes.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.filter.walk_ast(out.reborrow())
    }
}

impl<T, F, C> diesel::query_builder::QueryId for Update<T, F, C> {
    type QueryId = ();
    // Keyed by its SQL text and bind types, not its type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T, F, C, Conn> RunQueryDsl<Conn> for Update<T, F, C> {}
