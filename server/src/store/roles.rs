//! The store's interface, one trait per role, each with one implementation
//! ([`super::sql::SqlStore`] over either backend). A consumer takes the role it uses (`auth`
//! takes [`Tokens`]); [`Store`] is all of them, for the composition root and the consumers
//! that use many.

use super::CompatMode;
use super::{
    AccessAsOf, AccessObject, AccessObjectKind, AccessPage, AccessQuery, AccessState,
    AssignmentKey, AssignmentRecord, AuditEntry, AuditQuery, AuditRow, AwsMembership, AwsPrincipal,
    Hold, HoldState, IdentityStoreRef, IfMatch, JournalEntry, ListPage, ListQuery, Load,
    NewResource, NewToken, Patcher, PendingChange, PendingCreate, PendingHistory, PendingSummary,
    PoolStats, RecordTotals, RecordedMember, Removals, RunRecord, ScopeRead, ScopeSeeds,
    ServingRules, Snapshot, Source, StoreError, StoredResource, SyncCounts, SyncFailure,
    SyncHealthRecord, SyncPause, SyncState, Timestamp, TokenInfo, TokenRecord, WriteCtx,
};
use crate::names::SourceName;
use async_trait::async_trait;
use scim_schema::schema::ResourceKind;
use std::sync::Arc;
use uuid::Uuid;

/// `Store` is every role: the trait and its blanket impl are made from one list, so a role
/// added to one is in the other.
macro_rules! store_of_roles {
    ($first:ident $(+ $role:ident)*) => {
        /// Every role: what the composition root builds and hands around as `Arc<dyn Store>`.
        pub trait Store: $first $(+ $role)* {}

        impl<T> Store for T where T: $first $(+ $role)* {}
    };
}

store_of_roles!(
    Admin
        + Resources
        + Journal
        + Pending
        + Tokens
        + SyncRecord
        + ScopedRecord
        + AccessRecord
        + AccessReport
        + RunLog
        + PlanPages
        + Lease
        + Control
        + Retention
);

/// The database itself: which one, its pools, its migrations.
#[async_trait]
pub trait Admin: Send + Sync + 'static {
    /// The backend's name, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Connection pools by name (`postgres`, `postgres_http`; SQLite: `readers`, `writer`),
    /// for `/metrics`.
    fn pool_stats(&self) -> Vec<PoolStats>;

    /// The store one HTTP worker thread uses, called on that thread. PostgreSQL: a pool of
    /// the worker's own, of at most `max_connections`; SQLite, whose connections each run on a
    /// thread of their own: this same store.
    fn for_http_worker(self: Arc<Self>, max_connections: u32) -> Arc<dyn Store>;

    /// Applies pending migrations (under a lock on PostgreSQL).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Database reachable and every known migration applied.
    async fn ready(&self) -> Result<(), StoreError>;
}

/// SCIM users and groups. Every write runs in one transaction that also appends its
/// change-journal row, so a write is acknowledged only once both are durable.
#[async_trait]
pub trait Resources: Send + Sync + 'static {
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
}

/// The change journal, the sync engine's feed of SCIM writes.
#[async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Journal rows after `after_seq`, oldest first. Actions: `create`, `replace`, `patch`,
    /// `delete`, `adopt`, and `member_deleted` on each group that lost a member because the
    /// member was deleted.
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

/// The pending set (`sync_pending`): the SCIM resources changed and not yet covered by a
/// successful real sync run, what change runs are triggered by. Every journal row marks its
/// resource in the journal row's transaction (a database trigger), with the row's seq as the
/// mark; unlike a cursor over `seq`, nothing is skipped when PostgreSQL makes rows visible out of
/// `seq` order.
#[async_trait]
pub trait Pending: Send + Sync + 'static {
    /// At most `limit` pending resources, oldest mark first.
    async fn pending_changes(&self, limit: i64) -> Result<Vec<PendingChange>, StoreError>;

    /// How many resources are pending, the highest mark and the newest change's time.
    async fn pending_summary(&self) -> Result<PendingSummary, StoreError>;

    /// Compare-and-delete: removes each of `changes` whose mark is still the one given (a
    /// resource changed again since it was read stays pending). Returns how many were removed.
    async fn clear_pending(&self, changes: &[PendingChange]) -> Result<u64, StoreError>;

    /// What kind of change each pending resource had: its journal rows from the oldest since
    /// it became pending (`first_mark`), at most `limit` rows, oldest first; and the resources
    /// whose oldest such row is gone (pruned), whose change is not known.
    async fn pending_history(&self, limit: i64) -> Result<PendingHistory, StoreError>;
}

