//! The PostgreSQL store (production; any number of replicas share one database).
//!
//! Writes lock the resource row (`SELECT … FOR UPDATE`) for their read-modify-write, so
//! concurrent PATCHes of one group serialise and never lose a member. The operations are in
//! [`super::flows`]; this file spells their steps in PostgreSQL.

use super::columns::{Indexed, member_type_str};
use super::filter_sql::{self, Backend, Bind};
use super::primitives::{
    Adoptable, JournalRow, Reader, Selection, Writer, adoptable_sql, attach_relation, count_sql,
    delete_members_where_sql, select_statement, table, wants_relation,
};
use super::{
    IfMatch, JournalEntry, ListPage, ListQuery, Load, NewResource, NewToken, Patcher, Source,
    Store, StoreError, StoredResource, Timestamp, TokenInfo, TokenRecord, WriteCtx, flows,
};
use async_trait::async_trait;
use scim_schema::filter::Filter;
use scim_schema::resource::MemberType;
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Row, Transaction};
use std::collections::HashMap;
use std::ops::DerefMut;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use uuid::Uuid;

/// Migrations applied by a newer release are tolerated (`ignore_missing`): each release's
/// migrations keep the previous release's code working (expand, then contract), so an older
/// pod restarting during a rolling upgrade, or a rollback, still starts.
static MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate::Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/postgres") };

pub struct PgStore {
    pool: PgPool,
    /// Every pool of this process: the one [`PgStore::connect`] opened, then one per HTTP
    /// worker ([`Store::for_http_worker`]).
    family: Arc<PoolFamily>,
}

/// What the pools of one process share: how to connect, and the pools themselves (for
/// `/metrics`).
struct PoolFamily {
    options: PgConnectOptions,
    first: PgPool,
    http_workers: Mutex<Vec<PgPool>>,
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        // No ping before every checkout (a round trip per request); a broken connection
        // fails its query, the pool drops it, and the error maps to a 503.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
}

/// How every connection of the store connects: `statement_timeout` (seconds; 0: none) is set
/// at connection start, so a runaway statement cannot hold a connection forever.
/// `client_min_messages = warning`: sqlx logs every server NOTICE at info, and PostgreSQL sends
/// one on each start (`relation "_sqlx_migrations" already exists, skipping`) and for each
/// `IF [NOT] EXISTS` that had nothing to do; WARNINGs and errors still come through.
pub fn connect_options(
    url: &str,
    statement_timeout_seconds: u64,
) -> Result<PgConnectOptions, sqlx::Error> {
    let url = without_unknown_parameters(url);
    let options = PgConnectOptions::from_str(&url)?
        .application_name("scimbridge")
        .options([("client_min_messages", "warning")]);
    Ok(if statement_timeout_seconds > 0 {
        options.options([("statement_timeout", format!("{statement_timeout_seconds}s"))])
    } else {
        options
    })
}

/// The query parameters sqlx's PostgreSQL URL parser knows (sqlx-postgres 0.9,
/// `options/parse.rs`), besides `options[NAME]`.
const KNOWN_PARAMETERS: [&str; 18] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// The URL without the query parameters sqlx does not know: sqlx ignores them too, but logs
/// each with its value, which for `sslpassword` is a secret. Here only the name is logged.
fn without_unknown_parameters(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            let known = KNOWN_PARAMETERS.contains(&key)
                || (key.starts_with("options[") && key.ends_with(']'));
            if !known && !key.is_empty() {
                tracing::warn!(
                    parameter = key,
                    "database.url: ignoring an unknown connect parameter"
                );
            }
            known
        })
        .collect();
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

