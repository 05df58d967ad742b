//! What really differs between the two databases, and nothing else: how a [`Bind`] is lowered
//! into a query, how a column is decoded ([`RowExt`]), the few SQL fragments whose spelling
//! differs ([`Dialect`]), and the pools behind a [`Backend`] (PostgreSQL: one pool per HTTP
//! worker; SQLite: one writer and a pool of readers). Every repository function is written once
//! over these in [`super::sql`].
//!
//! The generic surface is deliberately "SQL text and `Vec<Bind>` in, rows out": sqlx's own
//! generic-over-`Database` bounds (`for<'q> T: Encode<'q, DB>`, `&mut DB::Connection:
//! Executor`) are verbose, and `sqlx::Any` would erase the native UUID/TIMESTAMPTZ/JSONB types
//! on PostgreSQL and the pool topologies.

pub mod postgres;
pub mod sqlite;

use super::{PoolStats, StoreError, Timestamp};
use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

/// A value bound to a placeholder (`$n` on both backends: sqlx's SQLite driver maps `$n` to
/// argument n). Each backend lowers it to its column types: PostgreSQL binds native `uuid`,
/// `timestamptz`, `jsonb` and arrays; SQLite binds text (ids, RFC 3339 timestamps, JSON, and
/// arrays as JSON arrays for `json_each`).
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    Time(Timestamp),
    /// A resource id: `uuid` on PostgreSQL, text on SQLite.
    Id(Uuid),
    Json(Value),
    Bytes(Vec<u8>),
    /// `uuid[]` on PostgreSQL; a JSON array of strings on SQLite (see [`Dialect::in_array`]).
    Ids(Vec<Uuid>),
    /// `text[]` on PostgreSQL; a JSON array of strings on SQLite.
    Texts(Vec<String>),
    /// A NULL of this type (PostgreSQL types every parameter).
    Null(Ty),
}

/// The type of a [`Bind::Null`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Text,
    Int,
    Time,
    Id,
    Json,
}

/// A type whose NULL binds as [`Bind::Null`] of its [`Ty`], so `Option<T>` binds too.
pub trait Nullable: Into<Bind> {
    const TYPE: Ty;
}

macro_rules! bind_from {
    ($($t:ty => |$v:ident| $e:expr, $ty:ident;)+) => {
        $(
            impl From<$t> for Bind {
                fn from($v: $t) -> Bind {
                    $e
                }
            }
            impl Nullable for $t {
                const TYPE: Ty = Ty::$ty;
            }
        )+
    };
}

bind_from! {
    String => |v| Bind::Text(v), Text;
    &str => |v| Bind::Text(v.to_owned()), Text;
    &String => |v| Bind::Text(v.clone()), Text;
    i64 => |v| Bind::Int(v), Int;
    Timestamp => |v| Bind::Time(v), Time;
    &Timestamp => |v| Bind::Time(*v), Time;
    Uuid => |v| Bind::Id(v), Id;
    Value => |v| Bind::Json(v), Json;
    &Value => |v| Bind::Json(v.clone()), Json;
}

impl From<bool> for Bind {
    fn from(v: bool) -> Bind {
        Bind::Bool(v)
    }
}

impl<T: Nullable> From<Option<T>> for Bind {
    fn from(v: Option<T>) -> Bind {
        match v {
            Some(v) => v.into(),
            None => Bind::Null(T::TYPE),
        }
    }
}

/// `binds![a, b, …]`: a `Vec<Bind>` of values that convert into [`Bind`].
macro_rules! binds {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::store::backend::Bind::from($v)),*]
    };
}
pub(crate) use binds;

/// Decodes a column by name into the store's types, whatever the backend stores.
pub trait RowExt: Send + Sync + 'static {
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    fn bool(&self, col: &str) -> Result<bool, StoreError>;
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError>;
    fn uuid(&self, col: &str) -> Result<Uuid, StoreError>;
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, StoreError>;
    fn ts(&self, col: &str) -> Result<Timestamp, StoreError>;
    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>, StoreError>;
    fn json(&self, col: &str) -> Result<Value, StoreError>;
    fn opt_json(&self, col: &str) -> Result<Option<Value>, StoreError>;
}

