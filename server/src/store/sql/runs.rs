//! Sync runs and what they leave behind (the [`RunLog`] role): the runs themselves, the audit
//! log of AWS changes, the serving sync's health, and the counts of `/admin/v1/status`.

use super::SqlStore;
use crate::store::backend::{Access, Backend, Bind, RowExt, binds};
use crate::store::roles::RunLog;
use crate::store::{
    AuditEntry, AuditQuery, AuditRow, FailureKind, IdentityStoreRef, Removals, RunRecord,
    RunStatus, ServingRules, StoreError, SyncCounts, SyncFailure, SyncHealthRecord, Timestamp,
    Trigger,
};
use async_trait::async_trait;
use uuid::Uuid;

const SAVE_RUN: &str = "INSERT INTO sync_runs (id, trigger, dry_run, status, started_at, finished_at, report, journal_head, \
     forced, deleted_principals, removed_memberships, removed_assignments, rules_fingerprint) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, started_at = excluded.started_at, \
     finished_at = excluded.finished_at, report = excluded.report, journal_head = excluded.journal_head, \
     forced = excluded.forced, deleted_principals = excluded.deleted_principals, \
     removed_memberships = excluded.removed_memberships, removed_assignments = excluded.removed_assignments, \
     rules_fingerprint = COALESCE(excluded.rules_fingerprint, sync_runs.rules_fingerprint)";
const SELECT_RUNS: &str = "SELECT id, trigger, dry_run, status, started_at, finished_at, journal_head, report, \
     forced, deleted_principals, removed_memberships, removed_assignments, rules_fingerprint \
     FROM sync_runs";
/// The newest run not started by the CLI that recorded its rules: what the serving replicas run.
const SERVING_RULES: &str = "SELECT id, trigger, started_at, rules_fingerprint FROM sync_runs \
     WHERE trigger <> 'cli' AND rules_fingerprint IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1";
/// `$1` among, `$2` false: the rules of the newest real run that succeeded among the newest runs
/// (no report is read).
const LAST_SUCCEEDED_RULES: &str = "SELECT rules_fingerprint FROM (SELECT id, started_at, dry_run, \
     status, finished_at, journal_head, rules_fingerprint FROM sync_runs \
     ORDER BY started_at DESC, id DESC LIMIT $1) AS newest \
     WHERE dry_run = $2 AND status = 'succeeded' AND finished_at IS NOT NULL \
     AND journal_head IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1";
const SELECT_SYNC_HEALTH: &str = "SELECT identity_store_id, instance_arn, region, connected_at, \
     failure, error, error_at, error_run_id FROM sync_health WHERE id = 1";
const SET_SYNC_FAILURE: &str = "INSERT INTO sync_health (id, failure, error, error_at, error_run_id) \
     VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET failure = excluded.failure, \
     error = excluded.error, error_at = excluded.error_at, error_run_id = excluded.error_run_id";
const SET_IDENTITY_STORE: &str = "INSERT INTO sync_health (id, identity_store_id, instance_arn, region, connected_at) \
     VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET identity_store_id = excluded.identity_store_id, \
     instance_arn = excluded.instance_arn, region = excluded.region, connected_at = excluded.connected_at";
/// What the real runs that started at or after `$1` deleted and removed, leaving out a forced
/// run and every run before it (an admin accepted those deletes).
const RECENT_REMOVALS: &str = "SELECT \
     CAST(COALESCE(SUM(deleted_principals), 0) AS BIGINT) AS deleted_principals, \
     CAST(COALESCE(SUM(removed_memberships), 0) AS BIGINT) AS removed_memberships, \
     CAST(COALESCE(SUM(removed_assignments), 0) AS BIGINT) AS removed_assignments \
     FROM sync_runs WHERE dry_run = $2 AND started_at >= $1 \
     AND started_at > COALESCE((SELECT MAX(started_at) FROM sync_runs WHERE forced = $3 AND dry_run = $2), $1)";
const LIST_AUDIT: &str = "SELECT seq, at, run_id, action, kind, name, aws_id, detail FROM audit_log \
     WHERE at >= $1 AND seq > $2 ORDER BY seq LIMIT $3";