/// Sources and their bearer tokens.
#[async_trait]
pub trait Tokens: Send + Sync + 'static {
    /// Creates the source if new (setting `compat` when given) and returns it.
    async fn upsert_source(
        &self,
        name: &SourceName,
        compat: Option<CompatMode>,
    ) -> Result<Source, StoreError>;
    async fn list_sources(&self) -> Result<Vec<Source>, StoreError>;
    async fn insert_token(&self, token: &NewToken) -> Result<(), StoreError>;
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
    /// Marks the token revoked; false when no live token has that id.
    async fn revoke_token(&self, id: Uuid) -> Result<bool, StoreError>;
    /// The live or dead token with this SHA-256 digest, with its source.
    async fn find_token(&self, digest: &[u8]) -> Result<Option<TokenRecord>, StoreError>;
    async fn touch_token(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError>;
    /// Records the client `auto` recognised; the first detection stays.
    async fn set_detected_compat(
        &self,
        source_id: i64,
        compat: CompatMode,
    ) -> Result<(), StoreError>;
}

/// The sync record: the SCIM side as the engine reads it, and the AWS principals and
/// memberships the bridge manages.
#[async_trait]
pub trait SyncRecord: Send + Sync + 'static {
    /// Every user, group and direct membership, read in one consistent snapshot.
    async fn snapshot(&self) -> Result<Snapshot, StoreError>;
    /// The AWS principals and memberships the bridge manages.
    async fn sync_state(&self) -> Result<SyncState, StoreError>;
    /// Records (or updates) a managed principal.
    async fn put_principal(&self, p: &AwsPrincipal) -> Result<(), StoreError>;
    /// Forgets a managed principal and every membership recorded for it (AWS deletes a
    /// principal's memberships with it).
    async fn remove_principal(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError>;
    async fn put_membership(&self, m: &AwsMembership) -> Result<(), StoreError>;
    async fn remove_membership(&self, group_id: Uuid, user_id: Uuid) -> Result<(), StoreError>;
    /// Records a create about to be sent (removed once the principal is recorded).
    async fn put_pending_create(&self, p: &PendingCreate) -> Result<(), StoreError>;
    async fn remove_pending_create(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError>;
    /// Creates a process died in the middle of, oldest first.
    async fn pending_creates(&self) -> Result<Vec<PendingCreate>, StoreError>;
}

/// The sync record as a change run reads it: only the part of the directory its changes reach
/// (see `docs/sync.md`), so that its cost follows the change, not the directory.
#[async_trait]
pub trait ScopedRecord: Send + Sync + 'static {
    /// The scope grown from `seeds` (ancestors of the seed users and nesting groups, the
    /// flattened membership of the whole groups), its documents, its record and the
    /// memberships recorded for it, read in one consistent snapshot.
    async fn scope(&self, seeds: &ScopeSeeds) -> Result<ScopeRead, StoreError>;
    /// The recorded principals of these SCIM resources or with these AWS ids.
    async fn recorded(
        &self,
        resource_ids: &[Uuid],
        aws_ids: &[String],
    ) -> Result<Vec<AwsPrincipal>, StoreError>;
    /// How many principals and memberships are recorded in all, and for each of `groups`.
    async fn record_totals(&self, groups: &[Uuid]) -> Result<RecordTotals, StoreError>;
    /// Which of `ids` name a user or a group now.
    async fn kinds_of(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, ResourceKind)>, StoreError>;
    /// The users and groups with these names (folded, [`crate::names::fold`]) or group
    /// externalIds: what access rules name.
    async fn named(
        &self,
        user_names: &[String],
        group_names: &[String],
        group_external_ids: &[String],
    ) -> Result<Vec<Uuid>, StoreError>;
    /// The next keyed page of the directory a full run plans: up to `limit` ids of `kind`
    /// greater than `after`, in id order, from the SCIM resources and the recorded principals
    /// together (a principal whose resource was deleted at the IdP is in a page too).
    async fn page_ids(
        &self,
        kind: ResourceKind,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError>;

    // A full run walks the record in pieces (`sql/record_pages.rs`), never whole.

    /// At most `limit` recorded principals of `kind` whose SCIM id comes after `after` (None:
    /// from the first), in SCIM id order: the next page is the one after the last id.
    async fn recorded_page(
        &self,
        kind: ResourceKind,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AwsPrincipal>, StoreError>;
    /// `(AWS id, SCIM id)` of the recorded principals of `kind` with these AWS ids.
    async fn recorded_ids(
        &self,
        kind: ResourceKind,
        aws_ids: &[String],
    ) -> Result<Vec<(String, Uuid)>, StoreError>;
    /// The memberships recorded for one group, with their users' AWS ids.
    async fn recorded_members(&self, group: Uuid) -> Result<Vec<RecordedMember>, StoreError>;
    /// At most `limit` recorded memberships whose group or user is not a recorded principal,
    /// with a (group, user) key after `after`, in key order.
    async fn unowned_memberships(
        &self,
        after: Option<(Uuid, Uuid)>,
        limit: usize,
    ) -> Result<Vec<AwsMembership>, StoreError>;
}

/// Permission sets, applications and assignments (the access part of the sync record).
#[async_trait]
pub trait AccessRecord: Send + Sync + 'static {
    async fn access_state(&self) -> Result<AccessState, StoreError>;
    async fn put_access_object(&self, o: &AccessObject) -> Result<(), StoreError>;
    async fn remove_access_object(
        &self,
        kind: AccessObjectKind,
        name: &str,
    ) -> Result<(), StoreError>;
    /// Records (or updates) an assignment. `rule` is the key of the rule whose create it is
    /// (`assignments.account[0]`); None keeps the rule already recorded, so that the later
    /// states of one create (`creating` → `created`) keep it, and a foreign row has none.
    async fn put_assignment(
        &self,
        a: &AssignmentRecord,
        rule: Option<&str>,
    ) -> Result<(), StoreError>;
    async fn remove_assignment(&self, key: &AssignmentKey) -> Result<(), StoreError>;
}

/// Who can reach what (issue 17): the access record read as one row per user, target,
/// permission set and path (direct, or a group the bridge made the user a member of).
#[async_trait]
pub trait AccessReport: Send + Sync + 'static {
    /// The rows after `query.after` in the report's order ([`super::AccessPosition`]), at most
    /// `query.limit`; `more` when others follow. Each call reads only what its page needs:
    /// a filtered page the filter's rows, an unfiltered one the users from `after` on, in
    /// windows — never the whole report.
    async fn access_page(&self, query: &AccessQuery) -> Result<AccessPage, StoreError>;
    /// How old the record is: the last finished real run, and the last full one that
    /// succeeded.
    async fn access_as_of(&self) -> Result<AccessAsOf, StoreError>;
}

