//! The SQL layer's tests, written once and run on every backend: SQLite always, PostgreSQL too
//! when `DATABASE_URL` names a server (each run in a database of its own, dropped afterwards).

use super::*;
use chrono::TimeDelta;
use scim_schema::schema::ResourceKind;
use serde_json::json;
use uuid::Uuid;

/// A migrated store and what removes its database when the test is done.
pub(crate) struct TestStore {
    pub(crate) store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    /// The server's admin URL and the database's name.
    postgres: Option<(String, String)>,
    /// The database's own URL.
    pub(crate) url: String,
}

impl TestStore {
    pub(crate) async fn drop_database(self) {
        let Some((admin_url, name)) = self.postgres else { return };
        drop(self.store);
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await.unwrap();
        admin.close().await;
    }
}

/// A fresh store on SQLite and, with `DATABASE_URL=postgres://…`, on PostgreSQL.
pub(crate) async fn stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let mut out = vec![TestStore { store, _dir: Some(dir), postgres: None, url }];
    if let Some(admin_url) =
        std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))
    {
        let name = format!("scimbridge_store_test_{}", Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        let sql = format!("CREATE DATABASE {name}");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await.unwrap();
        admin.close().await;
        let (prefix, _) = admin_url.rsplit_once('/').unwrap();
        let query = admin_url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
        let url = format!("{prefix}/{name}{query}");
        let store = connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        out.push(TestStore { store, _dir: None, postgres: Some((admin_url, name)), url });
    }
    out
}

fn source_name(name: &str) -> crate::names::SourceName {
    crate::names::SourceName::parse(name).unwrap()
}

pub(crate) fn ctx(source_id: i64) -> WriteCtx {
    WriteCtx { source_id, token_id: None, adopt_from: Vec::new() }
}

#[tokio::test]
async fn the_lease_is_held_renewed_released_and_taken_over_once_expired() {
    for t in stores().await {
        let s = &*t.store;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(!s.sync_running().await.unwrap(), "{}", s.backend());
        assert!(s.acquire_sync_lease(a, 60).await.unwrap());
        assert!(!s.acquire_sync_lease(b, 60).await.unwrap(), "{}: b took a's lease", s.backend());
        assert!(s.acquire_sync_lease(a, 60).await.unwrap(), "{}: a renews", s.backend());
        assert!(s.sync_running().await.unwrap());
        s.release_sync_lease(a).await.unwrap();
        assert!(!s.sync_running().await.unwrap());
        // An expired lease is taken over.
        assert!(s.acquire_sync_lease(b, 0).await.unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!s.sync_running().await.unwrap());
        assert!(s.acquire_sync_lease(a, 60).await.unwrap(), "{}: steal", s.backend());
        assert!(!s.acquire_sync_lease(b, 60).await.unwrap());
        t.drop_database().await;
    }
}

#[tokio::test]
async fn the_journal_lists_every_write_in_sequence_order() {
    for t in stores().await {
        let s = &*t.store;
        assert_eq!(s.journal_head().await.unwrap(), 0);
        let source = s.upsert_source(&source_name("idp"), None).await.unwrap();
        let user = NewResource { doc: json!({"userName": "ada"}), members: None };
        let user = s.create(&ctx(source.id), ResourceKind::User, &user).await.unwrap();
        let members = Some(vec![scim_schema::resource::MemberRef {
            value: user.id.clone(),
            member_type: None,
        }]);
        let group = NewResource { doc: json!({"displayName": "admins"}), members };
        let group = s.create(&ctx(source.id), ResourceKind::Group, &group).await.unwrap();
        assert_eq!(group.members.as_ref().map(Vec::len), Some(1), "{}", s.backend());
        s.delete(&ctx(source.id), ResourceKind::User, &user.id, &IfMatch::None).await.unwrap();

        let journal = s.journal_since(0, 100).await.unwrap();
        let seen: Vec<(JournalAction, ResourceKind, &str)> =
            journal.iter().map(|e| (e.action, e.resource_type, e.resource_id.as_str())).collect();
        assert_eq!(
            seen,
            [
                (JournalAction::Create, ResourceKind::User, user.id.as_str()),
                (JournalAction::Create, ResourceKind::Group, group.id.as_str()),
                (JournalAction::Delete, ResourceKind::User, user.id.as_str()),
                (JournalAction::MemberDeleted, ResourceKind::Group, group.id.as_str()),
            ],
            "{}",
            s.backend()
        );
        assert!(journal.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(journal[3].detail, Some(json!({"members_removed": [user.id]})));
        let head = s.journal_head().await.unwrap();
        assert_eq!(head, journal[3].seq);
        let last = s.journal_since(head - 1, 1).await.unwrap();
        assert_eq!(last.iter().map(|e| e.seq).collect::<Vec<_>>(), [head]);
        t.drop_database().await;
    }
}

#[tokio::test]
async fn a_token_is_found_by_its_digest_until_revoked() {
    for t in stores().await {
        let s = &*t.store;
        let source = s.upsert_source(&source_name("okta"), Some(CompatMode::Okta)).await.unwrap();
        let id = Uuid::new_v4();
        let created_at = now();
        let token = NewToken {
            id,
            source_id: Some(source.id),
            digest: vec![7; 32],
            created_at,
            expires_at: Some(created_at + TimeDelta::days(1)),
        };
        s.insert_token(&token).await.unwrap();
        assert!(s.find_token(&[8; 32]).await.unwrap().is_none());
        let found = s.find_token(&[7; 32]).await.unwrap().unwrap().token;
        assert_eq!((found.id, found.revoked()), (id, false), "{}", s.backend());
        let compat = found.source.map(|s| (s.name, s.compat, s.detected_compat));
        assert_eq!(compat, Some((source_name("okta"), CompatMode::Okta, None)));
        assert_eq!(found.expires_at, token.expires_at);

        let at = now();
        s.touch_token(id, at).await.unwrap();
        assert!(s.revoke_token(id).await.unwrap());
        assert!(!s.revoke_token(id).await.unwrap(), "{}: revoked twice", s.backend());
        let found = s.find_token(&[7; 32]).await.unwrap().unwrap();
        assert_eq!(found.digest, vec![7; 32]);
        assert_eq!((found.token.revoked(), found.token.last_used_at), (true, Some(at)));
        let listed = s.list_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].source.as_ref().map(|s| s.name.as_str()), Some("okta"));
        assert!(listed[0].revoked_at.is_some());
        t.drop_database().await;
    }
}