impl PgStore {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        statement_timeout_seconds: u64,
    ) -> Result<PgStore, StoreError> {
        let options = connect_options(url, statement_timeout_seconds)?;
        // One connection first, given up after CONNECT_TIMEOUT: the pool would retry a refused
        // connection until its acquire timeout and then say only "pool timed out".
        match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::ConnectOptions::connect(&options)).await {
            Ok(Ok(conn)) => drop(sqlx::Connection::close(conn).await),
            Ok(Err(e)) => return Err(StoreError::Unavailable(connect_failure(&options, &e))),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {}: no answer within {} s",
                    address(&options),
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let pool = pool_options(max_connections).connect_with(options.clone()).await?;
        let http_workers = Mutex::new(Vec::new());
        let family = Arc::new(PoolFamily { options, first: pool.clone(), http_workers });
        Ok(PgStore { pool, family })
    }

    async fn write(&self) -> Result<Session<Transaction<'static, Postgres>>, StoreError> {
        match self.pool.begin().await {
            Ok(tx) => Ok(Session(tx)),
            Err(e) => Err(self.family.classify(e).await),
        }
    }

    async fn read(&self) -> Result<Session<sqlx::pool::PoolConnection<Postgres>>, StoreError> {
        match self.pool.acquire().await {
            Ok(conn) => Ok(Session(conn)),
            Err(e) => Err(self.family.classify(e).await),
        }
    }
}

/// How long a first connection may take before PostgreSQL counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl PoolFamily {
    /// A pool that timed out is either busy (every connection in use, the database up) or
    /// cut off from the database (sqlx retries refused connections until the timeout and then
    /// says only "pool timed out"): one direct connection attempt tells which, so that an
    /// outage reads "unavailable", not "busy".
    async fn classify(&self, e: sqlx::Error) -> StoreError {
        if !matches!(e, sqlx::Error::PoolTimedOut) {
            return StoreError::Database(e);
        }
        let probe = Duration::from_secs(2);
        match tokio::time::timeout(probe, sqlx::ConnectOptions::connect(&self.options)).await {
            Ok(Ok(conn)) => {
                drop(sqlx::Connection::close(conn).await);
                StoreError::Database(e)
            }
            Ok(Err(cause)) => StoreError::Unavailable(connect_failure(&self.options, &cause)),
            Err(_) => StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: no answer within {} s",
                address(&self.options),
                probe.as_secs()
            )),
        }
    }
}

/// `host:port` (or the socket directory and port) of the server.
fn address(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// Why connecting failed, once, naming the server: `cannot connect to PostgreSQL at
/// db:5432: connection refused` (or an unknown host, no such database, authentication
/// failed) — not sqlx's chain, which repeats itself and carries the server's source position.
pub fn connect_failure(options: &PgConnectOptions, e: &sqlx::Error) -> String {
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    let cause = match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".to_owned()
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            "no answer (timed out)".to_owned()
        }
        // tokio's resolver error has no ErrorKind of its own, only this text.
        sqlx::Error::Io(io) if io.to_string().contains("failed to lookup address") => {
            format!("unknown host {:?} ({io})", options.get_host())
        }
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("3D000") => format!("no such database {database:?}"),
            Some("28P01") => format!("authentication failed for user {user:?} (wrong password?)"),
            Some("28000") => format!("authentication refused for user {user:?}: {}", d.message()),
            _ => d.message().to_owned(),
        },
        other => other.to_string(),
    };
    format!("cannot connect to PostgreSQL at {}: {cause}", address(options))
}

/// A connection or a transaction, with the primitive steps spelled for PostgreSQL.
struct Session<C>(C);

impl<C: DerefMut<Target = PgConnection> + Send> Session<C> {
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.0
    }
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

fn uuids(rows: Vec<PgRow>) -> Result<Vec<Uuid>, StoreError> {
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

#[async_trait]
impl<C: DerefMut<Target = PgConnection> + Send> Reader for Session<C> {
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
                attach_relation(&mut res, row.try_get("rel")?)?;
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
            ", (SELECT json_agg(json_build_array(m.member_id, m.member_type, \
                 COALESCE(u.display_name, u.user_name, g.display_name))) \
               FROM group_members m \
               LEFT JOIN users u ON m.member_type = 'User' AND u.id = m.member_id \
               LEFT JOIN groups g ON m.member_type = 'Group' AND g.id = m.member_id \
               WHERE m.group_id = r.id) AS rel"
        }
        ResourceKind::User => {
            ", (SELECT json_agg(json_build_array(g.id, g.display_name) ORDER BY g.seq) \
               FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.member_id = r.id) AS rel"
        }
    }
}