const APPEND_AUDIT: &str = "INSERT INTO audit_log (at, run_id, action, kind, name, aws_id, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
const COUNT_PER_SOURCE: &str = "SELECT source_id, CAST(SUM(users) AS BIGINT) AS users, CAST(SUM(groups) AS BIGINT) AS groups FROM ( \
     SELECT source_id, COUNT(*) AS users, 0 AS groups FROM users GROUP BY source_id \
     UNION ALL SELECT source_id, 0 AS users, COUNT(*) AS groups FROM groups GROUP BY source_id) AS c \
     GROUP BY source_id ORDER BY source_id";
const COUNT_PRINCIPALS: &str = "SELECT \
     (SELECT COUNT(*) FROM aws_principals WHERE kind = 'User') AS aws_users, \
     (SELECT COUNT(*) FROM aws_principals WHERE kind = 'Group') AS aws_groups, \
     (SELECT COUNT(*) FROM aws_memberships) AS aws_memberships, \
     (SELECT COUNT(*) FROM aws_assignments WHERE kind = 'account' AND state = 'created') AS aws_account_assignments, \
     (SELECT COUNT(*) FROM aws_assignments WHERE kind = 'application' AND state = 'created') AS aws_application_assignments, \
     (SELECT COUNT(*) FROM change_journal WHERE seq > \
        (SELECT COALESCE(MAX(journal_head), 0) FROM sync_runs)) AS pending";

/// A row's `deleted_principals`, `removed_memberships` and `removed_assignments` (a run's, or
/// their sums over the guard's window).
fn removals_of<R: RowExt>(row: &R) -> Result<Removals, StoreError> {
    let count =
        |col: &str| -> Result<u64, StoreError> { Ok(u64::try_from(row.int(col)?).unwrap_or(0)) };
    Ok(Removals {
        principals: count("deleted_principals")?,
        memberships: count("removed_memberships")?,
        assignments: count("removed_assignments")?,
    })
}

fn run_of<R: RowExt>(r: &R) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: r.uuid("id")?,
        trigger: Trigger::parse(&r.text("trigger")?)?,
        dry_run: r.bool("dry_run")?,
        status: RunStatus::parse(&r.text("status")?)?,
        started_at: r.ts("started_at")?,
        finished_at: r.opt_ts("finished_at")?,
        journal_head: r.opt_int("journal_head")?,
        forced: r.bool("forced")?,
        removals: removals_of(r)?,
        report: r.json("report")?,
        rules_fingerprint: r.opt_text("rules_fingerprint")?,
    })
}