#[tokio::test]
async fn a_source_keeps_its_mode_and_detection_and_an_unknown_stored_mode_is_corrupt() {
    for t in stores().await {
        let s = &*t.store;
        let okta = source_name("okta");
        assert_eq!(s.upsert_source(&okta, None).await.unwrap().compat, CompatMode::Auto);
        // A later upsert without a mode keeps the stored one; with one, sets it.
        s.upsert_source(&okta, Some(CompatMode::Strict)).await.unwrap();
        let again = s.upsert_source(&okta, None).await.unwrap();
        assert_eq!(again.compat, CompatMode::Strict, "{}", s.backend());
        // The first detection stays.
        s.set_detected_compat(again.id, CompatMode::Entra).await.unwrap();
        s.set_detected_compat(again.id, CompatMode::Okta).await.unwrap();
        let listed = s.list_sources().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].compat, listed[0].detected_compat),
            (CompatMode::Strict, Some(CompatMode::Entra))
        );
        if let Some(dir) = &t._dir {
            // A mode this version does not know (written by a newer one, or by hand).
            let url = format!("sqlite://{}", dir.path().join("store.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query("UPDATE sources SET compat = 'lenient'").execute(&pool).await.unwrap();
            pool.close().await;
            match s.list_sources().await {
                Err(StoreError::Corrupt(m)) => {
                    assert!(m.contains("unknown compat mode \"lenient\""), "{m}")
                }
                other => panic!("an unknown mode must be corrupt data, got {other:?}"),
            }
        }
        t.drop_database().await;
    }
}

#[tokio::test]
async fn the_access_record_round_trips() {
    for t in stores().await {
        let s = &*t.store;
        let object = AccessObject {
            kind: AccessObjectKind::PermissionSet,
            name: "ReadOnly".into(),
            arn: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".into(),
            managed: true,
            pushed: json!({"session_duration": "PT1H"}),
            needs_provision: false,
        };
        let assignment = AssignmentRecord {
            key: AssignmentKey {
                kind: AssignmentKind::Account,
                target: "123456789012".into(),
                permission_set_arn: object.arn.clone(),
                principal_type: PrincipalType::Group,
                principal_id: "g-1".into(),
            },
            state: AssignmentState::Creating,
            request_id: Some("r-1".into()),
        };
        s.put_access_object(&object).await.unwrap();
        s.put_assignment(&assignment, Some("assignments.account[0]")).await.unwrap();
        let done =
            AssignmentRecord { state: AssignmentState::Created, request_id: None, ..assignment };
        s.put_assignment(&done, None).await.unwrap();
        let state = s.access_state().await.unwrap();
        assert_eq!(state.objects, std::slice::from_ref(&object), "{}", s.backend());
        assert_eq!(state.assignments, std::slice::from_ref(&done));

        s.remove_assignment(&done.key).await.unwrap();
        s.remove_access_object(object.kind, &object.name).await.unwrap();
        let state = s.access_state().await.unwrap();
        assert!(state.objects.is_empty() && state.assignments.is_empty());
        t.drop_database().await;
    }
}

