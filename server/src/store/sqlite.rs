//! The embedded SQLite store (the default: `scimbridge serve` on a fresh checkout just works).
//!
//! One file in WAL mode with `synchronous=FULL`, so an acknowledged write survives a power cut.
//! Writes start with `BEGIN IMMEDIATE`, taking SQLite's single write lock up front: concurrent
//! writers queue (bounded by the busy timeout) instead of failing on a lock upgrade, and each
//! read-modify-write sees the latest committed state. The operations are in [`super::flows`];
//! this file spells their steps in SQLite (ids and timestamps as text, arrays as JSON).

use super::columns::{Indexed, member_type_of, member_type_str};
use super::filter_sql::{self, Backend, Bind};
use super::primitives::{
    Adoptable, JournalRow, Reader, Selection, Writer, adoptable_sql, attach_relation, count_sql,
    delete_members_where_sql, select_statement, table, wants_relation,
};
use super::types::{format_timestamp, parse_timestamp};
use super::{
    IfMatch, JournalEntry, ListPage, ListQuery, Load, NewResource, NewToken, Patcher, Source,
    Store, StoreError, StoredResource, Timestamp, TokenInfo, TokenRecord, WriteCtx, flows,
};
use async_trait::async_trait;
use scim_schema::filter::Filter;
use scim_schema::resource::MemberType;
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use std::collections::HashMap;
use std::ops::DerefMut;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Migrations applied by a newer release are tolerated (`ignore_missing`): each release's
/// migrations keep the previous release's code working (expand, then contract), so an older
/// pod restarting during a rolling upgrade, or a rollback, still starts.
static MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate::Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/sqlite") };

pub struct SqliteStore {
    /// One connection: SQLite has one writer at a time anyway, and queueing writers here (in
    /// async code) instead of in SQLite's busy handler keeps them from holding the readers'
    /// connections while they wait.
    writer: SqlitePool,
    readers: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<SqliteStore, StoreError> {
        Self::open(url, max_connections, true).await
    }

    /// [`SqliteStore::connect`]; `create`: whether a missing file is created.
    pub async fn open(
        url: &str,
        max_connections: u32,
        create: bool,
    ) -> Result<SqliteStore, StoreError> {
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
        Ok(SqliteStore { writer, readers })
    }

    async fn write(&self) -> Result<Session<Transaction<'static, Sqlite>>, StoreError> {
        Ok(Session(self.writer.begin_with("BEGIN IMMEDIATE").await?))
    }

    async fn read(&self) -> Result<Session<sqlx::pool::PoolConnection<Sqlite>>, StoreError> {
        Ok(Session(self.readers.acquire().await?))
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

/// A connection or a transaction, with the primitive steps spelled for SQLite.
struct Session<C>(C);

impl<C: DerefMut<Target = SqliteConnection> + Send> Session<C> {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.0
    }
}

pub(super) fn ts(t: &Timestamp) -> String {
    format_timestamp(t)
}

pub(super) fn get_ts(row: &SqliteRow, col: &str) -> Result<Timestamp, StoreError> {
    let s: String = row.try_get(col)?;
    parse_timestamp(&s).ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {s:?} in {col}")))
}

pub(super) fn get_opt_ts(row: &SqliteRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    match row.try_get::<Option<String>, _>(col)? {
        None => Ok(None),
        Some(s) => parse_timestamp(&s)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {s:?} in {col}"))),
    }
}

pub(super) fn get_uuid(row: &SqliteRow, col: &str) -> Result<Uuid, StoreError> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|_| StoreError::Corrupt(format!("bad id {s:?} in {col}")))
}

fn uuids(rows: Vec<String>) -> Result<Vec<Uuid>, StoreError> {
    rows.iter()
        .map(|s| Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("bad id {s:?}"))))
        .collect()
}

/// A JSON array of ids, for `json_each` (SQLite has no array parameters).
fn id_array(ids: &[Uuid]) -> String {
    let strings: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    serde_json::to_string(&strings).unwrap_or_else(|_| "[]".to_owned())
}