/// A connection, or a transaction, statements run on in order.
#[async_trait]
pub trait Conn: Send {
    type Row: RowExt;

    async fn fetch_all(
        &mut self,
        sql: &str,
        binds: Vec<Bind>,
    ) -> Result<Vec<Self::Row>, StoreError>;
    async fn fetch_optional(
        &mut self,
        sql: &str,
        binds: Vec<Bind>,
    ) -> Result<Option<Self::Row>, StoreError>;
    /// Rows affected.
    async fn execute(&mut self, sql: &str, binds: Vec<Bind>) -> Result<u64, StoreError>;

    /// A statement that returns one row (an aggregate, an upsert's RETURNING).
    async fn fetch_one(&mut self, sql: &str, binds: Vec<Bind>) -> Result<Self::Row, StoreError> {
        self.fetch_optional(sql, binds)
            .await?
            .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }
}

/// A transaction: a [`Conn`] that ends in a commit (dropped, it rolls back).
#[async_trait]
pub trait Tx: Conn {
    async fn commit(self) -> Result<(), StoreError>;
}

/// Which of a backend's pools a single statement runs on: SQLite sends writes to its one
/// writer connection and reads to the readers; PostgreSQL has one pool for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A database: its pools, its dialect, and the operations whose mechanics differ (write
/// transactions, snapshot reads, migrations, error classification).
#[async_trait]
pub trait Backend: Send + Sync + Sized + 'static {
    type Row: RowExt;
    /// A pooled connection for reads.
    type Conn: Conn<Row = Self::Row>;
    /// A write transaction, or a snapshot.
    type Tx: Tx<Row = Self::Row>;

    /// The backend's name, for logs and `/readyz`.
    const NAME: &'static str;
    const DIALECT: Dialect;

    /// Connection pools by name, for `/metrics`.
    fn pool_stats(&self) -> Vec<PoolStats>;

    /// The backend one HTTP worker thread uses, or None when the worker shares this one.
    fn for_http_worker(&self, max_connections: u32) -> Option<Self>;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// The backend's migrations.
    fn migrator() -> &'static sqlx::migrate::Migrator;

    /// The versions of the known migrations not applied yet.
    async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        let rows = self.fetch_all(Access::Read, sql, Vec::new()).await?;
        let applied = rows.iter().map(|r| r.int("version")).collect::<Result<Vec<_>, _>>()?;
        Ok(Self::migrator().iter().map(|m| m.version).filter(|v| !applied.contains(v)).collect())
    }

    /// A connection for a read of several statements.
    async fn read(&self) -> Result<Self::Conn, StoreError>;

    /// A write transaction (PostgreSQL: rows are locked as read; SQLite: `BEGIN IMMEDIATE`,
    /// the database's write lock taken up front).
    async fn write(&self) -> Result<Self::Tx, StoreError>;

    /// A read-only transaction that sees one consistent state.
    async fn snapshot(&self) -> Result<Self::Tx, StoreError>;

    /// What an error of the first query of a request means: on PostgreSQL a pool timeout is
    /// told apart into a busy database and an unreachable one.
    async fn classify(&self, e: StoreError) -> StoreError;

    /// A pooled connection for one statement: the writer or a reader on SQLite, the pool on
    /// PostgreSQL. Its errors are the pool's own (see [`Backend::classify`]).
    async fn pooled(&self, on: Access) -> Result<Self::Conn, StoreError>;

    async fn fetch_all(
        &self,
        on: Access,
        sql: &str,
        binds: Vec<Bind>,
    ) -> Result<Vec<Self::Row>, StoreError> {
        self.pooled(on).await?.fetch_all(sql, binds).await
    }

    async fn fetch_optional(
        &self,
        on: Access,
        sql: &str,
        binds: Vec<Bind>,
    ) -> Result<Option<Self::Row>, StoreError> {
        self.pooled(on).await?.fetch_optional(sql, binds).await
    }

    /// Rows affected.
    async fn execute(&self, on: Access, sql: &str, binds: Vec<Bind>) -> Result<u64, StoreError> {
        self.pooled(on).await?.execute(sql, binds).await
    }

    async fn fetch_one(
        &self,
        on: Access,
        sql: &str,
        binds: Vec<Bind>,
    ) -> Result<Self::Row, StoreError> {
        self.pooled(on).await?.fetch_one(sql, binds).await
    }
}