#[async_trait]
impl Writer for Session<Transaction<'static, Postgres>> {
    async fn lock_row(
        &mut self,
        kind: ResourceKind,
        source_id: i64,
        id: Uuid,
    ) -> Result<Option<(Value, i64)>, StoreError> {
        let sql = format!(
            "SELECT doc, version FROM {} WHERE id = $1 AND source_id = $2 FOR UPDATE",
            table(kind)
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(source_id)
            .fetch_optional(self.conn())
            .await?;
        match row {
            Some(r) => Ok(Some((r.try_get("doc")?, r.try_get("version")?))),
            None => Ok(None),
        }
    }

    async fn find_adoptable(
        &mut self,
        kind: ResourceKind,
        ix: &Indexed,
        from: &[String],
    ) -> Result<Option<Adoptable>, StoreError> {
        let sql = adoptable_sql(kind, "= ANY($1)", " FOR UPDATE OF r");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(from)
            .bind(&ix.name_lower)
            .bind(&ix.external_id)
            .fetch_optional(self.conn())
            .await?;
        match row {
            Some(r) => Ok(Some(Adoptable {
                id: r.try_get("id")?,
                from_source: r.try_get("source")?,
                doc: r.try_get("doc")?,
            })),
            None => Ok(None),
        }
    }

    async fn set_owner(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        source_id: i64,
    ) -> Result<(), StoreError> {
        let sql = format!("UPDATE {} SET source_id = $2 WHERE id = $1", table(kind));
        sqlx::query(AssertSqlSafe(sql)).bind(id).bind(source_id).execute(self.conn()).await?;
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
            .bind(id)
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
            .bind(id)
            .bind(source_id)
            .bind(&ix.name)
            .bind(&ix.name_lower)
            .bind(&ix.external_id),
        };
        q.bind(doc).bind(now).execute(self.conn()).await.map(|_| ())
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
            .bind(id)
            .bind(&ix.name)
            .bind(&ix.name_lower)
            .bind(&ix.external_id)
            .bind(&ix.display_name)
            .bind(ix.active),
            ResourceKind::Group => sqlx::query(
                "UPDATE groups SET display_name = $2, display_name_lower = $3, external_id = $4, doc = $5, \
                 version = version + 1, modified_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(&ix.name)
            .bind(&ix.name_lower)
            .bind(&ix.external_id),
        };
        q.bind(doc).bind(now).execute(self.conn()).await.map(|_| ())
    }

    async fn bump_group_version(&mut self, id: Uuid, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE groups SET version = version + 1, modified_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    async fn member_kinds(
        &mut self,
        source_id: i64,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, MemberType>, StoreError> {
        // FOR KEY SHARE keeps each member from being deleted (and a group from gaining this
        // group as a member) until this transaction ends, so no membership can point at a
        // deleted resource and concurrent nesting cannot make a cycle.
        let users: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM users WHERE source_id = $1 AND id = ANY($2) ORDER BY id FOR KEY SHARE",
        )
        .bind(source_id)
        .bind(ids)
        .fetch_all(self.conn())
        .await?;
        let mut found: HashMap<Uuid, MemberType> =
            users.into_iter().map(|id| (id, MemberType::User)).collect();
        if found.len() < ids.len() {
            let groups: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM groups WHERE source_id = $1 AND id = ANY($2) ORDER BY id FOR KEY SHARE",
            )
            .bind(source_id)
            .bind(ids)
            .fetch_all(self.conn())
            .await?;
            found.extend(groups.into_iter().map(|id| (id, MemberType::Group)));
        }
        Ok(found)
    }

    async fn reaches(&mut self, starts: &[Uuid], target: Uuid) -> Result<Option<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH RECURSIVE reach(start, id) AS ( \
               SELECT s, s FROM unnest($1::uuid[]) AS s \
               UNION SELECT reach.start, m.member_id FROM group_members m JOIN reach ON m.group_id = reach.id \
               WHERE m.member_type = 'Group') \
             SELECT start FROM reach WHERE id = $2 LIMIT 1",
        )
        .bind(starts)
        .bind(target)
        .fetch_optional(self.conn())
        .await?)
    }

    async fn insert_members(
        &mut self,
        group: Uuid,
        members: &[(Uuid, MemberType)],
    ) -> Result<Vec<Uuid>, StoreError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = members.iter().map(|(id, _)| *id).collect();
        let types: Vec<&str> = members.iter().map(|(_, t)| member_type_str(*t)).collect();
        Ok(sqlx::query_scalar(
            "INSERT INTO group_members (group_id, member_id, member_type) \
             SELECT $1, id, t FROM unnest($2::uuid[], $3::text[]) AS x(id, t) \
             ON CONFLICT DO NOTHING RETURNING member_id",
        )
        .bind(group)
        .bind(&ids)
        .bind(&types)
        .fetch_all(self.conn())
        .await?)
    }

    async fn delete_members(&mut self, group: Uuid, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "DELETE FROM group_members WHERE group_id = $1 AND member_id = ANY($2) RETURNING member_id",
        )
        .bind(group)
        .bind(ids)
        .fetch_all(self.conn())
        .await?)
    }

    async fn delete_members_except(
        &mut self,
        group: Uuid,
        keep: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "DELETE FROM group_members WHERE group_id = $1 AND NOT (member_id = ANY($2)) RETURNING member_id",
        )
        .bind(group)
        .bind(keep)
        .fetch_all(self.conn())
        .await?)
    }

    async fn delete_members_where(
        &mut self,
        group: Uuid,
        filter: &Filter,
    ) -> Result<Vec<Uuid>, StoreError> {
        let cond = filter_sql::translate_members(Backend::Postgres, filter, 2)?;
        let sql = delete_members_where_sql(&cond.sql);
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)).bind(group), cond.binds)
            .fetch_all(self.conn())
            .await?;
        uuids(rows)
    }

    async fn detach_member(
        &mut self,
        member: Uuid,
        now: Timestamp,
    ) -> Result<Vec<Uuid>, StoreError> {
        // Lock the parent groups in id order, so that concurrent deletes sharing groups cannot
        // deadlock each other.
        let parents: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM groups WHERE id IN (SELECT group_id FROM group_members WHERE member_id = $1) \
             ORDER BY id FOR UPDATE",
        )
        .bind(member)
        .fetch_all(self.conn())
        .await?;
        if parents.is_empty() {
            return Ok(parents);
        }
        sqlx::query("UPDATE groups SET version = version + 1, modified_at = $2 WHERE id = ANY($1)")
            .bind(&parents)
            .bind(now)
            .execute(self.conn())
            .await?;
        sqlx::query("DELETE FROM group_members WHERE member_id = $1")
            .bind(member)
            .execute(self.conn())
            .await?;
        Ok(parents)
    }

    async fn delete_row(&mut self, kind: ResourceKind, id: Uuid) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", table(kind));
        sqlx::query(AssertSqlSafe(sql)).bind(id).execute(self.conn()).await?;
        Ok(())
    }

    async fn journal(&mut self, row: JournalRow<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO change_journal (at, source_id, token_id, resource_type, resource_id, action, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.at)
        .bind(row.ctx.source_id)
        .bind(row.ctx.token_id)
        .bind(row.kind.name())
        .bind(row.id)
        .bind(row.action)
        .bind(row.detail)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit().await?)
    }
}