fn bind_all<'q>(
    mut q: Query<'q, Sqlite, SqliteArguments>,
    binds: Vec<Bind>,
) -> Query<'q, Sqlite, SqliteArguments> {
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Bool(v) => q.bind(v),
            Bind::Int(v) => q.bind(v),
            Bind::Float(v) => q.bind(v),
            Bind::Time(t) => q.bind(format_timestamp(&t)),
            Bind::Id(id) => q.bind(id.to_string()),
        };
    }
    q
}

fn resource_from_row(kind: ResourceKind, row: &SqliteRow) -> Result<StoredResource, StoreError> {
    let doc: String = row.try_get("doc")?;
    Ok(StoredResource {
        id: row.try_get("id")?,
        kind,
        doc: serde_json::from_str(&doc)
            .map_err(|e| StoreError::Corrupt(format!("bad JSON document: {e}")))?,
        version: row.try_get("version")?,
        created: get_ts(row, "created_at")?,
        modified: get_ts(row, "modified_at")?,
        members: None,
        groups: None,
    })
}

#[async_trait]
impl<C: DerefMut<Target = SqliteConnection> + Send> Reader for Session<C> {
    async fn count(
        &mut self,
        kind: ResourceKind,
        where_sql: &str,
        binds: Vec<Bind>,
    ) -> Result<i64, StoreError> {
        let row = bind_all(sqlx::query(AssertSqlSafe(count_sql(kind, where_sql))), binds)
            .fetch_one(self.conn())
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn select(&mut self, s: Selection<'_>) -> Result<Vec<StoredResource>, StoreError> {
        let rel = if wants_relation(s.kind, s.load) { relation_sql(s.kind) } else { "" };
        let kind = s.kind;
        let (sql, binds) = select_statement(s, rel);
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), binds).fetch_all(self.conn()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut res = resource_from_row(kind, row)?;
            if !rel.is_empty() {
                let text: Option<String> = row.try_get("rel")?;
                let value = match text {
                    Some(t) => Some(
                        serde_json::from_str(&t)
                            .map_err(|e| StoreError::Corrupt(format!("bad relation JSON: {e}")))?,
                    ),
                    None => None,
                };
                attach_relation(&mut res, value)?;
            }
            out.push(res);
        }
        Ok(out)
    }
}

/// The relation column of a [`Selection`]: members (with their display names) or groups,
/// aggregated per row.
fn relation_sql(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Group => {
            ", (SELECT json_group_array(json_array(m.member_id, m.member_type, \
                 COALESCE(u.display_name, u.user_name, g.display_name))) \
               FROM group_members m \
               LEFT JOIN users u ON m.member_type = 'User' AND u.id = m.member_id \
               LEFT JOIN groups g ON m.member_type = 'Group' AND g.id = m.member_id \
               WHERE m.group_id = r.id) AS rel"
        }
        ResourceKind::User => {
            ", (SELECT json_group_array(json_array(g.id, g.display_name) ORDER BY g.seq) \
               FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.member_id = r.id) AS rel"
        }
    }
}