/// A backend's `Session` (a pooled connection or a transaction) and its [`Conn`] and [`Tx`]
/// impls: the same text on both backends over each one's sqlx types (`$db`, its connection
/// and row), with the backend's own `bind` lowering each [`Bind`]. A macro rather than a
/// generic impl: sqlx's bounds for "any database" (`for<'c> &'c mut DB::Connection:
/// Executor<'c>`, `Arguments: IntoArguments`) would be longer than the impl.
macro_rules! session {
    ($db:ty, $connection:ty, $row:ty) => {
        /// A pooled connection or a transaction.
        pub struct Session<C>(C);

        /// The statement with its parameters bound.
        fn query(
            sql: &str,
            binds: Vec<$crate::store::backend::Bind>,
        ) -> sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments> {
            binds.into_iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), bind)
        }

        #[async_trait::async_trait]
        impl<C: std::ops::DerefMut<Target = $connection> + Send> $crate::store::backend::Conn
            for Session<C>
        {
            type Row = $row;

            async fn fetch_all(
                &mut self,
                sql: &str,
                binds: Vec<$crate::store::backend::Bind>,
            ) -> Result<Vec<$row>, $crate::store::StoreError> {
                Ok(query(sql, binds).fetch_all(&mut *self.0).await?)
            }

            async fn fetch_optional(
                &mut self,
                sql: &str,
                binds: Vec<$crate::store::backend::Bind>,
            ) -> Result<Option<$row>, $crate::store::StoreError> {
                Ok(query(sql, binds).fetch_optional(&mut *self.0).await?)
            }

            async fn execute(
                &mut self,
                sql: &str,
                binds: Vec<$crate::store::backend::Bind>,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok(query(sql, binds).execute(&mut *self.0).await?.rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::backend::Tx for Session<sqlx::Transaction<'static, $db>> {
            async fn commit(self) -> Result<(), $crate::store::StoreError> {
                Ok(self.0.commit().await?)
            }
        }
    };
}
pub(crate) use session;

/// A [`Backend`]'s row, connection and transaction types, over the `Session` of [`session!`].
macro_rules! session_types {
    ($db:ty, $row:ty) => {
        type Row = $row;
        type Conn = Session<sqlx::pool::PoolConnection<$db>>;
        type Tx = Session<sqlx::Transaction<'static, $db>>;
    };
}
pub(crate) use session_types;

/// `match $b { … }` binding `$b` to the query `$q`: text, booleans, integers, floats and
/// bytes as they are (both databases take them natively), every other [`Bind`] by the
/// backend's own arms.
macro_rules! bind_match {
    ($q:ident, $b:ident, { $($arm:tt)* }) => {
        match $b {
            $crate::store::backend::Bind::Text(v) => $q.bind(v),
            $crate::store::backend::Bind::Bool(v) => $q.bind(v),
            $crate::store::backend::Bind::Int(v) => $q.bind(v),
            $crate::store::backend::Bind::Float(v) => $q.bind(v),
            $crate::store::backend::Bind::Bytes(v) => $q.bind(v),
            $($arm)*
        }
    };
}
pub(crate) use bind_match;

/// [`RowExt`] methods for the columns a database decodes natively (`int: i64` makes
/// `fn int(&self, col: &str) -> Result<i64, StoreError>`); with no list, the integers,
/// booleans, text and bytes that both databases decode natively.
macro_rules! native_columns {
    () => {
        $crate::store::backend::native_columns!(int: i64, opt_int: Option<i64>, bool: bool, text: String, opt_text: Option<String>, bytes: Vec<u8>);
    };
    ($($method:ident: $ty:ty),+ $(,)?) => {
        $(
            fn $method(&self, col: &str) -> Result<$ty, $crate::store::StoreError> {
                Ok(sqlx::Row::try_get(self, col)?)
            }
        )+
    };
}
pub(crate) use native_columns;