/// Runs a write again when PostgreSQL aborted it as a deadlock victim or a serialisation
/// failure (rare: lock order is consistent, but a membership change and a member's delete lock
/// the same two rows from opposite ends). The flows are idempotent until commit.
async fn retry_transient<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    const ATTEMPTS: u32 = 4;
    let mut n = 1;
    loop {
        match attempt().await {
            Err(StoreError::Database(e)) if n < ATTEMPTS && is_transient(&e) => {
                tracing::info!(error = %e, attempt = n, "retrying a write after a transient conflict");
                tokio::time::sleep(Duration::from_millis(10 * u64::from(n) + rand_jitter_ms()))
                    .await;
                n += 1;
            }
            other => return other,
        }
    }
}

/// deadlock_detected or serialization_failure.
fn is_transient(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "40P01" || c == "40001")
}

fn rand_jitter_ms() -> u64 {
    u64::from(rand::random::<u8>() % 20)
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
    async fn journal_head(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM change_journal")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn acquire_sync_lease(&self, holder: Uuid, seconds: u32) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "INSERT INTO sync_lease (id, holder, expires_at) \
             VALUES (1, $1, now() + make_interval(secs => $2)) \
             ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
             WHERE sync_lease.holder = EXCLUDED.holder OR sync_lease.expires_at < now()",
        )
        .bind(holder)
        .bind(f64::from(seconds))
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    async fn release_sync_lease(&self, holder: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sync_lease WHERE holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn sync_running(&self) -> Result<bool, StoreError> {
        let held: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM sync_lease WHERE id = 1 AND expires_at > now()")
                .fetch_optional(&self.pool)
                .await?;
        Ok(held.is_some())
    }

    async fn serving_rules(&self) -> Result<Option<super::ServingRules>, StoreError> {
        super::postgres_sync::serving_rules(&self.pool).await
    }

    async fn sync_health(&self) -> Result<super::SyncHealthRecord, StoreError> {
        super::postgres_sync::sync_health(&self.pool).await
    }

    async fn set_sync_failure(
        &self,
        failure: Option<&super::SyncFailure>,
    ) -> Result<(), StoreError> {
        super::postgres_sync::set_sync_failure(&self.pool, failure).await
    }

    async fn set_identity_store(&self, store: &super::IdentityStoreRef) -> Result<(), StoreError> {
        super::postgres_sync::set_identity_store(&self.pool, store).await
    }

    async fn snapshot(&self) -> Result<super::Snapshot, StoreError> {
        super::postgres_sync::snapshot(&self.pool).await
    }

    async fn sync_state(&self) -> Result<super::SyncState, StoreError> {
        super::postgres_sync::sync_state(&self.pool).await
    }

    async fn put_principal(&self, p: &super::AwsPrincipal) -> Result<(), StoreError> {
        super::postgres_sync::put_principal(&self.pool, p).await
    }

    async fn remove_principal(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError> {
        super::postgres_sync::remove_principal(&self.pool, kind, resource_id).await
    }

    async fn put_membership(&self, m: &super::AwsMembership) -> Result<(), StoreError> {
        super::postgres_sync::put_membership(&self.pool, m).await
    }

    async fn remove_membership(&self, group_id: Uuid, user_id: Uuid) -> Result<(), StoreError> {
        super::postgres_sync::remove_membership(&self.pool, group_id, user_id).await
    }

    async fn save_run(&self, run: &super::RunRecord) -> Result<(), StoreError> {
        super::postgres_sync::save_run(&self.pool, run).await
    }

    async fn append_audit(&self, row: &super::AuditRow) -> Result<(), StoreError> {
        super::postgres_sync::append_audit(&self.pool, row).await
    }

    async fn put_pending_create(&self, p: &super::PendingCreate) -> Result<(), StoreError> {
        super::postgres_sync::put_pending_create(&self.pool, p).await
    }

    async fn remove_pending_create(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError> {
        super::postgres_sync::remove_pending_create(&self.pool, kind, resource_id).await
    }

    async fn pending_creates(&self) -> Result<Vec<super::PendingCreate>, StoreError> {
        super::postgres_sync::pending_creates(&self.pool).await
    }

    async fn access_state(&self) -> Result<super::AccessState, StoreError> {
        super::access_sql::postgres::access_state(&self.pool).await
    }

    async fn put_access_object(&self, o: &super::AccessObject) -> Result<(), StoreError> {
        super::access_sql::postgres::put_access_object(&self.pool, o).await
    }

    async fn remove_access_object(
        &self,
        kind: super::AccessObjectKind,
        name: &str,
    ) -> Result<(), StoreError> {
        super::access_sql::postgres::remove_access_object(&self.pool, kind, name).await
    }

    async fn put_assignment(&self, a: &super::AssignmentRecord) -> Result<(), StoreError> {
        super::access_sql::postgres::put_assignment(&self.pool, a).await
    }

    async fn remove_assignment(&self, key: &super::AssignmentKey) -> Result<(), StoreError> {
        super::access_sql::postgres::remove_assignment(&self.pool, key).await
    }

    async fn sync_pause(&self) -> Result<Option<super::SyncPause>, StoreError> {
        super::control_sql::postgres::sync_pause(&self.pool).await
    }

    async fn pause_sync(&self, pause: &super::SyncPause) -> Result<super::SyncPause, StoreError> {
        super::control_sql::postgres::pause_sync(&self.pool, pause).await
    }

    async fn resume_sync(&self) -> Result<Option<super::SyncPause>, StoreError> {
        super::control_sql::postgres::resume_sync(&self.pool).await
    }

    async fn put_hold(&self, hold: &super::Hold) -> Result<(), StoreError> {
        super::control_sql::postgres::put_hold(&self.pool, hold).await
    }

    async fn get_hold(&self, run_id: Uuid) -> Result<Option<super::Hold>, StoreError> {
        super::control_sql::postgres::get_hold(&self.pool, run_id).await
    }

    async fn open_holds(&self) -> Result<Vec<super::Hold>, StoreError> {
        super::control_sql::postgres::open_holds(&self.pool).await
    }

    async fn approve_hold(
        &self,
        run_id: Uuid,
        by: &str,
        at: super::Timestamp,
    ) -> Result<bool, StoreError> {
        super::control_sql::postgres::approve_hold(&self.pool, run_id, by, at).await
    }

    async fn close_hold(
        &self,
        run_id: Uuid,
        from: super::HoldState,
        to: super::HoldState,
        by_run: Uuid,
        at: super::Timestamp,
    ) -> Result<bool, StoreError> {
        super::control_sql::postgres::close_hold(&self.pool, run_id, from, to, by_run, at).await
    }

    async fn recent_removals(
        &self,
        since: super::Timestamp,
    ) -> Result<super::Removals, StoreError> {
        super::postgres_sync::recent_removals(&self.pool, since).await
    }

    async fn list_runs(&self, limit: i64) -> Result<Vec<super::RunRecord>, StoreError> {
        super::postgres_sync::list_runs(&self.pool, limit).await
    }

    async fn get_run(&self, id: Uuid) -> Result<Option<super::RunRecord>, StoreError> {
        super::postgres_sync::get_run(&self.pool, id).await
    }

    async fn list_audit(
        &self,
        query: &super::AuditQuery,
    ) -> Result<Vec<super::AuditEntry>, StoreError> {
        super::postgres_sync::list_audit(&self.pool, query).await
    }

    async fn sync_counts(&self) -> Result<super::SyncCounts, StoreError> {
        super::postgres_sync::sync_counts(&self.pool).await
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn pool_stats(&self) -> Vec<super::PoolStats> {
        let mut stats = vec![super::PoolStats::of("postgres", &self.family.first)];
        let workers = self.family.http_workers.lock().unwrap_or_else(PoisonError::into_inner);
        let each = workers.iter().map(|p| super::PoolStats::of("postgres_http", p));
        stats.extend(each.reduce(super::PoolStats::combined));
        stats
    }

    /// A pool of the calling HTTP worker's own: a connection's socket wakes the thread that
    /// opened it, so a connection opened on one worker and used on another costs two
    /// cross-thread wake-ups per query (measured: 1.5x the throughput of reads with a pool of
    /// the worker's own). Opened lazily, on this worker's first request.
    fn for_http_worker(self: Arc<Self>, max_connections: u32) -> Arc<dyn Store> {
        let pool = pool_options(max_connections).connect_lazy_with(self.family.options.clone());
        let mut workers = self.family.http_workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers.push(pool.clone());
        Arc::new(PgStore { pool, family: self.family.clone() })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx takes a PostgreSQL advisory lock around the migrations, so replicas starting
        // together migrate once. Neither the wait for that lock nor a long migration is cut
        // off by database.statement_timeout_seconds: this connection runs without it and is
        // closed afterwards rather than returned to the pool.
        let mut conn = self.pool.acquire().await?;
        conn.close_on_drop();
        sqlx::query("SET statement_timeout = 0").execute(&mut *conn).await?;
        MIGRATOR.run_direct(None, &mut *conn, false).await?;
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
            "SELECT t.id, s.name AS source, s.compat, s.detected_compat, t.created_at, t.expires_at, \
             t.last_used_at, t.revoked_at FROM tokens t LEFT JOIN sources s ON s.id = t.source_id ORDER BY t.created_at, t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenInfo {
                    id: row.try_get("id")?,
                    source: row.try_get("source")?,
                    compat: row.try_get("compat")?,
                    detected_compat: row.try_get("detected_compat")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
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
        .await;
        // The first query of every request: an outage shows here first.
        let row = match row {
            Ok(row) => row,
            Err(e) => return Err(self.family.classify(e).await),
        };
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
        sqlx::query(
            "UPDATE sources SET detected_compat = $2 WHERE id = $1 AND detected_compat IS NULL",
        )
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
        retry_transient(|| async { flows::create(self.write().await?, ctx, kind, new).await }).await
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
        retry_transient(|| async {
            flows::replace(self.write().await?, ctx, kind, id, new, cond, load).await
        })
        .await
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
        retry_transient(|| async {
            flows::patch(self.write().await?, ctx, kind, id, cond, patcher, load).await
        })
        .await
    }

    async fn delete(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        cond: &IfMatch,
    ) -> Result<(), StoreError> {
        retry_transient(|| async { flows::delete(self.write().await?, ctx, kind, id, cond).await })
            .await
    }

    async fn list(
        &self,
        source_id: i64,
        kind: ResourceKind,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        flows::list(&mut self.read().await?, Backend::Postgres, source_id, kind, query).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_dropped_before_sqlx_logs_their_values() {
        assert_eq!(
            without_unknown_parameters("postgres://u@h/db?sslmode=require&sslpassword=s&x"),
            "postgres://u@h/db?sslmode=require"
        );
        assert_eq!(
            without_unknown_parameters("postgres://u@h/db?password=p&options[search_path]=a"),
            "postgres://u@h/db?password=p&options[search_path]=a"
        );
        assert_eq!(
            without_unknown_parameters("postgres://u@h/db?sslpassword=s"),
            "postgres://u@h/db"
        );
        assert_eq!(without_unknown_parameters("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn statement_timeout_and_no_notices_in_the_connect_options() {
        const QUIET: &str = "-c client_min_messages=warning";
        let o = connect_options("postgres://u@h/db", 30).unwrap();
        assert_eq!(o.get_options(), Some(&*format!("{QUIET} -c statement_timeout=30s")));
        let o = connect_options("postgres://u@h/db?options=-c%20work_mem%3D4MB", 5).unwrap();
        assert_eq!(
            o.get_options(),
            Some(&*format!("-c work_mem=4MB {QUIET} -c statement_timeout=5s"))
        );
        assert_eq!(connect_options("postgres://u@h/db", 0).unwrap().get_options(), Some(QUIET));
    }
}