#[async_trait]
impl Writer for Session<Transaction<'static, Sqlite>> {
    async fn lock_row(
        &mut self,
        kind: ResourceKind,
        source_id: i64,
        id: Uuid,
    ) -> Result<Option<(Value, i64)>, StoreError> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        let sql =
            format!("SELECT doc, version FROM {} WHERE id = $1 AND source_id = $2", table(kind));
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(source_id)
            .fetch_optional(self.conn())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let doc: String = row.try_get("doc")?;
        let doc = serde_json::from_str(&doc)
            .map_err(|e| StoreError::Corrupt(format!("bad JSON document: {e}")))?;
        Ok(Some((doc, row.try_get("version")?)))
    }

    async fn find_adoptable(
        &mut self,
        kind: ResourceKind,
        ix: &Indexed,
        from: &[String],
    ) -> Result<Option<Adoptable>, StoreError> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        let sql = adoptable_sql(kind, "IN (SELECT value FROM json_each($1))", "");
        let names = serde_json::to_string(from)
            .map_err(|e| StoreError::Corrupt(format!("source names: {e}")))?;
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(names)
            .bind(&ix.name_lower)
            .bind(&ix.external_id)
            .fetch_optional(self.conn())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let doc: String = row.try_get("doc")?;
        Ok(Some(Adoptable {
            id: get_uuid(&row, "id")?,
            from_source: row.try_get("source")?,
            doc: serde_json::from_str(&doc)
                .map_err(|e| StoreError::Corrupt(format!("bad JSON document: {e}")))?,
        }))
    }

    async fn set_owner(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        source_id: i64,
    ) -> Result<(), StoreError> {
        let sql = format!("UPDATE {} SET source_id = $2 WHERE id = $1", table(kind));
        sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(source_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    async fn insert_row(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        source_id: i64,
        ix: &Indexed,
        doc: &Value,
        now: Timestamp,
    ) -> Result<(), sqlx::Error> {
        let q = match kind {
            ResourceKind::User => sqlx::query(
                "INSERT INTO users (id, source_id, user_name, user_name_lower, external_id, display_name, \
                 active, doc, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(id.to_string())
            .bind(source_id)
            .bind(&ix.name)
            .bind(&ix.name_lower)
            .bind(&ix.external_id)
            .bind(&ix.display_name)
            .bind(ix.active),
            ResourceKind::Group => sqlx::query(
                "INSERT INTO groups (id, source_id, display_name, display_name_lower, external_id, doc, \
                 created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id.to_string())
            .bind(source_id)
            .bind(&ix.name)
            .bind(&ix.name_lower)
            .bind(&ix.external_id),
        };
        q.bind(doc.to_string()).bind(ts(&now)).execute(self.conn()).await.map(|_| ())
    }

    async fn update_row(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        ix: &Indexed,
        doc: &Value,
        now: Timestamp,
    ) -> Result<(), sqlx::Error> {
        let q = match kind {
            ResourceKind::User => sqlx::query(
                "UPDATE users SET user_name = $2, user_name_lower = $3, external_id = $4, display_name = $5, \
                 active = $6, doc = $7, version = version + 1, modified_at = $8 WHERE id = $1",
            )
            .bind(id.to_string())
            .bind(&ix.name)
            .bind(&ix.name_lower)
            .bind(&ix.external_id)
            .bind(&ix.display_name)
            .bind(ix.active),
            ResourceKind::Group => sqlx::query(
                "UPDATE groups SET display_name = $2, display_name_lower = $3, external_id = $4, doc = $5, \
                 version = version + 1, modified_at = $6 WHERE id = $1",
            )
            .bind(id.to_string())
            .bind(&ix.name)
            .bind(&ix.name_lower)
            .bind(&ix.external_id),
        };
        q.bind(doc.to_string()).bind(ts(&now)).execute(self.conn()).await.map(|_| ())
    }

    async fn bump_group_version(&mut self, id: Uuid, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE groups SET version = version + 1, modified_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(ts(&now))
            .execute(self.conn())
            .await?;
        Ok(())
    }

    async fn member_kinds(
        &mut self,
        source_id: i64,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, MemberType>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, 'User' AS t FROM users WHERE source_id = $1 AND id IN (SELECT value FROM json_each($2)) \
             UNION ALL SELECT id, 'Group' FROM groups WHERE source_id = $1 AND id IN (SELECT value FROM json_each($2))",
        )
        .bind(source_id)
        .bind(id_array(ids))
        .fetch_all(self.conn())
        .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in rows {
            let t: String = row.try_get("t")?;
            found.insert(get_uuid(&row, "id")?, member_type_of(&t));
        }
        Ok(found)
    }

    async fn reaches(&mut self, starts: &[Uuid], target: Uuid) -> Result<Option<Uuid>, StoreError> {
        let start: Option<String> = sqlx::query_scalar(
            "WITH RECURSIVE reach(start, id) AS ( \
               SELECT value, value FROM json_each($1) \
               UNION SELECT reach.start, m.member_id FROM group_members m JOIN reach ON m.group_id = reach.id \
               WHERE m.member_type = 'Group') \
             SELECT start FROM reach WHERE id = $2 LIMIT 1",
        )
        .bind(id_array(starts))
        .bind(target.to_string())
        .fetch_optional(self.conn())
        .await?;
        Ok(uuids(start.into_iter().collect())?.pop())
    }

    async fn insert_members(
        &mut self,
        group: Uuid,
        members: &[(Uuid, MemberType)],
    ) -> Result<Vec<Uuid>, StoreError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: Vec<(String, &str)> =
            members.iter().map(|(id, t)| (id.to_string(), member_type_str(*t))).collect();
        let json = serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned());
        // `WHERE true` resolves SQLite's parsing ambiguity between a join and ON CONFLICT.
        let added: Vec<String> = sqlx::query_scalar(
            "INSERT INTO group_members (group_id, member_id, member_type) \
             SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($2) WHERE true \
             ON CONFLICT DO NOTHING RETURNING member_id",
        )
        .bind(group.to_string())
        .bind(json)
        .fetch_all(self.conn())
        .await?;
        uuids(added)
    }

    async fn delete_members(&mut self, group: Uuid, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        let removed: Vec<String> = sqlx::query_scalar(
            "DELETE FROM group_members WHERE group_id = $1 AND member_id IN (SELECT value FROM json_each($2)) \
             RETURNING member_id",
        )
        .bind(group.to_string())
        .bind(id_array(ids))
        .fetch_all(self.conn())
        .await?;
        uuids(removed)
    }

    async fn delete_members_except(
        &mut self,
        group: Uuid,
        keep: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        let removed: Vec<String> = sqlx::query_scalar(
            "DELETE FROM group_members WHERE group_id = $1 AND member_id NOT IN (SELECT value FROM json_each($2)) \
             RETURNING member_id",
        )
        .bind(group.to_string())
        .bind(id_array(keep))
        .fetch_all(self.conn())
        .await?;
        uuids(removed)
    }

    async fn delete_members_where(
        &mut self,
        group: Uuid,
        filter: &Filter,
    ) -> Result<Vec<Uuid>, StoreError> {
        let cond = filter_sql::translate_members(Backend::Sqlite, filter, 2)?;
        let sql = delete_members_where_sql(&cond.sql);
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)).bind(group.to_string()), cond.binds)
            .fetch_all(self.conn())
            .await?;
        uuids(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
    }

    async fn detach_member(
        &mut self,
        member: Uuid,
        now: Timestamp,
    ) -> Result<Vec<Uuid>, StoreError> {
        let parents: Vec<String> = sqlx::query_scalar(
            "UPDATE groups SET version = version + 1, modified_at = $2 \
             WHERE id IN (SELECT group_id FROM group_members WHERE member_id = $1) RETURNING id",
        )
        .bind(member.to_string())
        .bind(ts(&now))
        .fetch_all(self.conn())
        .await?;
        sqlx::query("DELETE FROM group_members WHERE member_id = $1")
            .bind(member.to_string())
            .execute(self.conn())
            .await?;
        uuids(parents)
    }

    async fn delete_row(&mut self, kind: ResourceKind, id: Uuid) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", table(kind));
        sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).execute(self.conn()).await?;
        Ok(())
    }

    async fn journal(&mut self, row: JournalRow<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO change_journal (at, source_id, token_id, resource_type, resource_id, action, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ts(&row.at))
        .bind(row.ctx.source_id)
        .bind(row.ctx.token_id.map(|t| t.to_string()))
        .bind(row.kind.name())
        .bind(row.id.to_string())
        .bind(row.action)
        .bind(row.detail.map(|d| d.to_string()))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit().await?)
    }
}

