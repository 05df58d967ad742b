//! The embedded SQLite database (the default: `scimbridge serve` on a fresh checkout just
//! works): ids, timestamps and JSON stored as text, arrays bound as JSON for `json_each`.
//!
//! One file in WAL mode with `synchronous=FULL`, so an acknowledged write survives a power cut.
//! Write transactions start with `BEGIN IMMEDIATE`, taking SQLite's single write lock up front:
//! concurrent writers queue (bounded by the busy timeout) instead of failing on a lock upgrade,
//! and each read-modify-write sees the latest committed state.

use super::{Access, Backend, Bind, Dialect, RowExt};
use crate::store::{PoolStats, StoreError, Timestamp, format_timestamp, parse_timestamp};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// Migrations applied by a newer release are tolerated (`ignore_missing`): each release's
/// migrations keep the previous release's code working (expand, then contract), so an older
/// pod restarting during a rolling upgrade, or a rollback, still starts.
static MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate::Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/sqlite") };

pub struct SqliteBackend {
    /// One connection: SQLite has one writer at a time anyway, and queueing writers here (in
    /// async code) instead of in SQLite's busy handler keeps them from holding the readers'
    /// connections while they wait.
    writer: SqlitePool,
    readers: SqlitePool,
}

impl SqliteBackend {
    /// Opens the database; `create`: whether a missing file is created.
    pub async fn open(
        url: &str,
        max_connections: u32,
        create: bool,
    ) -> Result<SqliteBackend, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        // sqlx's own message ("unable to open database file") names no file.
        let cannot_open = |e: sqlx::Error| {
            StoreError::Unavailable(format!(
                "cannot open the SQLite database {}: {e}",
                options.get_filename().display()
            ))
        };
        let options = options
            .clone()
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Other processes (the CLI) may write too.
            .busy_timeout(Duration::from_secs(30));
        let writer = pool_options(1).connect_with(options.clone()).await.map_err(cannot_open)?;
        let readers =
            pool_options(max_connections).connect_with(options).await.map_err(cannot_open)?;
        Ok(SqliteBackend { writer, readers })
    }

    fn pool(&self, on: Access) -> &SqlitePool {
        match on {
            Access::Read => &self.readers,
            Access::Write => &self.writer,
        }
    }
}

/// The file a `sqlite:` URL names, made absolute (sqlx opens it relative to the working
/// directory); None for another scheme, an in-memory database or a URL sqlx would refuse.
pub fn file_path(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    std::path::absolute(options.get_filename()).ok()
}

/// Every connection gets `scim_lower()` (see the `sqlite-fold` crate): filters and sorting fold
/// case with it, as PostgreSQL's `lower()` does, where SQLite's `lower()` folds ASCII only.
fn pool_options(max_connections: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| Box::pin(sqlite_fold::register(conn)))
}

#[async_trait]
impl Backend for SqliteBackend {
    super::session_types!(Sqlite, SqliteRow);

    const NAME: &'static str = "sqlite";
    const DIALECT: Dialect = Dialect::Sqlite;

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![PoolStats::of("readers", &self.readers), PoolStats::of("writer", &self.writer)]
    }

    /// Each connection runs on a thread of its own: every worker shares this backend.
    fn for_http_worker(&self, _max_connections: u32) -> Option<SqliteBackend> {
        None
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn read(&self) -> Result<Self::Conn, StoreError> {
        Ok(Session(self.readers.acquire().await?))
    }

    async fn write(&self) -> Result<Self::Tx, StoreError> {
        Ok(Session(self.writer.begin_with("BEGIN IMMEDIATE").await?))
    }

    /// One read transaction: WAL gives it one consistent view.
    async fn snapshot(&self) -> Result<Self::Tx, StoreError> {
        Ok(Session(self.readers.begin().await?))
    }

    async fn classify(&self, e: StoreError) -> StoreError {
        e
    }

    async fn pooled(&self, on: Access) -> Result<Self::Conn, StoreError> {
        Ok(Session(self.pool(on).acquire().await?))
    }
}

super::session!(Sqlite, SqliteConnection, SqliteRow);

/// A JSON array of strings, for `json_each` (SQLite has no array parameters).
fn json_array<T: ToString>(items: &[T]) -> String {
    Value::Array(items.iter().map(|i| Value::String(i.to_string())).collect()).to_string()
}

/// Binds one value: ids, timestamps, JSON and arrays as text.
fn bind(q: Query<'_, Sqlite, SqliteArguments>, b: Bind) -> Query<'_, Sqlite, SqliteArguments> {
    super::bind_match!(q, b, {
        Bind::Time(t) => q.bind(format_timestamp(&t)),
        Bind::Id(id) => q.bind(id.to_string()),
        Bind::Json(v) => q.bind(v.to_string()),
        Bind::Ids(v) => q.bind(json_array(&v)),
        Bind::Texts(v) => q.bind(json_array(&v)),
        Bind::Null(_) => q.bind(None::<String>),
    })
}

fn corrupt(what: &str, text: &str, col: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what} {text:?} in {col}"))
}

/// Ids, timestamps and JSON are text, parsed here; a value that does not parse is corrupt.
impl RowExt for SqliteRow {
    super::native_columns!();

    fn uuid(&self, col: &str) -> Result<Uuid, StoreError> {
        let s: String = self.try_get(col)?;
        Uuid::parse_str(&s).map_err(|_| corrupt("id", &s, col))
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, StoreError> {
        match self.try_get::<Option<String>, _>(col)? {
            None => Ok(None),
            Some(s) => Uuid::parse_str(&s).map(Some).map_err(|_| corrupt("id", &s, col)),
        }
    }
    fn ts(&self, col: &str) -> Result<Timestamp, StoreError> {
        let s: String = self.try_get(col)?;
        parse_timestamp(&s).ok_or_else(|| corrupt("timestamp", &s, col))
    }
    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>, StoreError> {
        match self.try_get::<Option<String>, _>(col)? {
            None => Ok(None),
            Some(s) => parse_timestamp(&s).map(Some).ok_or_else(|| corrupt("timestamp", &s, col)),
        }
    }
    fn json(&self, col: &str) -> Result<Value, StoreError> {
        let s: String = self.try_get(col)?;
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("bad JSON in {col}: {e}")))
    }
    fn opt_json(&self, col: &str) -> Result<Option<Value>, StoreError> {
        match self.try_get::<Option<String>, _>(col)? {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("bad JSON in {col}: {e}"))),
        }
    }
}