/// Sync runs and what they leave behind: the audit log, the serving sync's health, counts.
#[async_trait]
pub trait RunLog: Send + Sync + 'static {
    /// Inserts or updates a run.
    async fn save_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    async fn append_audit(&self, row: &AuditRow) -> Result<(), StoreError>;
    /// The newest runs first.
    async fn list_runs(&self, limit: i64) -> Result<Vec<RunRecord>, StoreError>;
    /// What the real runs started since `since` deleted and removed, leaving out the last
    /// forced run and those before it (the delete guard's window).
    async fn recent_removals(&self, since: Timestamp) -> Result<Removals, StoreError>;
    async fn get_run(&self, id: Uuid) -> Result<Option<RunRecord>, StoreError>;
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    async fn sync_counts(&self) -> Result<SyncCounts, StoreError>;
    /// The rules of the newest run not started by the CLI (what the serving replicas use).
    async fn serving_rules(&self) -> Result<Option<ServingRules>, StoreError>;

    /// The rules fingerprint of the newest real run that succeeded (finished, with a journal
    /// head), among the newest `among` runs; None when there is none, or it recorded no rules.
    async fn last_succeeded_rules(&self, among: i64) -> Result<Option<String>, StoreError>;
    /// The serving replicas' identity store and last failure (`sync_health`).
    async fn sync_health(&self) -> Result<SyncHealthRecord, StoreError>;
    /// Records the serving sync's failure; None clears it (a run succeeded).
    async fn set_sync_failure(&self, failure: Option<&SyncFailure>) -> Result<(), StoreError>;
    /// Records the identity store the serving sync reached.
    async fn set_identity_store(&self, store: &IdentityStoreRef) -> Result<(), StoreError>;
}