fn source_from_row(row: &SqliteRow) -> Result<Source, sqlx::Error> {
    Ok(Source {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        compat: row.try_get("compat")?,
        detected_compat: row.try_get("detected_compat")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn journal_head(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM change_journal")
            .fetch_one(&self.readers)
            .await?)
    }

    async fn acquire_sync_lease(&self, holder: Uuid, seconds: u32) -> Result<bool, StoreError> {
        // One file on one machine: the local clock is the database's.
        let until = super::now() + chrono::TimeDelta::seconds(i64::from(seconds));
        let taken = sqlx::query(
            "INSERT INTO sync_lease (id, holder, expires_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE sync_lease.holder = excluded.holder OR sync_lease.expires_at < $3",
        )
        .bind(holder.to_string())
        .bind(ts(&until))
        .bind(ts(&super::now()))
        .execute(&self.writer)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    async fn release_sync_lease(&self, holder: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sync_lease WHERE holder = $1")
            .bind(holder.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn sync_running(&self) -> Result<bool, StoreError> {
        // Text order is time order (see `ts`).
        let held: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM sync_lease WHERE id = 1 AND expires_at > $1")
                .bind(ts(&super::now()))
                .fetch_optional(&self.readers)
                .await?;
        Ok(held.is_some())
    }

    async fn serving_rules(&self) -> Result<Option<super::ServingRules>, StoreError> {
        super::sqlite_sync::serving_rules(&self.readers).await
    }

    async fn sync_health(&self) -> Result<super::SyncHealthRecord, StoreError> {
        super::sqlite_sync::sync_health(&self.readers).await
    }

    async fn set_sync_failure(
        &self,
        failure: Option<&super::SyncFailure>,
    ) -> Result<(), StoreError> {
        super::sqlite_sync::set_sync_failure(&self.writer, failure).await
    }

    async fn set_identity_store(&self, store: &super::IdentityStoreRef) -> Result<(), StoreError> {
        super::sqlite_sync::set_identity_store(&self.writer, store).await
    }

    async fn snapshot(&self) -> Result<super::Snapshot, StoreError> {
        super::sqlite_sync::snapshot(&self.readers).await
    }

    async fn sync_state(&self) -> Result<super::SyncState, StoreError> {
        super::sqlite_sync::sync_state(&self.readers).await
    }

    async fn put_principal(&self, p: &super::AwsPrincipal) -> Result<(), StoreError> {
        super::sqlite_sync::put_principal(&self.writer, p).await
    }

    async fn remove_principal(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError> {
        super::sqlite_sync::remove_principal(&self.writer, kind, resource_id).await
    }

    async fn put_membership(&self, m: &super::AwsMembership) -> Result<(), StoreError> {
        super::sqlite_sync::put_membership(&self.writer, m).await
    }

    async fn remove_membership(&self, group_id: Uuid, user_id: Uuid) -> Result<(), StoreError> {
        super::sqlite_sync::remove_membership(&self.writer, group_id, user_id).await
    }

    async fn save_run(&self, run: &super::RunRecord) -> Result<(), StoreError> {
        super::sqlite_sync::save_run(&self.writer, run).await
    }

    async fn append_audit(&self, row: &super::AuditRow) -> Result<(), StoreError> {
        super::sqlite_sync::append_audit(&self.writer, row).await
    }

    async fn put_pending_create(&self, p: &super::PendingCreate) -> Result<(), StoreError> {
        super::sqlite_sync::put_pending_create(&self.writer, p).await
    }

    async fn remove_pending_create(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError> {
        super::sqlite_sync::remove_pending_create(&self.writer, kind, resource_id).await
    }

    async fn pending_creates(&self) -> Result<Vec<super::PendingCreate>, StoreError> {
        super::sqlite_sync::pending_creates(&self.readers).await
    }

    async fn access_state(&self) -> Result<super::AccessState, StoreError> {
        super::access_sql::sqlite::access_state(&self.readers).await
    }

    async fn put_access_object(&self, o: &super::AccessObject) -> Result<(), StoreError> {
        super::access_sql::sqlite::put_access_object(&self.writer, o).await
    }

    async fn remove_access_object(
        &self,
        kind: super::AccessObjectKind,
        name: &str,
    ) -> Result<(), StoreError> {
        super::access_sql::sqlite::remove_access_object(&self.writer, kind, name).await
    }

    async fn put_assignment(&self, a: &super::AssignmentRecord) -> Result<(), StoreError> {
        super::access_sql::sqlite::put_assignment(&self.writer, a).await
    }

    async fn remove_assignment(&self, key: &super::AssignmentKey) -> Result<(), StoreError> {
        super::access_sql::sqlite::remove_assignment(&self.writer, key).await
    }

    async fn sync_pause(&self) -> Result<Option<super::SyncPause>, StoreError> {
        super::control_sql::sqlite::sync_pause(&self.readers).await
    }

    async fn pause_sync(&self, pause: &super::SyncPause) -> Result<super::SyncPause, StoreError> {
        super::control_sql::sqlite::pause_sync(&self.writer, pause).await
    }

    async fn resume_sync(&self) -> Result<Option<super::SyncPause>, StoreError> {
        super::control_sql::sqlite::resume_sync(&self.writer).await
    }

    async fn put_hold(&self, hold: &super::Hold) -> Result<(), StoreError> {
        super::control_sql::sqlite::put_hold(&self.writer, hold).await
    }

    async fn get_hold(&self, run_id: Uuid) -> Result<Option<super::Hold>, StoreError> {
        super::control_sql::sqlite::get_hold(&self.readers, run_id).await
    }

    async fn open_holds(&self) -> Result<Vec<super::Hold>, StoreError> {
        super::control_sql::sqlite::open_holds(&self.readers).await
    }

    async fn approve_hold(
        &self,
        run_id: Uuid,
        by: &str,
        at: super::Timestamp,
    ) -> Result<bool, StoreError> {
        super::control_sql::sqlite::approve_hold(&self.writer, run_id, by, at).await
    }

    async fn close_hold(
        &self,
        run_id: Uuid,
        from: super::HoldState,
        to: super::HoldState,
        by_run: Uuid,
        at: super::Timestamp,
    ) -> Result<bool, StoreError> {
        super::control_sql::sqlite::close_hold(&self.writer, run_id, from, to, by_run, at).await
    }

    async fn recent_removals(
        &self,
        since: super::Timestamp,
    ) -> Result<super::Removals, StoreError> {
        super::sqlite_sync::recent_removals(&self.readers, since).await
    }

    async fn list_runs(&self, limit: i64) -> Result<Vec<super::RunRecord>, StoreError> {
        super::sqlite_sync::list_runs(&self.readers, limit).await
    }

    async fn get_run(&self, id: Uuid) -> Result<Option<super::RunRecord>, StoreError> {
        super::sqlite_sync::get_run(&self.readers, id).await
    }

    async fn list_audit(
        &self,
        query: &super::AuditQuery,
    ) -> Result<Vec<super::AuditEntry>, StoreError> {
        super::sqlite_sync::list_audit(&self.readers, query).await
    }

    async fn sync_counts(&self) -> Result<super::SyncCounts, StoreError> {
        super::sqlite_sync::sync_counts(&self.readers).await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn pool_stats(&self) -> Vec<super::PoolStats> {
        vec![
            super::PoolStats::of("readers", &self.readers),
            super::PoolStats::of("writer", &self.writer),
        ]
    }

    fn for_http_worker(self: Arc<Self>, _max_connections: u32) -> Arc<dyn Store> {
        self
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.readers)
        .await?;
        if MIGRATOR.iter().any(|m| !applied.contains(&m.version)) {
            return Err(StoreError::Corrupt("migrations pending".into()));
        }
        Ok(())
    }

    async fn upsert_source(&self, name: &str, compat: Option<&str>) -> Result<Source, StoreError> {
        let row = sqlx::query(
            "INSERT INTO sources (name, compat, created_at) VALUES ($1, COALESCE($2, 'auto'), $3) \
             ON CONFLICT (name) DO UPDATE SET compat = COALESCE($2, sources.compat) \
             RETURNING id, name, compat, detected_compat",
        )
        .bind(name)
        .bind(compat)
        .bind(ts(&super::now()))
        .fetch_one(&self.writer)
        .await?;
        Ok(source_from_row(&row)?)
    }

    async fn list_sources(&self) -> Result<Vec<Source>, StoreError> {
        let rows =
            sqlx::query("SELECT id, name, compat, detected_compat FROM sources ORDER BY name")
                .fetch_all(&self.readers)
                .await?;
        Ok(rows.iter().map(source_from_row).collect::<Result<_, _>>()?)
    }

    async fn insert_token(&self, token: &NewToken) -> Result<(), StoreError> {
        let kind = if token.source_id.is_some() { "scim" } else { "admin" };
        sqlx::query(
            "INSERT INTO tokens (id, source_id, kind, digest, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.id.to_string())
        .bind(token.source_id)
        .bind(kind)
        .bind(&token.digest)
        .bind(ts(&token.created_at))
        .bind(token.expires_at.as_ref().map(ts))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, s.name AS source, s.compat, s.detected_compat, t.created_at, t.expires_at, \
             t.last_used_at, t.revoked_at FROM tokens t LEFT JOIN sources s ON s.id = t.source_id ORDER BY t.created_at, t.id",
        )
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenInfo {
                    id: get_uuid(row, "id")?,
                    source: row.try_get("source")?,
                    compat: row.try_get("compat")?,
                    detected_compat: row.try_get("detected_compat")?,
                    created_at: get_ts(row, "created_at")?,
                    expires_at: get_opt_ts(row, "expires_at")?,
                    last_used_at: get_opt_ts(row, "last_used_at")?,
                    revoked_at: get_opt_ts(row, "revoked_at")?,
                })
            })
            .collect()
    }

    async fn revoke_token(&self, id: Uuid) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.to_string())
                .bind(ts(&super::now()))
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_token(&self, digest: &[u8]) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.digest, t.expires_at, t.last_used_at, t.revoked_at IS NOT NULL AS revoked, \
                    s.id AS source_id, s.name, s.compat, s.detected_compat \
             FROM tokens t LEFT JOIN sources s ON s.id = t.source_id WHERE t.digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let source = match row.try_get::<Option<i64>, _>("source_id")? {
            Some(id) => Some(Source {
                id,
                name: row.try_get("name")?,
                compat: row.try_get("compat")?,
                detected_compat: row.try_get("detected_compat")?,
            }),
            None => None,
        };
        Ok(Some(TokenRecord {
            id: get_uuid(&row, "id")?,
            digest: row.try_get("digest")?,
            source,
            expires_at: get_opt_ts(&row, "expires_at")?,
            last_used_at: get_opt_ts(&row, "last_used_at")?,
            revoked: row.try_get("revoked")?,
        }))
    }

    async fn touch_token(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(ts(&at))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn set_detected_compat(&self, source_id: i64, compat: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sources SET detected_compat = $2 WHERE id = $1 AND detected_compat IS NULL",
        )
        .bind(source_id)
        .bind(compat)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn create(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        new: &NewResource,
    ) -> Result<StoredResource, StoreError> {
        flows::create(self.write().await?, ctx, kind, new).await
    }

    async fn get(
        &self,
        source_id: i64,
        kind: ResourceKind,
        id: &str,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        flows::get(&mut self.read().await?, source_id, kind, id, load).await
    }

    async fn replace(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        new: &NewResource,
        cond: &IfMatch,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        flows::replace(self.write().await?, ctx, kind, id, new, cond, load).await
    }

    async fn patch(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        cond: &IfMatch,
        patcher: Patcher<'_>,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        flows::patch(self.write().await?, ctx, kind, id, cond, patcher, load).await
    }

    async fn delete(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        cond: &IfMatch,
    ) -> Result<(), StoreError> {
        flows::delete(self.write().await?, ctx, kind, id, cond).await
    }

    async fn list(
        &self,
        source_id: i64,
        kind: ResourceKind,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        flows::list(&mut self.read().await?, Backend::Sqlite, source_id, kind, query).await
    }

    async fn journal_since(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, source_id, token_id, resource_type, resource_id, action, detail \
             FROM change_journal WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                let token: Option<String> = row.try_get("token_id")?;
                let detail: Option<String> = row.try_get("detail")?;
                Ok(JournalEntry {
                    seq: row.try_get("seq")?,
                    at: get_ts(row, "at")?,
                    source_id: row.try_get("source_id")?,
                    token_id: token.and_then(|t| Uuid::parse_str(&t).ok()),
                    resource_type: row.try_get("resource_type")?,
                    resource_id: row.try_get("resource_id")?,
                    action: row.try_get("action")?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .collect()
    }
}