#[tokio::test]
async fn a_run_keeps_its_status_trigger_and_rules() {
    for t in stores().await {
        let s = &*t.store;
        let started_at = now();
        let mut run = RunRecord {
            id: Uuid::now_v7(),
            trigger: Trigger::Schedule,
            dry_run: false,
            status: RunStatus::Running,
            started_at,
            finished_at: None,
            journal_head: None,
            report: json!({"counts": {}}),
            forced: false,
            removals: Removals::default(),
            rules_fingerprint: Some("f1".into()),
        };
        s.save_run(&run).await.unwrap();
        run.status = RunStatus::Partial;
        run.finished_at = Some(now());
        run.journal_head = Some(3);
        run.removals = Removals { principals: 2, memberships: 1, assignments: 0 };
        s.save_run(&run).await.unwrap();

        let read = s.get_run(run.id).await.unwrap().unwrap();
        assert_eq!((read.status, read.trigger), (RunStatus::Partial, Trigger::Schedule));
        assert_eq!((read.finished_at, read.journal_head), (run.finished_at, Some(3)));
        assert_eq!(read.removals, run.removals, "{}", s.backend());
        let rules = s.serving_rules().await.unwrap().unwrap();
        assert_eq!(
            (rules.run_id, rules.trigger, rules.fingerprint.as_str()),
            (run.id, Trigger::Schedule, "f1")
        );
        let window = s.recent_removals(started_at - TimeDelta::hours(1)).await.unwrap();
        assert_eq!(window, run.removals);
        assert_eq!(s.list_runs(10).await.unwrap().len(), 1);
        t.drop_database().await;
    }
}

/// A run record for the retention tests: real, finished `status`, started `age` ago.
fn run_at(age: TimeDelta, status: RunStatus, journal_head: Option<i64>) -> RunRecord {
    let started_at = now() - age;
    RunRecord {
        id: Uuid::now_v7(),
        trigger: Trigger::Change,
        dry_run: false,
        status,
        started_at,
        finished_at: (status != RunStatus::Running).then_some(started_at),
        journal_head,
        report: json!({"full": false}),
        forced: false,
        removals: Removals::default(),
        rules_fingerprint: None,
    }
}

#[tokio::test]
async fn the_journal_is_pruned_only_up_to_what_a_finished_run_covered_and_never_its_head() {
    for t in stores().await {
        let s = &*t.store;
        let before_writes = now() - TimeDelta::seconds(1);
        let source = s.upsert_source(&source_name("idp"), None).await.unwrap();
        for i in 0..6 {
            let user = NewResource { doc: json!({"userName": format!("u{i}")}), members: None };
            s.create(&ctx(source.id), ResourceKind::User, &user).await.unwrap();
        }
        let seqs: Vec<i64> = s.journal_since(0, 100).await.unwrap().iter().map(|e| e.seq).collect();
        let later = now() + TimeDelta::seconds(1);
        let remaining = || async { s.journal_since(0, 100).await.unwrap().len() };

        // No run has covered anything yet, however old the rows.
        assert_eq!(s.prune_journal(later, 100).await.unwrap(), 0, "{}", s.backend());
        // A dry run and a failed run cover nothing either.
        let mut dry = run_at(TimeDelta::zero(), RunStatus::Succeeded, None);
        dry.dry_run = true;
        s.save_run(&dry).await.unwrap();
        s.save_run(&run_at(TimeDelta::zero(), RunStatus::Failed, None)).await.unwrap();
        assert_eq!(s.prune_journal(later, 100).await.unwrap(), 0);

        // A run covered the fourth row: rows up to it go once old enough, in batches, and
        // once the run cleared what it covered from the pending set (a change run reads the
        // rows of a pending resource to know what kind of change it was).
        s.save_run(&run_at(TimeDelta::hours(1), RunStatus::Succeeded, Some(seqs[3])))
            .await
            .unwrap();
        assert_eq!(s.prune_journal(later, 100).await.unwrap(), 0, "still pending");
        let pending = s.pending_changes(100).await.unwrap();
        assert_eq!(s.clear_pending(&pending[..4]).await.unwrap(), 4);
        assert_eq!(s.prune_journal(before_writes, 100).await.unwrap(), 0, "too young");
        assert_eq!(s.prune_journal(later, 2).await.unwrap(), 2);
        assert_eq!(s.prune_journal(later, 2).await.unwrap(), 2);
        assert_eq!(s.prune_journal(later, 2).await.unwrap(), 0, "{}", s.backend());
        let left: Vec<i64> = s.journal_since(0, 100).await.unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(left, seqs[4..], "what no run covered stays, however old");

        // A newer run covered everything: all goes but the newest row, the head.
        s.save_run(&run_at(TimeDelta::zero(), RunStatus::Succeeded, Some(seqs[5]))).await.unwrap();
        assert_eq!(s.clear_pending(&pending[4..]).await.unwrap(), 2);
        assert_eq!(s.prune_journal(later, 100).await.unwrap(), 1);
        assert_eq!(remaining().await, 1);
        assert_eq!(s.journal_head().await.unwrap(), seqs[5], "the head never moves back");
        assert_eq!(s.prune_journal(later, 100).await.unwrap(), 0);

        // The next write continues after the head.
        let user = NewResource { doc: json!({"userName": "u6"}), members: None };
        s.create(&ctx(source.id), ResourceKind::User, &user).await.unwrap();
        let next = s.journal_since(seqs[5], 10).await.unwrap();
        assert_eq!(next.len(), 1);
        assert!(next[0].seq > seqs[5]);
        t.drop_database().await;
    }
}