/// The plan of a large dry run (or refused run), in pages of at most
/// [`crate::sync::run::plan_pages::PAGE_SIZE`] described actions, numbered from 0 in plan order
/// (`run_plan_pages`): neither the run record nor a reader ever holds it whole. A run's pages
/// go with its record ([`Retention::prune_plan_pages`]).
#[async_trait]
pub trait PlanPages: Send + Sync + 'static {
    /// Writes page `page` of run `run_id`'s plan (the run must be recorded); writing a page
    /// again replaces it.
    async fn put_plan_page(
        &self,
        run_id: Uuid,
        page: u32,
        actions: &[serde_json::Value],
    ) -> Result<(), StoreError>;
    /// Page `page` of the run's plan, in plan order; None when the run has no such page.
    async fn plan_page(
        &self,
        run_id: Uuid,
        page: u32,
    ) -> Result<Option<Vec<serde_json::Value>>, StoreError>;
    /// How many pages the run's plan has stored (0: none, or an inline plan).
    async fn count_plan_pages(&self, run_id: Uuid) -> Result<u32, StoreError>;
}

/// The sync lease: one run at a time across every replica and the CLI.
#[async_trait]
pub trait Lease: Send + Sync + 'static {
    /// Takes or renews the sync lease for `holder` for `seconds`; false when another holder's
    /// lease has not expired. PostgreSQL reckons with its own clock, so replicas whose clocks
    /// disagree still agree on when a lease ends.
    async fn acquire_sync_lease(&self, holder: Uuid, seconds: u32) -> Result<bool, StoreError>;
    async fn release_sync_lease(&self, holder: Uuid) -> Result<(), StoreError>;
    /// Whether a run (of any replica or CLI) holds the sync lease now.
    async fn sync_running(&self) -> Result<bool, StoreError>;
}

/// Sync control (issue 14): the pause and the destructive actions held for approval.
#[async_trait]
pub trait Control: Send + Sync + 'static {
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
}

/// Retention (`[retention]`): deletes what is no longer kept, at most `limit` rows per call,
/// each call one short statement (never a long lock on the tables the SCIM side writes to); the
/// caller loops, pausing between batches, and holds the sync lease, so no run is going. Each
/// returns how many rows it deleted.
#[async_trait]
pub trait Retention: Send + Sync + 'static {
    /// Change-journal rows written before `before` and at or below the head the newest
    /// finished real run covered (later rows are what the next run reads), never the newest
    /// row: `MAX(seq)` is the journal head, which must not move backwards.
    async fn prune_journal(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;

    /// Audit-log rows written before `before`, never the newest row (SQLite would otherwise
    /// hand out its `seq` again, behind a reader's `after_seq` cursor).
    async fn prune_audit(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;

    /// Runs, oldest first, beyond the newest `keep` that started before `before` (the delete
    /// guard's window sums what the runs since its start removed) — never one still running,
    /// one with a hold pending or approved, the last finished real run and the last finished
    /// full one (the scheduler's "done elsewhere"), the one that covered the highest journal
    /// head (the status's pending entries), the serving replicas' rules run, or the run of the
    /// serving sync's recorded failure.
    async fn prune_runs(&self, keep: u64, before: Timestamp, limit: u32)
    -> Result<u64, StoreError>;

    /// The plan pages of the runs [`Retention::prune_runs`] would delete (the same `keep` and
    /// `before`), oldest run first: called until it deletes none before the runs are pruned,
    /// so that a run's thousand pages go in batches too, not with its record in one statement.
    async fn prune_plan_pages(
        &self,
        keep: u64,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
}