/// The SQL fragments whose spelling differs between the two databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// Appended to a SELECT that locks the rows it reads for the transaction. SQLite needs
    /// none: `BEGIN IMMEDIATE` already holds the database's write lock.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }

    /// [`Dialect::for_update`] of the rows of alias `r` only.
    pub fn for_update_of_r(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE OF r",
            Dialect::Sqlite => "",
        }
    }

    /// Appended to a SELECT of members: PostgreSQL's FOR KEY SHARE keeps each member from
    /// being deleted (and a group from gaining this group as a member) until the transaction
    /// ends, so no membership can point at a deleted resource and concurrent nesting cannot
    /// make a cycle.
    pub fn key_share(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR KEY SHARE",
            Dialect::Sqlite => "",
        }
    }

    /// An inner join whose left table is read first, then the right one by its index. SQLite
    /// without statistics may otherwise walk a whole large table in `ORDER BY` order to save a
    /// sort (its documented CROSS JOIN rule fixes the order); PostgreSQL plans by its
    /// statistics and accepts no `ON` after CROSS JOIN.
    pub fn join_driven_by_left(self) -> &'static str {
        match self {
            Dialect::Postgres => "JOIN",
            Dialect::Sqlite => "CROSS JOIN",
        }
    }

    /// `expr` is one of the array parameter `$n` ([`Bind::Ids`], [`Bind::Texts`]).
    pub fn in_array(self, expr: &str, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("{expr} = ANY(${n})"),
            Dialect::Sqlite => format!("{expr} IN (SELECT value FROM json_each(${n}))"),
        }
    }

    /// The rows of an id array parameter `$n` as `(value, value)` pairs (a recursive walk's
    /// start).
    pub fn id_array_pairs(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("SELECT s, s FROM unnest(${n}::uuid[]) AS s"),
            Dialect::Sqlite => format!("SELECT value, value FROM json_each(${n})"),
        }
    }

    /// JSON aggregation of rows, each a JSON array: `json_agg(json_build_array(…))` or
    /// `json_group_array(json_array(…))`. `order` (`ORDER BY …` or empty) orders the
    /// aggregate.
    pub fn json_agg_arrays(self, items: &str, order: &str) -> String {
        match self {
            Dialect::Postgres => format!("json_agg(json_build_array({items}){order})"),
            Dialect::Sqlite => format!("json_group_array(json_array({items}){order})"),
        }
    }

    /// Whether array parameters are native ([`Bind::Ids`] as `uuid[]`) rather than JSON text.
    pub fn native_arrays(self) -> bool {
        self == Dialect::Postgres
    }

    /// `expr` compared and ordered byte by byte: SQLite's default; PostgreSQL's default
    /// collation is the database's locale, which would order a report differently on each
    /// server (and differently from SQLite).
    pub fn bytewise(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("{expr} COLLATE \"C\""),
            Dialect::Sqlite => expr.to_owned(),
        }
    }

    /// Whether a run's report (`sync_runs.report`) says it was a full run, in each database's
    /// JSON spelling.
    pub fn run_was_full(self) -> &'static str {
        match self {
            Dialect::Postgres => "(report ->> 'full') = 'true'",
            Dialect::Sqlite => "json_extract(report, '$.full') = 1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_bind_as_typed_nulls() {
        let none: Option<&str> = None;
        let binds = binds![none, Some(3_i64), None::<Uuid>, true];
        assert_eq!(
            binds,
            [Bind::Null(Ty::Text), Bind::Int(3), Bind::Null(Ty::Id), Bind::Bool(true)]
        );
    }

    #[test]
    fn array_parameters_per_dialect() {
        assert_eq!(Dialect::Postgres.in_array("m.member_id", 2), "m.member_id = ANY($2)");
        assert_eq!(
            Dialect::Sqlite.in_array("m.member_id", 2),
            "m.member_id IN (SELECT value FROM json_each($2))"
        );
    }
}