#[tokio::test]
async fn runs_beyond_runs_keep_go_oldest_first_but_never_one_still_needed() {
    for t in stores().await {
        let s = &*t.store;
        let day = TimeDelta::days(1);
        let hold = |run_id: Uuid, state: HoldState| Hold {
            run_id,
            held_at: now(),
            state,
            action_keys: vec!["delete_user:x".into()],
            actions: vec![json!({"action": "delete_user"})],
            approved_at: None,
            approved_by: None,
            closed_at: None,
            closed_by_run: None,
        };
        // Oldest first. A stale `running` run (its process died) stays.
        let running = run_at(day * 40, RunStatus::Running, None);
        let mut old1 = run_at(day * 39, RunStatus::Succeeded, Some(1));
        old1.trigger = Trigger::Schedule;
        old1.rules_fingerprint = Some("f0".into());
        let old2 = run_at(day * 38, RunStatus::Succeeded, Some(2));
        // The highest journal head ever covered: /admin/v1/status counts pending entries from it.
        let max_head = run_at(day * 37, RunStatus::Succeeded, Some(99));
        let held = run_at(day * 36, RunStatus::Partial, Some(3));
        let closed_hold = run_at(day * 35, RunStatus::Partial, Some(4));
        let mut full = run_at(day * 34, RunStatus::Succeeded, Some(5));
        full.report = json!({"full": true});
        let mut dry_full = run_at(day * 33, RunStatus::Succeeded, None);
        dry_full.dry_run = true;
        dry_full.report = json!({"full": true});
        // What the serving replicas run (`scimbridge sync` compares its rules with it).
        let mut rules = run_at(day * 32, RunStatus::Refused, None);
        rules.trigger = Trigger::Admin;
        rules.rules_fingerprint = Some("f1".into());
        let failed = run_at(day * 31, RunStatus::Failed, None);
        let mut last_real = run_at(day * 30, RunStatus::Succeeded, Some(8));
        last_real.trigger = Trigger::Cli;
        // Inside the guard's window: what it removed counts against the next run.
        let mut window = run_at(TimeDelta::hours(2), RunStatus::Failed, None);
        window.removals = Removals { principals: 5, memberships: 2, assignments: 1 };
        let newest = run_at(TimeDelta::hours(1), RunStatus::Refused, None);
        let all = [
            &running,
            &old1,
            &old2,
            &max_head,
            &held,
            &closed_hold,
            &full,
            &dry_full,
            &rules,
            &failed,
            &last_real,
            &window,
            &newest,
        ];
        for run in all {
            s.save_run(run).await.unwrap();
        }
        s.put_hold(&hold(held.id, HoldState::Pending)).await.unwrap();
        s.put_hold(&hold(closed_hold.id, HoldState::Superseded)).await.unwrap();
        let failure = SyncFailure {
            kind: FailureKind::Failing,
            message: "AccessDenied".into(),
            at: failed.started_at,
            run_id: Some(failed.id),
        };
        s.set_sync_failure(Some(&failure)).await.unwrap();
        let guard_start = now() - day;
        let guarded = s.recent_removals(guard_start).await.unwrap();
        assert_eq!(guarded.principals, 5, "{}", s.backend());

        // Plan pages go before their runs, in batches of their own; a kept run keeps its own.
        let page = [json!({"action": "create", "kind": "User", "name": "u"})];
        for (run, pages) in [(&old1, 3), (&held, 1), (&newest, 2)] {
            for n in 0..pages {
                s.put_plan_page(run.id, n, &page).await.unwrap();
            }
        }
        assert_eq!(s.prune_plan_pages(1, guard_start, 2).await.unwrap(), 2, "{}", s.backend());
        assert_eq!(s.prune_plan_pages(1, guard_start, 2).await.unwrap(), 1);
        assert_eq!(s.prune_plan_pages(1, guard_start, 2).await.unwrap(), 0, "{}", s.backend());
        assert_eq!(s.count_plan_pages(old1.id).await.unwrap(), 0);
        assert_eq!(s.count_plan_pages(held.id).await.unwrap(), 1, "kept with its run");
        assert_eq!(s.count_plan_pages(newest.id).await.unwrap(), 2);
        // A page written after that pass still goes with its run (no page outlives its run).
        s.put_plan_page(old2.id, 0, &page).await.unwrap();

        // Keep 1: the oldest that may go, go first, two per batch.
        assert_eq!(s.prune_runs(1, guard_start, 2).await.unwrap(), 2, "{}", s.backend());
        assert_eq!(s.count_plan_pages(old2.id).await.unwrap(), 0, "{}", s.backend());
        assert_eq!(s.plan_page(old2.id, 0).await.unwrap(), None);
        assert!(s.get_run(old1.id).await.unwrap().is_none());
        assert!(s.get_run(old2.id).await.unwrap().is_none());
        assert!(s.get_run(closed_hold.id).await.unwrap().is_some(), "oldest first");
        assert_eq!(s.prune_runs(1, guard_start, 2).await.unwrap(), 2);
        assert_eq!(s.prune_runs(1, guard_start, 2).await.unwrap(), 0, "{}", s.backend());
        let kept: Vec<Uuid> = s.list_runs(100).await.unwrap().iter().map(|r| r.id).collect();
        let wanted: Vec<Uuid> =
            [newest.id, window.id, last_real.id, failed.id, rules.id, full.id, held.id]
                .into_iter()
                .chain([max_head.id, running.id])
                .collect();
        assert_eq!(kept, wanted, "{}", s.backend());
        // A closed hold went with its run; the open one stays, and so does the guard's sum.
        assert!(s.get_hold(closed_hold.id).await.unwrap().is_none());
        assert!(s.get_hold(held.id).await.unwrap().is_some());
        assert_eq!(s.recent_removals(guard_start).await.unwrap(), guarded);
        assert_eq!(s.serving_rules().await.unwrap().map(|r| r.run_id), Some(rules.id));

        // Once the window has passed, its run may go too; the newest stays (runs_keep).
        assert_eq!(s.prune_runs(1, now(), 100).await.unwrap(), 1);
        assert!(s.get_run(window.id).await.unwrap().is_none());
        assert!(s.get_run(newest.id).await.unwrap().is_some());
        // A larger runs_keep keeps more, whatever their age.
        let mut young = run_at(TimeDelta::zero(), RunStatus::Refused, None);
        young.started_at = now() + TimeDelta::seconds(1);
        s.save_run(&young).await.unwrap();
        assert_eq!(s.prune_runs(2, now() + TimeDelta::hours(1), 100).await.unwrap(), 0);
        assert_eq!(s.prune_plan_pages(2, now() + TimeDelta::hours(1), 100).await.unwrap(), 0);
        assert_eq!(s.prune_plan_pages(1, now() + TimeDelta::hours(1), 100).await.unwrap(), 2);
        assert_eq!(s.prune_runs(1, now() + TimeDelta::hours(1), 100).await.unwrap(), 1);
        assert!(s.get_run(newest.id).await.unwrap().is_none());
        t.drop_database().await;
    }
}

