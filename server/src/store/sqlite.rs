//! The embedded SQLite store (the default: `scimbridge serve` on a fresh checkout just works).
//!
//! One file in WAL mode with `synchronous=FULL`, so an acknowledged write survives a power cut.
//! Writes start with `BEGIN IMMEDIATE`, taking SQLite's single write lock up front: concurrent
//! writers queue (bounded by the busy timeout) instead of failing on a lock upgrade, and each
//! read-modify-write sees the latest committed state.

use super::columns::{
    Indexed, MemberDelta, check_members, cycle_error, is_name_conflict, journal_detail,
    member_type_of, member_type_str, parse_member_ids, uniqueness_error,
};
use super::filter_sql::{self, Backend, Bind};
use super::types::{format_timestamp, parse_timestamp};
use super::{
    GroupRefOut, IfMatch, JournalEntry, ListPage, ListQuery, Load, MemberOut, NewResource,
    NewToken, PatchPlan, Patcher, Source, Store, StoreError, StoredResource, Timestamp, TokenInfo,
    TokenRecord, WriteCtx,
};
use async_trait::async_trait;
use scim_schema::patch::MemberChange;
use scim_schema::resource::{MemberRef, MemberType};
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

type Tx = Transaction<'static, Sqlite>;

fn table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    }
}

fn ts(t: &Timestamp) -> String {
    format_timestamp(t)
}

fn get_ts(row: &SqliteRow, col: &str) -> Result<Timestamp, StoreError> {
    let s: String = row.try_get(col)?;
    parse_timestamp(&s).ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {s:?} in {col}")))
}

fn get_opt_ts(row: &SqliteRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    match row.try_get::<Option<String>, _>(col)? {
        None => Ok(None),
        Some(s) => parse_timestamp(&s)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {s:?} in {col}"))),
    }
}

fn get_doc(row: &SqliteRow, col: &str) -> Result<Value, StoreError> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("bad JSON in {col}: {e}")))
}

fn get_uuid(row: &SqliteRow, col: &str) -> Result<Uuid, StoreError> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|_| StoreError::Corrupt(format!("bad id {s:?} in {col}")))
}

