//! The PostgreSQL store (production; any number of replicas share one database).
//!
//! Writes lock the resource row (`SELECT … FOR UPDATE`) for their read-modify-write, so
//! concurrent PATCHes of one group serialise and never lose a member.

use super::columns::{
    Indexed, MemberDelta, check_members, cycle_error, is_name_conflict, journal_detail,
    member_type_of, member_type_str, parse_member_ids, uniqueness_error,
};
use super::filter_sql::{self, Backend, Bind};
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
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row, Transaction};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub struct PgStore {
    pool: PgPool,
}

type Tx = Transaction<'static, Postgres>;

fn table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("scimbridge");
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(PgStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn lock_row(
        tx: &mut Tx,
        kind: ResourceKind,
        source_id: i64,
        id: &str,
    ) -> Result<(Uuid, Value, i64), StoreError> {
        let Ok(uid) = Uuid::parse_str(id) else { return Err(StoreError::NotFound) };
        let sql = match kind {
            ResourceKind::User => {
                "SELECT doc, version FROM users WHERE id = $1 AND source_id = $2 FOR UPDATE"
            }
            ResourceKind::Group => {
                "SELECT doc, version FROM groups WHERE id = $1 AND source_id = $2 FOR UPDATE"
            }
        };
        let row = sqlx::query(sql).bind(uid).bind(source_id).fetch_optional(&mut **tx).await?;
        let row = row.ok_or(StoreError::NotFound)?;
        Ok((uid, row.try_get("doc")?, row.try_get("version")?))
    }

    /// Resolves member refs to (id, type) within the source, rejecting unknown ids, wrong types
    /// and cycles.
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
            "SELECT id, 'User' AS t FROM users WHERE source_id = $1 AND id = ANY($2) \
             UNION ALL SELECT id, 'Group' FROM groups WHERE source_id = $1 AND id = ANY($2)",
        )
        .bind(source_id)
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in rows {
            let t: String = row.try_get("t")?;
            found.insert(row.try_get::<Uuid, _>("id")?, member_type_of(&t));
        }
        let members = check_members(group_id, refs, &ids, &found)?;
        let nested: Vec<Uuid> =
            members.iter().filter(|(_, t)| *t == MemberType::Group).map(|(id, _)| *id).collect();
        if !nested.is_empty() {
            // Would `group_id` become reachable from itself?
            let cycle: Option<Uuid> = sqlx::query_scalar(
                "WITH RECURSIVE reach(start, id) AS ( \
                   SELECT s, s FROM unnest($1::uuid[]) AS s \
                   UNION SELECT reach.start, m.member_id FROM group_members m JOIN reach ON m.group_id = reach.id \
                   WHERE m.member_type = 'Group') \
                 SELECT start FROM reach WHERE id = $2 LIMIT 1",
            )
            .bind(&nested)
            .bind(group_id)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(start) = cycle {
                return Err(cycle_error(&start).into());
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
        let ids: Vec<Uuid> = members.iter().map(|(id, _)| *id).collect();
        let types: Vec<&str> = members.iter().map(|(_, t)| member_type_str(*t)).collect();
        let added: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO group_members (group_id, member_id, member_type) \
             SELECT $1, id, t FROM unnest($2::uuid[], $3::text[]) AS x(id, t) \
             ON CONFLICT DO NOTHING RETURNING member_id",
        )
        .bind(group_id)
        .bind(&ids)
        .bind(&types)
        .fetch_all(&mut **tx)
        .await?;
        delta.record_added(added.iter().map(Uuid::to_string));
        Ok(())
    }

    async fn remove_members(
        tx: &mut Tx,
        group_id: Uuid,
        ids: &[Uuid],
        delta: &mut MemberDelta,
    ) -> Result<(), StoreError> {
        let removed: Vec<Uuid> = sqlx::query_scalar(
            "DELETE FROM group_members WHERE group_id = $1 AND member_id = ANY($2) RETURNING member_id",
        )
        .bind(group_id)
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
        delta.record_removed(removed.iter().map(Uuid::to_string));
        Ok(())
    }

    /// Makes the membership exactly `refs`: removes the others, adds the missing.
    async fn replace_members(
        tx: &mut Tx,
        source_id: i64,
        group_id: Uuid,
        refs: &[MemberRef],
        delta: &mut MemberDelta,
    ) -> Result<(), StoreError> {
        let members = Self::resolve_members(tx, source_id, group_id, refs).await?;
        let keep: Vec<Uuid> = members.iter().map(|(id, _)| *id).collect();
        let removed: Vec<Uuid> = sqlx::query_scalar(
            "DELETE FROM group_members WHERE group_id = $1 AND NOT (member_id = ANY($2)) RETURNING member_id",
        )
        .bind(group_id)
        .bind(&keep)
        .fetch_all(&mut **tx)
        .await?;
        delta.record_removed(removed.iter().map(Uuid::to_string));
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
                // Ids that are not UUIDs cannot be members: nothing to remove for them.
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
                let cond = filter_sql::translate_members(Backend::Postgres, filter, 2)?;
                let sql = format!(
                    "DELETE FROM group_members AS m WHERE m.group_id = $1 AND {} RETURNING m.member_id",
                    cond.sql
                );
                let q = bind_all(sqlx::query(AssertSqlSafe(sql)).bind(group_id), cond.binds);
                let rows = q.fetch_all(&mut **tx).await?;
                let removed: Result<Vec<Uuid>, _> = rows.iter().map(|r| r.try_get(0)).collect();
                delta.record_removed(removed?.iter().map(Uuid::to_string));
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
                .bind(id)
                .bind(&ix.name)
                .bind(&ix.name_lower)
                .bind(&ix.external_id)
                .bind(&ix.display_name)
                .bind(ix.active)
                .bind(doc)
                .bind(now)
                .execute(&mut **tx)
                .await
            }
            ResourceKind::Group => {
                sqlx::query(
                    "UPDATE groups SET display_name = $2, display_name_lower = $3, external_id = $4, \
                     doc = $5, version = version + 1, modified_at = $6 WHERE id = $1",
                )
                .bind(id)
                .bind(&ix.name)
                .bind(&ix.name_lower)
                .bind(&ix.external_id)
                .bind(doc)
                .bind(now)
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
            .bind(id)
            .bind(now)
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
        .bind(now)
        .bind(ctx.source_id)
        .bind(ctx.token_id)
        .bind(kind.name())
        .bind(id)
        .bind(action)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn load_members(
        exec: &mut sqlx::PgConnection,
        group_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<MemberOut>>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.group_id, m.member_id, m.member_type, \
                    COALESCE(u.display_name, u.user_name, g.display_name) AS display \
             FROM group_members m \
             LEFT JOIN users u ON m.member_type = 'User' AND u.id = m.member_id \
             LEFT JOIN groups g ON m.member_type = 'Group' AND g.id = m.member_id \
             WHERE m.group_id = ANY($1)",
        )
        .bind(group_ids)
        .fetch_all(&mut *exec)
        .await?;
        let mut out: HashMap<Uuid, Vec<MemberOut>> = HashMap::new();
        for row in rows {
            let t: String = row.try_get("member_type")?;
            out.entry(row.try_get("group_id")?).or_default().push(MemberOut {
                value: row.try_get::<Uuid, _>("member_id")?.to_string(),
                member_type: member_type_of(&t),
                display: row.try_get("display")?,
            });
        }
        Ok(out)
    }

    async fn load_groups(
        exec: &mut sqlx::PgConnection,
        user_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<GroupRefOut>>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.member_id, g.id, g.display_name FROM group_members m \
             JOIN groups g ON g.id = m.group_id WHERE m.member_id = ANY($1) ORDER BY g.seq",
        )
        .bind(user_ids)
        .fetch_all(&mut *exec)
        .await?;
        let mut out: HashMap<Uuid, Vec<GroupRefOut>> = HashMap::new();
        for row in rows {
            out.entry(row.try_get("member_id")?).or_default().push(GroupRefOut {
                value: row.try_get::<Uuid, _>("id")?.to_string(),
                display: row.try_get("display_name")?,
            });
        }
        Ok(out)
    }

    /// Reads full resources by id (in the given order) with the relations `load` asks for.
    async fn fetch(
        exec: &mut sqlx::PgConnection,
        kind: ResourceKind,
        rows: Vec<PgRow>,
        load: Load,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(resource_from_row(kind, row)?);
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
        match kind {
            ResourceKind::Group if load.members => {
                let mut members = Self::load_members(exec, &ids).await?;
                for (r, id) in out.iter_mut().zip(&ids) {
                    r.members = Some(members.remove(id).unwrap_or_default());
                }
            }
            ResourceKind::User if load.groups => {
                let mut groups = Self::load_groups(exec, &ids).await?;
                for (r, id) in out.iter_mut().zip(&ids) {
                    r.groups = Some(groups.remove(id).unwrap_or_default());
                }
            }
            _ => {}
        }
        Ok(out)
    }

    async fn fetch_one(
        exec: &mut sqlx::PgConnection,
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
        let row = sqlx::query(sql).bind(id).fetch_optional(&mut *exec).await?;
        let row = row.ok_or(StoreError::NotFound)?;
        let mut all = Self::fetch(exec, kind, vec![row], load).await?;
        all.pop().ok_or(StoreError::NotFound)
    }
}