#[tokio::test]
async fn old_audit_rows_go_in_batches_but_never_the_newest() {
    for t in stores().await {
        let s = &*t.store;
        let append = |at: Timestamp, name: &str| AuditRow {
            at,
            run_id: Uuid::now_v7(),
            action: "create_user".into(),
            kind: "User".into(),
            name: name.into(),
            aws_id: Some("aws-1".into()),
            detail: None,
        };
        let old = now() - TimeDelta::days(400);
        for i in 0..5 {
            s.append_audit(&append(old, &format!("old{i}"))).await.unwrap();
        }
        let all = AuditQuery { since: Timestamp::UNIX_EPOCH, after_seq: 0, limit: 100 };
        let seqs: Vec<i64> = s.list_audit(&all).await.unwrap().iter().map(|e| e.seq).collect();
        let cutoff = now() - TimeDelta::days(365);
        assert_eq!(s.prune_audit(old - TimeDelta::days(1), 100).await.unwrap(), 0, "too young");
        assert_eq!(s.prune_audit(cutoff, 3).await.unwrap(), 3, "{}", s.backend());
        assert_eq!(s.prune_audit(cutoff, 3).await.unwrap(), 1);
        // The newest row stays however old: a reader's `after_seq` cursor stays valid.
        let left = s.list_audit(&all).await.unwrap();
        assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [seqs[4]]);
        s.append_audit(&append(now(), "new")).await.unwrap();
        assert_eq!(s.prune_audit(cutoff, 3).await.unwrap(), 1);
        let left = s.list_audit(&all).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].name, "new");
        assert!(left[0].seq > seqs[4], "{}: a seq is never handed out again", s.backend());
        t.drop_database().await;
    }
}

/// Renames the user `id` in a task of its own (a write that a test holds back from committing).
fn rename_in_background(
    s: &Arc<dyn Store>,
    ctx: &WriteCtx,
    id: &str,
    name: &str,
) -> tokio::task::JoinHandle<Result<StoredResource, StoreError>> {
    let (s, ctx, id, doc) = (s.clone(), ctx.clone(), id.to_owned(), named(name));
    tokio::spawn(async move {
        s.replace(&ctx, ResourceKind::User, &id, &doc, &IfMatch::None, Load::default()).await
    })
}