/// A count as the database stores it (counts stay far below `i64::MAX`).
fn count(n: u64) -> Bind {
    Bind::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

#[async_trait]
impl<B: Backend> RunLog for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(run_id = %run.id, status = run.status.as_str()), level = "debug")]
    async fn save_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let mut binds = binds![
            run.id,
            run.trigger.as_str(),
            run.dry_run,
            run.status.as_str(),
            run.started_at,
            run.finished_at,
            &run.report,
            run.journal_head,
            run.forced
        ];
        binds.extend([
            count(run.removals.principals),
            count(run.removals.memberships),
            count(run.removals.assignments),
            Bind::from(run.rules_fingerprint.as_deref()),
        ]);
        self.backend.execute(Access::Write, SAVE_RUN, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(run_id = %row.run_id, action = %row.action), level = "debug")]
    async fn append_audit(&self, row: &AuditRow) -> Result<(), StoreError> {
        let binds = binds![
            row.at,
            row.run_id,
            &row.action,
            &row.kind,
            &row.name,
            row.aws_id.as_deref(),
            row.detail.as_ref()
        ];
        self.backend.execute(Access::Write, APPEND_AUDIT, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(limit), level = "debug")]
    async fn list_runs(&self, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!("{SELECT_RUNS} ORDER BY started_at DESC, id DESC LIMIT $1");
        let rows = self.backend.fetch_all(Access::Read, &sql, binds![limit]).await?;
        rows.iter().map(run_of).collect()
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn recent_removals(&self, since: Timestamp) -> Result<Removals, StoreError> {
        let binds = binds![since, false, true];
        removals_of(&self.backend.fetch_one(Access::Read, RECENT_REMOVALS, binds).await?)
    }

    #[tracing::instrument(skip_all, fields(run_id = %id), level = "debug")]
    async fn get_run(&self, id: Uuid) -> Result<Option<RunRecord>, StoreError> {
        let sql = format!("{SELECT_RUNS} WHERE id = $1");
        let row = self.backend.fetch_optional(Access::Read, &sql, binds![id]).await?;
        row.as_ref().map(run_of).transpose()
    }

    #[tracing::instrument(skip_all, fields(after_seq = q.after_seq, limit = q.limit), level = "debug")]
    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let binds = binds![q.since, q.after_seq, q.limit];
        let rows = self.backend.fetch_all(Access::Read, LIST_AUDIT, binds).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.int("seq")?,
                    at: r.ts("at")?,
                    run_id: r.uuid("run_id")?,
                    action: r.text("action")?,
                    kind: r.text("kind")?,
                    name: r.text("name")?,
                    aws_id: r.opt_text("aws_id")?,
                    detail: r.opt_json("detail")?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn sync_counts(&self) -> Result<SyncCounts, StoreError> {
        let rows = self.backend.fetch_all(Access::Read, COUNT_PER_SOURCE, Vec::new()).await?;
        let per_source = rows
            .iter()
            .map(|r| Ok((r.int("source_id")?, r.int("users")?, r.int("groups")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let r = self.backend.fetch_one(Access::Read, COUNT_PRINCIPALS, Vec::new()).await?;
        Ok(SyncCounts {
            per_source,
            aws_users: r.int("aws_users")?,
            aws_groups: r.int("aws_groups")?,
            aws_memberships: r.int("aws_memberships")?,
            aws_account_assignments: r.int("aws_account_assignments")?,
            aws_application_assignments: r.int("aws_application_assignments")?,
            pending_journal_entries: r.int("pending")?,
        })
    }

    #[tracing::instrument(skip_all, fields(among), level = "debug")]
    async fn last_succeeded_rules(&self, among: i64) -> Result<Option<String>, StoreError> {
        let binds = binds![among, false];
        let row = self.backend.fetch_optional(Access::Read, LAST_SUCCEEDED_RULES, binds).await?;
        Ok(row.map(|r| r.opt_text("rules_fingerprint")).transpose()?.flatten())
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn serving_rules(&self) -> Result<Option<ServingRules>, StoreError> {
        let Some(r) = self.backend.fetch_optional(Access::Read, SERVING_RULES, Vec::new()).await?
        else {
            return Ok(None);
        };
        Ok(Some(ServingRules {
            run_id: r.uuid("id")?,
            trigger: Trigger::parse(&r.text("trigger")?)?,
            started_at: r.ts("started_at")?,
            fingerprint: r.text("rules_fingerprint")?,
        }))
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn sync_health(&self) -> Result<SyncHealthRecord, StoreError> {
        let row = self.backend.fetch_optional(Access::Read, SELECT_SYNC_HEALTH, Vec::new()).await?;
        let Some(r) = row else { return Ok(SyncHealthRecord::default()) };
        let identity_store = match (r.opt_text("identity_store_id")?, r.opt_ts("connected_at")?) {
            (Some(id), Some(connected_at)) => Some(IdentityStoreRef {
                id,
                instance_arn: r.opt_text("instance_arn")?,
                region: r.opt_text("region")?,
                connected_at,
            }),
            _ => None,
        };
        let failure = match (r.opt_text("failure")?, r.opt_ts("error_at")?) {
            (Some(kind), Some(at)) => Some(SyncFailure {
                kind: FailureKind::parse(&kind)?,
                message: r.opt_text("error")?.unwrap_or_default(),
                at,
                run_id: r.opt_uuid("error_run_id")?,
            }),
            _ => None,
        };
        Ok(SyncHealthRecord { identity_store, failure })
    }

    #[tracing::instrument(skip_all, fields(failing = failure.is_some()), level = "debug")]
    async fn set_sync_failure(&self, failure: Option<&SyncFailure>) -> Result<(), StoreError> {
        let binds = binds![
            failure.map(|f| f.kind.as_str()),
            failure.map(|f| f.message.as_str()),
            failure.map(|f| f.at),
            failure.and_then(|f| f.run_id)
        ];
        self.backend.execute(Access::Write, SET_SYNC_FAILURE, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(identity_store = %store.id), level = "debug")]
    async fn set_identity_store(&self, store: &IdentityStoreRef) -> Result<(), StoreError> {
        let binds = binds![
            &store.id,
            store.instance_arn.as_deref(),
            store.region.as_deref(),
            store.connected_at
        ];
        self.backend.execute(Access::Write, SET_IDENTITY_STORE, binds).await?;
        Ok(())
    }
}