fn resource_from_row(kind: ResourceKind, row: &PgRow) -> Result<StoredResource, StoreError> {
    Ok(StoredResource {
        id: row.try_get::<Uuid, _>("id")?.to_string(),
        kind,
        doc: row.try_get("doc")?,
        version: row.try_get("version")?,
        created: row.try_get("created_at")?,
        modified: row.try_get("modified_at")?,
        members: None,
        groups: None,
    })
}

fn bind_all<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    binds: Vec<Bind>,
) -> Query<'q, Postgres, PgArguments> {
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Bool(v) => q.bind(v),
            Bind::Int(v) => q.bind(v),
            Bind::Float(v) => q.bind(v),
            Bind::Time(t) => q.bind(t),
            Bind::Id(id) => q.bind(id),
        };
    }
    q
}

fn token_info_from_row(row: &PgRow) -> Result<TokenInfo, sqlx::Error> {
    Ok(TokenInfo {
        id: row.try_get("id")?,
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn source_from_row(row: &PgRow) -> Result<Source, sqlx::Error> {
    Ok(Source {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        compat: row.try_get("compat")?,
        detected_compat: row.try_get("detected_compat")?,
    })
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx takes a PostgreSQL advisory lock around the migrations, so replicas starting
        // together migrate once.
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        let missing = MIGRATOR.iter().any(|m| !applied.contains(&m.version));
        if missing {
            return Err(StoreError::Corrupt("migrations pending".into()));
        }
        Ok(())
    }

    async fn upsert_source(&self, name: &str, compat: Option<&str>) -> Result<Source, StoreError> {
        let row = sqlx::query(
            "INSERT INTO sources (name, compat) VALUES ($1, COALESCE($2, 'auto')) \
             ON CONFLICT (name) DO UPDATE SET compat = COALESCE($2, sources.compat) \
             RETURNING id, name, compat, detected_compat",
        )
        .bind(name)
        .bind(compat)
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
        .bind(token.id)
        .bind(token.source_id)
        .bind(kind)
        .bind(&token.digest)
        .bind(token.created_at)
        .bind(token.expires_at)
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
        Ok(rows.iter().map(token_info_from_row).collect::<Result<_, _>>()?)
    }

    async fn revoke_token(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
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
            id: row.try_get("id")?,
            digest: row.try_get("digest")?,
            source,
            expires_at: row.try_get("expires_at")?,
            last_used_at: row.try_get("last_used_at")?,
            revoked: row.try_get("revoked")?,
        }))
    }

    async fn touch_token(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
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
        let now = super::now();
        let mut tx = self.pool.begin().await?;
        let inserted = match kind {
            ResourceKind::User => {
                sqlx::query(
                    "INSERT INTO users (id, source_id, user_name, user_name_lower, external_id, display_name, \
                     active, doc, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                )
                .bind(id)
                .bind(ctx.source_id)
                .bind(&ix.name)
                .bind(&ix.name_lower)
                .bind(&ix.external_id)
                .bind(&ix.display_name)
                .bind(ix.active)
                .bind(&new.doc)
                .bind(now)
                .execute(&mut *tx)
                .await
            }
            ResourceKind::Group => {
                sqlx::query(
                    "INSERT INTO groups (id, source_id, display_name, display_name_lower, external_id, doc, \
                     created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(id)
                .bind(ctx.source_id)
                .bind(&ix.name)
                .bind(&ix.name_lower)
                .bind(&ix.external_id)
                .bind(&new.doc)
                .bind(now)
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
        Self::journal(&mut tx, ctx, kind, id, "create", detail, now).await?;
        let load = Load { members: true, groups: true };
        let created = Self::fetch_one(&mut tx, kind, id, load).await?;
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
            .bind(uid)
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
        let (uid, before, version) = Self::lock_row(&mut tx, kind, ctx.source_id, id).await?;
        if !cond.allows(version) {
            return Err(StoreError::PreconditionFailed);
        }
        let now = super::now();
        // Groups that lose this member get a new version (their member list changed).
        let parents: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE groups SET version = version + 1, modified_at = $2 \
             WHERE id IN (SELECT group_id FROM group_members WHERE member_id = $1) RETURNING id",
        )
        .bind(uid)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM group_members WHERE member_id = $1")
            .bind(uid)
            .execute(&mut *tx)
            .await?;
        let sql = format!("DELETE FROM {} WHERE id = $1", table(kind));
        sqlx::query(AssertSqlSafe(sql)).bind(uid).execute(&mut *tx).await?;
        let name_attr = if kind == ResourceKind::User { "userName" } else { "displayName" };
        let mut detail = serde_json::json!({ "name": before.get(name_attr) });
        if !parents.is_empty() {
            detail["member_of"] =
                serde_json::json!(parents.iter().map(Uuid::to_string).collect::<Vec<_>>());
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
            let w = filter_sql::translate(Backend::Postgres, kind, f, 2)?;
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
                let e = filter_sql::sort_expression(Backend::Postgres, kind, p)?;
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
                Ok(JournalEntry {
                    seq: row.try_get("seq")?,
                    at: row.try_get("at")?,
                    source_id: row.try_get("source_id")?,
                    token_id: row.try_get("token_id")?,
                    resource_type: row.try_get("resource_type")?,
                    resource_id: row.try_get::<Uuid, _>("resource_id")?.to_string(),
                    action: row.try_get("action")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}