fn named(doc_name: &str) -> NewResource {
    NewResource { doc: json!({"userName": doc_name}), members: None }
}

fn pending_of(kind: ResourceKind, id: &str, mark: i64) -> PendingChange {
    PendingChange { kind, resource_id: id.parse().unwrap(), mark }
}

#[tokio::test]
async fn every_write_marks_its_resource_pending_and_a_clear_removes_only_unchanged_marks() {
    for t in stores().await {
        let s = &*t.store;
        let b = s.backend();
        assert_eq!(s.pending_summary().await.unwrap(), PendingSummary::default(), "{b}");
        let source = s.upsert_source(&source_name("idp"), None).await.unwrap();
        let ctx = ctx(source.id);
        let ada = s.create(&ctx, ResourceKind::User, &named("ada")).await.unwrap();
        let refs = Some(vec![scim_schema::resource::MemberRef {
            value: ada.id.clone(),
            member_type: None,
        }]);
        let admins = NewResource { doc: json!({"displayName": "admins"}), members: refs };
        let admins = s.create(&ctx, ResourceKind::Group, &admins).await.unwrap();
        // Each mark is the seq of the resource's newest journal row, oldest first.
        let journal = s.journal_since(0, 100).await.unwrap();
        let first = s.pending_changes(100).await.unwrap();
        assert_eq!(
            first,
            [
                pending_of(ResourceKind::User, &ada.id, journal[0].seq),
                pending_of(ResourceKind::Group, &admins.id, journal[1].seq)
            ],
            "{b}"
        );
        assert_eq!(s.pending_changes(1).await.unwrap(), first[..1], "{b}: oldest first");

        // A second change to ada moves her mark (an upsert: still two pending).
        let renamed = s
            .replace(
                &ctx,
                ResourceKind::User,
                &ada.id,
                &named("ada2"),
                &IfMatch::None,
                Load::default(),
            )
            .await
            .unwrap();
        assert_eq!(renamed.doc["userName"], "ada2");
        let head = s.journal_head().await.unwrap();
        let newest = s.journal_since(head - 1, 1).await.unwrap().remove(0);
        let summary = s.pending_summary().await.unwrap();
        assert_eq!(
            summary,
            PendingSummary { count: 2, newest_mark: head, newest_at: Some(newest.at) },
            "{b}"
        );
        // A run that read the first state clears the group, whose mark it read, and leaves ada,
        // changed since it read her.
        assert_eq!(s.clear_pending(&first).await.unwrap(), 1, "{b}");
        assert_eq!(
            s.pending_changes(100).await.unwrap(),
            [pending_of(ResourceKind::User, &ada.id, head)],
            "{b}"
        );

        // Deleting ada marks her, and the group she was taken out of.
        s.delete(&ctx, ResourceKind::User, &ada.id, &IfMatch::None).await.unwrap();
        let head = s.journal_head().await.unwrap();
        let read = s.pending_changes(100).await.unwrap();
        assert_eq!(
            read,
            [
                pending_of(ResourceKind::User, &ada.id, head - 1),
                pending_of(ResourceKind::Group, &admins.id, head)
            ],
            "{b}"
        );
        // Clearing is idempotent, and clears nothing it was not given.
        assert_eq!(s.clear_pending(&[]).await.unwrap(), 0);
        assert_eq!(s.clear_pending(&read).await.unwrap(), 2, "{b}");
        assert_eq!(s.clear_pending(&read).await.unwrap(), 0, "{b}");
        assert_eq!(s.pending_summary().await.unwrap(), PendingSummary::default(), "{b}");
        t.drop_database().await;
    }
}

#[tokio::test]
async fn clearing_many_pending_resources_takes_every_chunk() {
    for t in stores().await {
        let s = &*t.store;
        let source = s.upsert_source(&source_name("idp"), None).await.unwrap();
        for i in 0..1203 {
            s.create(&ctx(source.id), ResourceKind::User, &named(&format!("u{i}"))).await.unwrap();
        }
        let read = s.pending_changes(5000).await.unwrap();
        assert_eq!(read.len(), 1203, "{}", s.backend());
        assert!(read.windows(2).all(|w| w[0].mark < w[1].mark));
        assert_eq!(s.clear_pending(&read).await.unwrap(), 1203, "{}", s.backend());
        assert!(s.pending_summary().await.unwrap().is_empty());
        t.drop_database().await;
    }
}