/// A JSON array of ids, for `json_each` (SQLite has no array parameters).
fn id_array(ids: &[Uuid]) -> String {
    let strings: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    serde_json::to_string(&strings).unwrap_or_else(|_| "[]".to_owned())
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
    }

    async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn lock_row(
        tx: &mut Tx,
        kind: ResourceKind,
        source_id: i64,
        id: &str,
    ) -> Result<(Uuid, Value, i64), StoreError> {
        let Ok(uid) = Uuid::parse_str(id) else { return Err(StoreError::NotFound) };
        let sql = match kind {
            ResourceKind::User => "SELECT doc, version FROM users WHERE id = $1 AND source_id = $2",
            ResourceKind::Group => {
                "SELECT doc, version FROM groups WHERE id = $1 AND source_id = $2"
            }
        };
        let row = sqlx::query(sql)
            .bind(uid.to_string())
            .bind(source_id)
            .fetch_optional(&mut **tx)
            .await?;
        let row = row.ok_or(StoreError::NotFound)?;
        Ok((uid, get_doc(&row, "doc")?, row.try_get("version")?))
    }

    async fn resolve_members(
        tx: &mut Tx,
        source_id: i64,
        group_id: Uuid,
        refs: &[MemberRef],
    ) -> Result<Vec<(Uuid, MemberType)>, StoreError> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let ids = parse_member_ids(refs)?;
        let rows = sqlx::query(
            "SELECT id, 'User' AS t FROM users WHERE source_id = $1 AND id IN (SELECT value FROM json_each($2)) \
             UNION ALL SELECT id, 'Group' FROM groups WHERE source_id = $1 AND id IN (SELECT value FROM json_each($2))",
        )
        .bind(source_id)
        .bind(id_array(&ids))
        .fetch_all(&mut **tx)
        .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in rows {
            let t: String = row.try_get("t")?;
            found.insert(get_uuid(&row, "id")?, member_type_of(&t));
        }
        let members = check_members(group_id, refs, &ids, &found)?;
        let nested: Vec<Uuid> =
            members.iter().filter(|(_, t)| *t == MemberType::Group).map(|(id, _)| *id).collect();
        if !nested.is_empty() {
            let cycle: Option<String> = sqlx::query_scalar(
                "WITH RECURSIVE reach(start, id) AS ( \
                   SELECT value, value FROM json_each($1) \
                   UNION SELECT reach.start, m.member_id FROM group_members m JOIN reach ON m.group_id = reach.id \
                   WHERE m.member_type = 'Group') \
                 SELECT start FROM reach WHERE id = $2 LIMIT 1",
            )
            .bind(id_array(&nested))
            .bind(group_id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(start) = cycle {
                return Err(cycle_error(&Uuid::parse_str(&start).unwrap_or_default()).into());
            }
        }
        Ok(members)
    }

    async fn add_members(
        tx: &mut Tx,
        group_id: Uuid,
        members: &[(Uuid, MemberType)],
        delta: &mut MemberDelta,
    ) -> Result<(), StoreError> {
        if members.is_empty() {
            return Ok(());
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
        .bind(group_id.to_string())
        .bind(json)
        .fetch_all(&mut **tx)
        .await?;
        delta.record_added(added);
        Ok(())
    }

    async fn remove_members(
        tx: &mut Tx,
        group_id: Uuid,
        ids: &[Uuid],
        delta: &mut MemberDelta,
    ) -> Result<(), StoreError> {
        let removed: Vec<String> = sqlx::query_scalar(
            "DELETE FROM group_members WHERE group_id = $1 AND member_id IN (SELECT value FROM json_each($2)) \
             RETURNING member_id",
        )
        .bind(group_id.to_string())
        .bind(id_array(ids))
        .fetch_all(&mut **tx)
        .await?;
        delta.record_removed(removed);
        Ok(())
    }

    async fn replace_members(
        tx: &mut Tx,
        source_id: i64,
        group_id: Uuid,
        refs: &[MemberRef],
        delta: &mut MemberDelta,
    ) -> Result<(), StoreError> {
        let members = Self::resolve_members(tx, source_id, group_id, refs).await?;
        let keep: Vec<Uuid> = members.iter().map(|(id, _)| *id).collect();
        let removed: Vec<String> = sqlx::query_scalar(
            "DELETE FROM group_members WHERE group_id = $1 AND member_id NOT IN (SELECT value FROM json_each($2)) \
             RETURNING member_id",
        )
        .bind(group_id.to_string())
        .bind(id_array(&keep))
        .fetch_all(&mut **tx)
        .await?;
        delta.record_removed(removed);
        Self::add_members(tx, group_id, &members, delta).await
    }

    async fn apply_member_change(
        tx: &mut Tx,
        source_id: i64,
        group_id: Uuid,
        change: &MemberChange,
        delta: &mut MemberDelta,
    ) -> Result<(), StoreError> {
        match change {
            MemberChange::Add(refs) => {
                let members = Self::resolve_members(tx, source_id, group_id, refs).await?;
                Self::add_members(tx, group_id, &members, delta).await
            }
            MemberChange::Remove(values) => {
                let ids: Vec<Uuid> =
                    values.iter().filter_map(|v| Uuid::parse_str(v).ok()).collect();
                Self::remove_members(tx, group_id, &ids, delta).await
            }
            MemberChange::RemoveAll => {
                Self::replace_members(tx, source_id, group_id, &[], delta).await
            }
            MemberChange::ReplaceAll(refs) => {
                Self::replace_members(tx, source_id, group_id, refs, delta).await
            }
            MemberChange::RemoveWhere(filter) => {
                let cond = filter_sql::translate_members(Backend::Sqlite, filter, 2)?;
                let sql = format!(
                    "DELETE FROM group_members AS m WHERE m.group_id = $1 AND {} RETURNING m.member_id",
                    cond.sql
                );
                let q = bind_all(
                    sqlx::query(AssertSqlSafe(sql)).bind(group_id.to_string()),
                    cond.binds,
                );
                let rows = q.fetch_all(&mut **tx).await?;
                let removed: Result<Vec<String>, _> = rows.iter().map(|r| r.try_get(0)).collect();
                delta.record_removed(removed?);
                Ok(())
            }
        }
    }

    async fn write_row(
        tx: &mut Tx,
        kind: ResourceKind,
        id: Uuid,
        doc: &Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let ix = Indexed::of(kind, doc)?;
        let result = match kind {
            ResourceKind::User => {
                sqlx::query(
                    "UPDATE users SET user_name = $2, user_name_lower = $3, external_id = $4, \
                     display_name = $5, active = $6, doc = $7, version = version + 1, modified_at = $8 \
                     WHERE id = $1",
                )
                .bind(id.to_string())
                .bind(&ix.name)
                .bind(&ix.name_lower)
                .bind(&ix.external_id)
                .bind(&ix.display_name)
                .bind(ix.active)
                .bind(doc.to_string())
                .bind(ts(&now))
                .execute(&mut **tx)
                .await
            }
            ResourceKind::Group => {
                sqlx::query(
                    "UPDATE groups SET display_name = $2, display_name_lower = $3, external_id = $4, \
                     doc = $5, version = version + 1, modified_at = $6 WHERE id = $1",
                )
                .bind(id.to_string())
                .bind(&ix.name)
                .bind(&ix.name_lower)
                .bind(&ix.external_id)
                .bind(doc.to_string())
                .bind(ts(&now))
                .execute(&mut **tx)
                .await
            }
        };
        match result {
            Err(e) if is_name_conflict(&e) => Err(uniqueness_error(kind, &ix).into()),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    async fn bump_version(tx: &mut Tx, id: Uuid, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE groups SET version = version + 1, modified_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(ts(&now))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn journal(
        tx: &mut Tx,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: Uuid,
        action: &str,
        detail: Option<Value>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO change_journal (at, source_id, token_id, resource_type, resource_id, action, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ts(&now))
        .bind(ctx.source_id)
        .bind(ctx.token_id.map(|t| t.to_string()))
        .bind(kind.name())
        .bind(id.to_string())
        .bind(action)
        .bind(detail.map(|d| d.to_string()))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn load_members(
        conn: &mut SqliteConnection,
        group_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<MemberOut>>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.group_id, m.member_id, m.member_type, \
                    COALESCE(u.display_name, u.user_name, g.display_name) AS display \
             FROM group_members m \
             LEFT JOIN users u ON m.member_type = 'User' AND u.id = m.member_id \
             LEFT JOIN groups g ON m.member_type = 'Group' AND g.id = m.member_id \
             WHERE m.group_id IN (SELECT value FROM json_each($1))",
        )
        .bind(id_array(group_ids))
        .fetch_all(&mut *conn)
        .await?;
        let mut out: HashMap<Uuid, Vec<MemberOut>> = HashMap::new();
        for row in rows {
            let t: String = row.try_get("member_type")?;
            out.entry(get_uuid(&row, "group_id")?).or_default().push(MemberOut {
                value: row.try_get("member_id")?,
                member_type: member_type_of(&t),
                display: row.try_get("display")?,
            });
        }
        Ok(out)
    }

    async fn load_groups(
        conn: &mut SqliteConnection,
        user_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<GroupRefOut>>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.member_id, g.id, g.display_name FROM group_members m \
             JOIN groups g ON g.id = m.group_id \
             WHERE m.member_id IN (SELECT value FROM json_each($1)) ORDER BY g.seq",
        )
        .bind(id_array(user_ids))
        .fetch_all(&mut *conn)
        .await?;
        let mut out: HashMap<Uuid, Vec<GroupRefOut>> = HashMap::new();
        for row in rows {
            out.entry(get_uuid(&row, "member_id")?).or_default().push(GroupRefOut {
                value: row.try_get("id")?,
                display: row.try_get("display_name")?,
            });
        }
        Ok(out)
    }

    async fn fetch(
        conn: &mut SqliteConnection,
        kind: ResourceKind,
        rows: Vec<SqliteRow>,
        load: Load,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let mut out = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(resource_from_row(kind, row)?);
            ids.push(get_uuid(row, "id")?);
        }
        match kind {
            ResourceKind::Group if load.members => {
                let mut members = Self::load_members(conn, &ids).await?;
                for (r, id) in out.iter_mut().zip(&ids) {
                    r.members = Some(members.remove(id).unwrap_or_default());
                }
            }
            ResourceKind::User if load.groups => {
                let mut groups = Self::load_groups(conn, &ids).await?;
                for (r, id) in out.iter_mut().zip(&ids) {
                    r.groups = Some(groups.remove(id).unwrap_or_default());
                }
            }
            _ => {}
        }
        Ok(out)
    }

    async fn fetch_one(
        conn: &mut SqliteConnection,
        kind: ResourceKind,
        id: Uuid,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        let sql = match kind {
            ResourceKind::User => {
                "SELECT id, doc, version, created_at, modified_at FROM users WHERE id = $1"
            }
            ResourceKind::Group => {
                "SELECT id, doc, version, created_at, modified_at FROM groups WHERE id = $1"
            }
        };
        let row = sqlx::query(sql).bind(id.to_string()).fetch_optional(&mut *conn).await?;
        let row = row.ok_or(StoreError::NotFound)?;
        let mut all = Self::fetch(conn, kind, vec![row], load).await?;
        all.pop().ok_or(StoreError::NotFound)
    }
}

fn resource_from_row(kind: ResourceKind, row: &SqliteRow) -> Result<StoredResource, StoreError> {
    Ok(StoredResource {
        id: row.try_get("id")?,
        kind,
        doc: get_doc(row, "doc")?,
        version: row.try_get("version")?,
        created: get_ts(row, "created_at")?,
        modified: get_ts(row, "modified_at")?,
        members: None,
        groups: None,
    })
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
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
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
        .fetch_one(&self.pool)
        .await?;
        Ok(source_from_row(&row)?)
    }

    async fn list_sources(&self) -> Result<Vec<Source>, StoreError> {
        let rows =
            sqlx::query("SELECT id, name, compat, detected_compat FROM sources ORDER BY name")
                .fetch_all(&self.pool)
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, s.name AS source, t.created_at, t.expires_at, t.last_used_at, t.revoked_at \
             FROM tokens t LEFT JOIN sources s ON s.id = t.source_id ORDER BY t.created_at, t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenInfo {
                    id: get_uuid(row, "id")?,
                    source: row.try_get("source")?,
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
                .execute(&self.pool)
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
        .fetch_optional(&self.pool)
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_detected_compat(&self, source_id: i64, compat: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sources SET detected_compat = $2 WHERE id = $1")
            .bind(source_id)
            .bind(compat)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        new: &NewResource,
    ) -> Result<StoredResource, StoreError> {
        let ix = Indexed::of(kind, &new.doc)?;
        let id = Uuid::now_v7();
        let now = ts(&super::now());
        let mut tx = self.begin_write().await?;
        let inserted = match kind {
            ResourceKind::User => {
                sqlx::query(
                    "INSERT INTO users (id, source_id, user_name, user_name_lower, external_id, display_name, \
                     active, doc, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                )
                .bind(id.to_string())
                .bind(ctx.source_id)
                .bind(&ix.name)
                .bind(&ix.name_lower)
                .bind(&ix.external_id)
                .bind(&ix.display_name)
                .bind(ix.active)
                .bind(new.doc.to_string())
                .bind(&now)
                .execute(&mut *tx)
                .await
            }
            ResourceKind::Group => {
                sqlx::query(
                    "INSERT INTO groups (id, source_id, display_name, display_name_lower, external_id, doc, \
                     created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(id.to_string())
                .bind(ctx.source_id)
                .bind(&ix.name)
                .bind(&ix.name_lower)
                .bind(&ix.external_id)
                .bind(new.doc.to_string())
                .bind(&now)
                .execute(&mut *tx)
                .await
            }
        };
        match inserted {
            Err(e) if is_name_conflict(&e) => return Err(uniqueness_error(kind, &ix).into()),
            other => other?,
        };
        let mut delta = MemberDelta::default();
        if let (ResourceKind::Group, Some(refs)) = (kind, &new.members) {
            let members = Self::resolve_members(&mut tx, ctx.source_id, id, refs).await?;
            Self::add_members(&mut tx, id, &members, &mut delta).await?;
        }
        let detail = journal_detail(kind, None, None, &delta);
        let at = parse_timestamp(&now).unwrap_or_else(super::now);
        Self::journal(&mut tx, ctx, kind, id, "create", detail, at).await?;
        let created =
            Self::fetch_one(&mut tx, kind, id, Load { members: true, groups: true }).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn get(
        &self,
        source_id: i64,
        kind: ResourceKind,
        id: &str,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        let Ok(uid) = Uuid::parse_str(id) else { return Err(StoreError::NotFound) };
        let sql = format!(
            "SELECT id, doc, version, created_at, modified_at FROM {} WHERE id = $1 AND source_id = $2",
            table(kind)
        );
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(uid.to_string())
            .bind(source_id)
            .fetch_optional(&mut *conn)
            .await?;
        let row = row.ok_or(StoreError::NotFound)?;
        let mut all = Self::fetch(&mut conn, kind, vec![row], load).await?;
        all.pop().ok_or(StoreError::NotFound)
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
        let mut tx = self.begin_write().await?;
        let (uid, before, version) = Self::lock_row(&mut tx, kind, ctx.source_id, id).await?;
        if !cond.allows(version) {
            return Err(StoreError::PreconditionFailed);
        }
        let now = super::now();
        let mut delta = MemberDelta::default();
        if let (ResourceKind::Group, Some(refs)) = (kind, &new.members) {
            Self::replace_members(&mut tx, ctx.source_id, uid, refs, &mut delta).await?;
        }
        let doc_changed = before != new.doc;
        if doc_changed {
            Self::write_row(&mut tx, kind, uid, &new.doc, now).await?;
        } else if !delta.is_empty() {
            Self::bump_version(&mut tx, uid, now).await?;
        }
        if doc_changed || !delta.is_empty() {
            let detail = journal_detail(kind, Some(&before), Some(&new.doc), &delta);
            Self::journal(&mut tx, ctx, kind, uid, "replace", detail, now).await?;
        }
        let out = Self::fetch_one(&mut tx, kind, uid, load).await?;
        tx.commit().await?;
        Ok(out)
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
        let mut tx = self.begin_write().await?;
        let (uid, before, version) = Self::lock_row(&mut tx, kind, ctx.source_id, id).await?;
        if !cond.allows(version) {
            return Err(StoreError::PreconditionFailed);
        }
        let PatchPlan { doc, member_changes } = patcher(&before)?;
        let now = super::now();
        let mut delta = MemberDelta::default();
        for change in &member_changes {
            Self::apply_member_change(&mut tx, ctx.source_id, uid, change, &mut delta).await?;
        }
        let new_doc = doc.filter(|d| *d != before);
        if let Some(d) = &new_doc {
            Self::write_row(&mut tx, kind, uid, d, now).await?;
        } else if !delta.is_empty() {
            Self::bump_version(&mut tx, uid, now).await?;
        }
        if new_doc.is_some() || !delta.is_empty() {
            let after = new_doc.as_ref().unwrap_or(&before);
            let detail = journal_detail(kind, Some(&before), Some(after), &delta);
            Self::journal(&mut tx, ctx, kind, uid, "patch", detail, now).await?;
        }
        let out = Self::fetch_one(&mut tx, kind, uid, load).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn delete(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        cond: &IfMatch,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let (uid, before, version) = Self::lock_row(&mut tx, kind, ctx.source_id, id).await?;
        if !cond.allows(version) {
            return Err(StoreError::PreconditionFailed);
        }
        let now = super::now();
        let parents: Vec<String> = sqlx::query_scalar(
            "UPDATE groups SET version = version + 1, modified_at = $2 \
             WHERE id IN (SELECT group_id FROM group_members WHERE member_id = $1) RETURNING id",
        )
        .bind(uid.to_string())
        .bind(ts(&now))
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM group_members WHERE member_id = $1")
            .bind(uid.to_string())
            .execute(&mut *tx)
            .await?;
        let sql = format!("DELETE FROM {} WHERE id = $1", table(kind));
        sqlx::query(AssertSqlSafe(sql)).bind(uid.to_string()).execute(&mut *tx).await?;
        let name_attr = if kind == ResourceKind::User { "userName" } else { "displayName" };
        let mut detail = serde_json::json!({ "name": before.get(name_attr) });
        if !parents.is_empty() {
            detail["member_of"] = serde_json::json!(parents);
        }
        Self::journal(&mut tx, ctx, kind, uid, "delete", Some(detail), now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list(
        &self,
        source_id: i64,
        kind: ResourceKind,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        let mut where_sql = "r.source_id = $1".to_owned();
        let mut binds = Vec::new();
        if let Some(f) = &query.filter {
            let w = filter_sql::translate(Backend::Sqlite, kind, f, 2)?;
            where_sql = format!("{where_sql} AND {}", w.sql);
            binds = w.binds;
        }
        let mut conn = self.pool.acquire().await?;
        let count_sql = format!("SELECT COUNT(*) FROM {} r WHERE {where_sql}", table(kind));
        let total: i64 =
            bind_all(sqlx::query(AssertSqlSafe(count_sql)).bind(source_id), binds.clone())
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
        if query.count <= 0 || total < query.start_index {
            return Ok(ListPage { total, resources: Vec::new() });
        }
        let order = match &query.sort_by {
            Some(p) => {
                let e = filter_sql::sort_expression(Backend::Sqlite, kind, p)?;
                let dir = if query.descending { "DESC" } else { "ASC" };
                format!("{e} {dir} NULLS LAST, r.seq")
            }
            None => "r.seq".to_owned(),
        };
        let n = binds.len() + 2;
        let sql = format!(
            "SELECT r.id, r.doc, r.version, r.created_at, r.modified_at FROM {} r WHERE {where_sql} \
             ORDER BY {order} LIMIT ${n} OFFSET ${}",
            table(kind),
            n + 1
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)).bind(source_id), binds)
            .bind(query.count)
            .bind(query.start_index - 1)
            .fetch_all(&mut *conn)
            .await?;
        let resources = Self::fetch(&mut conn, kind, rows, query.load).await?;
        Ok(ListPage { total, resources })
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
        .fetch_all(&self.pool)
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
