//! Storage: one [`Store`] interface, two implementations ([`postgres::PgStore`] for production,
//! [`sqlite::SqliteStore`] as the embedded default), chosen by the database URL's scheme.
//!
//! Every write runs in one transaction that also appends its change-journal row, so a write is
//! acknowledged only once both are durable. Group membership is a relation (`group_members`),
//! so adding or removing one member of a huge group touches one row.

mod access_sql;
pub mod budget;
mod columns;
mod control_sql;
pub mod filter_sql;
mod flows;
pub mod postgres;
mod postgres_sync;
mod primitives;
pub mod sqlite;
mod sqlite_sync;
mod sync_sql;
mod types;

pub use types::*;

use async_trait::async_trait;
use scim_schema::ScimError;
use scim_schema::patch::MemberChange;
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// What the PATCH engine decided, computed inside the store's transaction from the locked row.
pub struct PatchPlan {
    /// The new document, or None when the operations left it unchanged.
    pub doc: Option<Value>,
    pub member_changes: Vec<MemberChange>,
}

/// Turns the current stored document into a [`PatchPlan`]; runs while the row is locked, so
/// concurrent PATCHes of one resource never lose an update.
pub type Patcher<'a> = &'a (dyn Fn(&Value) -> Result<PatchPlan, ScimError> + Send + Sync);

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Connection pools by name (`postgres`, `postgres_http`; SQLite: `readers`, `writer`),
    /// for `/metrics`.
    fn pool_stats(&self) -> Vec<PoolStats>;

    /// The store one HTTP worker thread uses, called on that thread. PostgreSQL: a pool of
    /// the worker's own, of at most `max_connections` (see `PgStore`); SQLite, whose
    /// connections each run on a thread of their own: this same store.
    fn for_http_worker(self: Arc<Self>, max_connections: u32) -> Arc<dyn Store>;

    /// Applies pending migrations (under a lock on PostgreSQL).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Database reachable and every known migration applied.
    async fn ready(&self) -> Result<(), StoreError>;

    // --- sources and tokens -------------------------------------------------------------

    /// Creates the source if new (setting `compat` when given) and returns it.
    async fn upsert_source(&self, name: &str, compat: Option<&str>) -> Result<Source, StoreError>;
    async fn list_sources(&self) -> Result<Vec<Source>, StoreError>;
    async fn insert_token(&self, token: &NewToken) -> Result<(), StoreError>;
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
    /// Marks the token revoked; false when no live token has that id.
    async fn revoke_token(&self, id: uuid::Uuid) -> Result<bool, StoreError>;
    /// The live or dead token with this SHA-256 digest, with its source.
    async fn find_token(&self, digest: &[u8]) -> Result<Option<TokenRecord>, StoreError>;
    async fn touch_token(&self, id: uuid::Uuid, at: Timestamp) -> Result<(), StoreError>;
    /// Records the client `auto` recognised; the first detection stays.
    async fn set_detected_compat(&self, source_id: i64, compat: &str) -> Result<(), StoreError>;

    // --- the sync engine ------------------------------------------------------------------

    /// Every user, group and direct membership, read in one consistent snapshot.
    async fn snapshot(&self) -> Result<Snapshot, StoreError>;
    /// The AWS principals and memberships the bridge manages.
    async fn sync_state(&self) -> Result<SyncState, StoreError>;
    /// Records (or updates) a managed principal.
    async fn put_principal(&self, p: &AwsPrincipal) -> Result<(), StoreError>;
    async fn remove_principal(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError>;
    async fn put_membership(&self, m: &AwsMembership) -> Result<(), StoreError>;
    async fn remove_membership(&self, group_id: Uuid, user_id: Uuid) -> Result<(), StoreError>;
    /// Inserts or updates a run.
    async fn save_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    async fn append_audit(&self, row: &AuditRow) -> Result<(), StoreError>;
    /// Records a create about to be sent (removed once the principal is recorded).
    async fn put_pending_create(&self, p: &PendingCreate) -> Result<(), StoreError>;
    async fn remove_pending_create(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError>;
    /// Creates a process died in the middle of, oldest first.
    async fn pending_creates(&self) -> Result<Vec<PendingCreate>, StoreError>;

    /// Permission sets, applications and assignments (the access part of the sync record).
    async fn access_state(&self) -> Result<AccessState, StoreError>;
    async fn put_access_object(&self, o: &AccessObject) -> Result<(), StoreError>;
    async fn remove_access_object(
        &self,
        kind: AccessObjectKind,
        name: &str,
    ) -> Result<(), StoreError>;
    async fn put_assignment(&self, a: &AssignmentRecord) -> Result<(), StoreError>;
    async fn remove_assignment(&self, key: &AssignmentKey) -> Result<(), StoreError>;
    /// The newest runs first.
    async fn list_runs(&self, limit: i64) -> Result<Vec<RunRecord>, StoreError>;
    /// What the real runs started since `since` deleted and removed, leaving out the last
    /// forced run and those before it (the delete guard's window).
    async fn recent_removals(&self, since: Timestamp) -> Result<Removals, StoreError>;
    async fn get_run(&self, id: Uuid) -> Result<Option<RunRecord>, StoreError>;
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    async fn sync_counts(&self) -> Result<SyncCounts, StoreError>;
    /// Takes or renews the sync lease for `holder` for `seconds`; false when another holder's
    /// lease has not expired. PostgreSQL reckons with its own clock, so replicas whose clocks
    /// disagree still agree on when a lease ends.
    async fn acquire_sync_lease(&self, holder: Uuid, seconds: u32) -> Result<bool, StoreError>;
    async fn release_sync_lease(&self, holder: Uuid) -> Result<(), StoreError>;
    /// Whether a run (of any replica or CLI) holds the sync lease now.
    async fn sync_running(&self) -> Result<bool, StoreError>;
    /// The rules of the newest run not started by the CLI (what the serving replicas use).
    async fn serving_rules(&self) -> Result<Option<ServingRules>, StoreError>;
    /// The serving replicas' identity store and last failure (`sync_health`).
    async fn sync_health(&self) -> Result<SyncHealthRecord, StoreError>;
    /// Records the serving sync's failure; None clears it (a run succeeded).
    async fn set_sync_failure(&self, failure: Option<&SyncFailure>) -> Result<(), StoreError>;
    /// Records the identity store the serving sync reached.
    async fn set_identity_store(&self, store: &IdentityStoreRef) -> Result<(), StoreError>;

    // --- sync control (issue 14) ----------------------------------------------------------

    /// The pause in force, if sync is paused.
    async fn sync_pause(&self) -> Result<Option<SyncPause>, StoreError>;
    /// Pauses sync unless it is paused already; returns the pause in force (the first one).
    async fn pause_sync(&self, pause: &SyncPause) -> Result<SyncPause, StoreError>;
    /// Ends the pause; returns the pause that was in force, if any.
    async fn resume_sync(&self) -> Result<Option<SyncPause>, StoreError>;
    /// Records the destructive actions a run held (its run must be recorded).
    async fn put_hold(&self, hold: &Hold) -> Result<(), StoreError>;
    async fn get_hold(&self, run_id: Uuid) -> Result<Option<Hold>, StoreError>;
    /// The holds pending or approved (not yet applied), oldest first.
    async fn open_holds(&self) -> Result<Vec<Hold>, StoreError>;
    /// Pending → approved; false when the hold is not pending (any more).
    async fn approve_hold(&self, run_id: Uuid, by: &str, at: Timestamp)
    -> Result<bool, StoreError>;
    /// `from` → `to` (applied or superseded) by `by_run`; false when it was not in `from`.
    async fn close_hold(
        &self,
        run_id: Uuid,
        from: HoldState,
        to: HoldState,
        by_run: Uuid,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    // --- SCIM resources ------------------------------------------------------------------

    async fn create(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        new: &NewResource,
    ) -> Result<StoredResource, StoreError>;

    async fn get(
        &self,
        source_id: i64,
        kind: ResourceKind,
        id: &str,
        load: Load,
    ) -> Result<StoredResource, StoreError>;

    /// PUT: replaces every attribute; never creates.
    async fn replace(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        new: &NewResource,
        cond: &IfMatch,
        load: Load,
    ) -> Result<StoredResource, StoreError>;

    async fn patch(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        cond: &IfMatch,
        patcher: Patcher<'_>,
        load: Load,
    ) -> Result<StoredResource, StoreError>;

    async fn delete(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        cond: &IfMatch,
    ) -> Result<(), StoreError>;

    async fn list(
        &self,
        source_id: i64,
        kind: ResourceKind,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError>;

    /// Journal rows after `after_seq`, oldest first (the sync engine's feed). Actions: `create`,
    /// `replace`, `patch`, `delete`, and `member_deleted` on each group that lost a member
    /// because the member was deleted.
    ///
    /// On PostgreSQL a row's `seq` is taken inside its transaction, so rows can become visible
    /// out of `seq` order: a reader must not treat "nothing below my cursor" as final. It should
    /// re-read a window behind its cursor (longer than any write transaction lasts; the work is
    /// idempotent) — the full reconcile repairs anything older. SQLite has one writer at a time,
    /// so there rows appear in order.
    async fn journal_since(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError>;
    /// The newest journal sequence number (0 when empty): a cheap "did anything change?".
    async fn journal_head(&self) -> Result<i64, StoreError>;
}

/// Opens the store the URL names: `postgres://…`/`postgresql://…` or `sqlite://…`, with at
/// most `max_connections` pooled connections (SQLite: readers, plus its one writer), and the
/// default `[database]` settings otherwise.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    let database = crate::config::DatabaseSettings { url: url.to_owned(), ..Default::default() };
    connect_configured(&database, max_connections).await
}

/// [`connect`] with every `[database]` setting (`statement_timeout_seconds`).
pub async fn connect_configured(
    database: &crate::config::DatabaseSettings,
    max_connections: u32,
) -> anyhow::Result<Arc<dyn Store>> {
    open(database, max_connections, IfMissing::Create).await
}

/// What opening a SQLite database does when its file does not exist. Only `serve` and
/// `migrate` create one (issue 14): any other command run from the wrong directory would
/// otherwise work on a new, empty database and say nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    Create,
    /// A usage error ([`crate::exit::Usage`]) naming the path and `--database-url`.
    Refuse,
}

/// [`connect_configured`], creating a missing SQLite file only when `if_missing` says so.
pub async fn open(
    database: &crate::config::DatabaseSettings,
    max_connections: u32,
    if_missing: IfMissing,
) -> anyhow::Result<Arc<dyn Store>> {
    let url = database.url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let timeout = database.statement_timeout_seconds;
        Ok(Arc::new(postgres::PgStore::connect(url, max_connections, timeout).await?))
    } else if url.starts_with("sqlite:") {
        let create = if_missing == IfMissing::Create;
        if let Some(path) = sqlite::file_path(url)
            && !create
            && !path.exists()
        {
            return Err(crate::exit::usage(format!(
                "no database at {}: only `serve` and `migrate` create one. Set --database-url \
                 (or DATABASE_URL, or [database] url) to the database the server uses, or run \
                 `scimbridge migrate` to create this one",
                path.display()
            )));
        }
        Ok(Arc::new(sqlite::SqliteStore::open(url, max_connections, create).await?))
    } else {
        anyhow::bail!("database.url: {}", url_problem(url).unwrap_or_default())
    }
}

/// Why `url` names no database this build can open, if it does not (its scheme).
pub fn url_problem(url: &str) -> Option<String> {
    let supported = ["postgres://", "postgresql://", "sqlite:"];
    (!supported.iter().any(|s| url.starts_with(s))).then(|| {
        format!(
            "unsupported scheme in {:?}; use postgres://… (or postgresql://…) or sqlite://…",
            redact_url(url)
        )
    })
}

/// The database a URL names, as every command shows it on stderr: without secrets
/// ([`redact_url`]), and a SQLite file by its absolute path (`sqlite:///srv/scimbridge.db`), so
/// that a command run from another directory says which file it used.
pub fn describe_url(url: &str) -> String {
    match sqlite::file_path(url) {
        Some(path) => {
            let query = url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            redact_url(&format!("sqlite://{}{query}", path.display()))
        }
        None => redact_url(url),
    }
}

/// Query parameters of a database URL that hold a secret.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// The URL without its secrets, for every message and log line that shows it: the userinfo
/// password and the `password` / `sslpassword` query parameters become `***`.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if SECRET_PARAMETERS.iter().any(|s| s.eq_ignore_ascii_case(key)) => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `scheme://user:secret@host/path` → `scheme://user:***@host/path`.
fn redact_userinfo(base: &str) -> String {
    let Some(scheme_end) = base.find("://").map(|i| i + 3) else {
        return base.to_owned();
    };
    let authority_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let authority = &base[scheme_end..authority_end];
    match authority.rfind('@') {
        Some(at) if authority[..at].contains(':') => {
            let user = authority[..at].split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &base[..scheme_end], &base[scheme_end + at..])
        }
        _ => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(redact_url("sqlite://x.db?mode=rwc"), "sqlite://x.db?mode=rwc");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://u:secret@h/db?password=secret2&sslmode=require&sslpassword=s3"),
            "postgres://u:***@h/db?password=***&sslmode=require&sslpassword=***"
        );
        assert_eq!(
            redact_url("postgresql://h/db?user=u&PASSWORD=secret#frag"),
            "postgresql://h/db?user=u&PASSWORD=***#frag"
        );
        // An unencoded `@` in the password, or one in the query, does not confuse it.
        assert_eq!(redact_url("postgres://u:se@cret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://h/db?password=a@b:c"), "postgres://h/db?password=***");
        assert_eq!(redact_url("postgres://u:@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("not a url password=x"), "not a url password=x");
    }

    #[test]
    fn a_database_is_described_by_its_absolute_path_without_secrets() {
        let cwd = std::env::current_dir().unwrap();
        let here = cwd.join("scimbridge.db");
        assert_eq!(describe_url("sqlite://scimbridge.db"), format!("sqlite://{}", here.display()));
        assert_eq!(describe_url("sqlite:scimbridge.db"), format!("sqlite://{}", here.display()));
        assert_eq!(describe_url("sqlite:///srv/s.db?mode=rwc"), "sqlite:///srv/s.db?mode=rwc");
        assert_eq!(describe_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(describe_url("postgres://u:pw@db:5432/s"), "postgres://u:***@db:5432/s");
    }
}