/// The race a cursor over the journal's `seq` loses on PostgreSQL, reproduced with the real
/// write path: write A takes its seq, then waits (a test trigger blocks it on an advisory lock)
/// while write B takes a later seq and commits. A run reads what is pending (B only) and clears
/// it; then A commits. A head cursor, now at B's seq, never sees A; the pending set still has
/// it. Then a change made while a clear waits on its row keeps its resource pending.
#[tokio::test]
async fn a_write_committed_out_of_seq_order_stays_pending_where_a_head_cursor_skips_it() {
    for t in stores().await {
        if t.postgres.is_none() {
            // SQLite has one writer at a time: its rows appear in seq order.
            continue;
        }
        let s = t.store.clone();
        let source = s.upsert_source(&source_name("idp"), None).await.unwrap();
        let ctx = ctx(source.id);
        let a = s.create(&ctx, ResourceKind::User, &named("a")).await.unwrap().id;
        let b = s.create(&ctx, ResourceKind::User, &named("b")).await.unwrap().id;
        s.clear_pending(&s.pending_changes(100).await.unwrap()).await.unwrap();

        let pg = sqlx::PgPool::connect(&t.url).await.unwrap();
        let hold = format!(
            "CREATE FUNCTION test_hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.resource_id = '{a}' THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF; \
               RETURN NULL; END $$"
        );
        sqlx::query(sqlx::AssertSqlSafe(hold)).execute(&pg).await.unwrap();
        // Fired after change_journal_marks_pending (same event: name order).
        let trigger = "CREATE TRIGGER zz_test_hold AFTER INSERT ON change_journal \
                       FOR EACH ROW EXECUTE FUNCTION test_hold()";
        sqlx::query(trigger).execute(&pg).await.unwrap();
        let mut gate = pg.acquire().await.unwrap();
        sqlx::query("SELECT pg_advisory_lock(4242)").execute(&mut *gate).await.unwrap();

        // A: its journal row (and mark) taken, its commit held back.
        let write_a = rename_in_background(&s, &ctx, &a, "a2");
        waiting(&pg, "locktype = 'advisory' AND NOT granted").await;
        // B: a later seq, committed first.
        s.replace(&ctx, ResourceKind::User, &b, &named("b2"), &IfMatch::None, Load::default())
            .await
            .unwrap();
        // A run starts: it reads the pending set (what a head cursor would read: up to here).
        let head = s.journal_head().await.unwrap();
        let read = s.pending_changes(100).await.unwrap();
        assert_eq!(read, [pending_of(ResourceKind::User, &b, head)]);
        assert_eq!(s.clear_pending(&read).await.unwrap(), 1);
        // A commits.
        sqlx::query("SELECT pg_advisory_unlock(4242)").execute(&mut *gate).await.unwrap();
        write_a.await.unwrap().unwrap();
        let journal = s.journal_since(0, 100).await.unwrap();
        let mark_a = journal.iter().filter(|e| e.resource_id == a).map(|e| e.seq).max().unwrap();
        assert!(mark_a < head, "A's seq {mark_a} is below the head {head} the run saw");
        // A head cursor at `head` has nothing more to read: A is lost to it.
        assert!(s.journal_since(head, 100).await.unwrap().is_empty());
        // The pending set still has A, and A's late row is what a change run reads of it.
        let read = s.pending_changes(100).await.unwrap();
        assert_eq!(read, [pending_of(ResourceKind::User, &a, mark_a)]);
        let history = s.pending_history(100).await.unwrap();
        assert!(history.rows.iter().any(|e| e.resource_id == a && e.seq == mark_a));

        // A run read A; A changes again and waits to commit, holding its pending row; the
        // run's clear waits on that row, then finds a new mark there and leaves it.
        sqlx::query("SELECT pg_advisory_lock(4242)").execute(&mut *gate).await.unwrap();
        let write_again = rename_in_background(&s, &ctx, &a, "a3");
        waiting(&pg, "locktype = 'advisory' AND NOT granted").await;
        let clear = {
            let (s, read) = (s.clone(), read.clone());
            tokio::spawn(async move { s.clear_pending(&read).await })
        };
        waiting(&pg, "locktype = 'transactionid' AND NOT granted").await;
        sqlx::query("SELECT pg_advisory_unlock(4242)").execute(&mut *gate).await.unwrap();
        write_again.await.unwrap().unwrap();
        assert_eq!(clear.await.unwrap().unwrap(), 0, "the changed row stays");
        let again = s.journal_head().await.unwrap();
        assert_eq!(
            s.pending_changes(100).await.unwrap(),
            [pending_of(ResourceKind::User, &a, again)]
        );
        drop(gate);
        pg.close().await;
        drop(s);
        t.drop_database().await;
    }
}

/// Waits until a lock matching `condition` (over `pg_locks`) is waited for.
async fn waiting(pg: &sqlx::PgPool, condition: &str) {
    let sql = format!("SELECT COUNT(*) FROM pg_locks WHERE {condition}");
    for _ in 0..500 {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).fetch_one(pg).await.unwrap();
        if n > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("nothing waited for a lock where {condition}");
}

#[tokio::test]
async fn a_pending_resource_s_history_runs_from_its_first_uncovered_change() {
    for t in stores().await {
        let s = &*t.store;
        let source = s.upsert_source(&source_name("idp"), None).await.unwrap();
        let old = s.create(&ctx(source.id), ResourceKind::User, &named("old")).await.unwrap();
        // A run covered `old`: it is no longer pending, and its rows are no one's history.
        let covered = s.pending_changes(10).await.unwrap();
        assert_eq!(s.clear_pending(&covered).await.unwrap(), 1);
        assert!(s.pending_history(100).await.unwrap().rows.is_empty(), "{}", s.backend());

        // Two changes to one resource: both rows, oldest first, though the mark moved on.
        let ada = s.create(&ctx(source.id), ResourceKind::User, &named("ada")).await.unwrap();
        s.delete(&ctx(source.id), ResourceKind::User, &ada.id, &IfMatch::None).await.unwrap();
        let history = s.pending_history(100).await.unwrap();
        let actions: Vec<_> =
            history.rows.iter().map(|r| (r.resource_id.clone(), r.action)).collect();
        assert_eq!(
            actions,
            [(ada.id.clone(), JournalAction::Create), (ada.id.clone(), JournalAction::Delete)],
            "{}",
            s.backend()
        );
        assert!(history.unexplained.is_empty());
        assert!(history.rows.iter().all(|r| r.resource_id != old.id));
        // At most `limit` rows.
        assert_eq!(s.pending_history(1).await.unwrap().rows.len(), 1);
        t.drop_database().await;
    }
}

/// A full run's pages: every user id once, in id order, whether the SCIM resource exists, the
/// principal is recorded, or both; a recorded principal's removal takes its memberships with it.
#[tokio::test]
async fn pages_walk_resources_and_recorded_principals_once_each_in_id_order() {
    for t in stores().await {
        let s = &*t.store;
        let source = s.upsert_source(&source_name("idp"), None).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            let new = named(&format!("u{i}"));
            let u = s.create(&ctx(source.id), ResourceKind::User, &new).await.unwrap();
            ids.push(u.id.parse::<Uuid>().unwrap());
        }
        // Recorded: one existing user, and one whose resource is gone (deleted at the IdP).
        let gone = Uuid::now_v7();
        let group = Uuid::now_v7();
        for (kind, id) in [(ResourceKind::User, ids[2]), (ResourceKind::User, gone)] {
            let p = AwsPrincipal {
                kind,
                resource_id: id,
                aws_id: format!("aws-{id}"),
                ownership: Ownership::Created,
                name: id.to_string(),
                pushed: json!({}),
            };
            s.put_principal(&p).await.unwrap();
        }
        ids.push(gone);
        ids.sort();
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let page = s.page_ids(ResourceKind::User, after, 2).await.unwrap();
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            after = Some(*last);
            walked.extend(page);
        }
        assert_eq!(walked, ids, "{}", s.backend());
        assert!(s.page_ids(ResourceKind::Group, None, 10).await.unwrap().is_empty());
        let m = AwsMembership { group_id: group, user_id: gone, membership_id: "m".into() };
        s.put_membership(&m).await.unwrap();
        s.remove_principal(ResourceKind::User, gone).await.unwrap();
        let left = s.sync_state().await.unwrap();
        assert!(left.memberships.is_empty(), "{}: {:?}", s.backend(), left.memberships);
        assert_eq!(left.principals.len(), 1);
        t.drop_database().await;
    }
}

#[tokio::test]
async fn a_plan_page_reads_back_as_written_and_is_replaced_when_written_again() {
    for t in stores().await {
        let s = &*t.store;
        let run = run_at(TimeDelta::zero(), RunStatus::Succeeded, None);
        s.save_run(&run).await.unwrap();
        // Keys in the order the report describes them (not sorted, as JSONB would).
        let first = vec![
            json!({"action": "update", "kind": "User", "name": "ü@x", "attributes": ["title"]}),
            json!({"action": "add_member", "group": "G", "user": "ü@x"}),
        ];
        s.put_plan_page(run.id, 0, &first).await.unwrap();
        s.put_plan_page(run.id, 1, &first[..1]).await.unwrap();
        let read = s.plan_page(run.id, 0).await.unwrap().unwrap();
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            serde_json::to_string(&first).unwrap(),
            "{}",
            s.backend()
        );
        assert_eq!(s.count_plan_pages(run.id).await.unwrap(), 2);
        // Written again (a retried write), a page is replaced, not added.
        s.put_plan_page(run.id, 1, &first).await.unwrap();
        assert_eq!(s.plan_page(run.id, 1).await.unwrap(), Some(first.clone()));
        assert_eq!(s.count_plan_pages(run.id).await.unwrap(), 2);
        assert_eq!(s.plan_page(run.id, 2).await.unwrap(), None);
        assert_eq!(s.plan_page(Uuid::now_v7(), 0).await.unwrap(), None);
        assert_eq!(s.count_plan_pages(Uuid::now_v7()).await.unwrap(), 0);
        // A page belongs to a recorded run.
        assert!(s.put_plan_page(Uuid::now_v7(), 0, &first).await.is_err(), "{}", s.backend());
        t.drop_database().await;
    }
}
