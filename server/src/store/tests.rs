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
    let mut out = vec![TestStore { store, _dir: Some(dir), postgres: None }];
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
        let store = connect(&format!("{prefix}/{name}{query}"), 2).await.unwrap();
        store.migrate().await.unwrap();
        out.push(TestStore { store, _dir: None, postgres: Some((admin_url, name)) });
    }
    out
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
        let source = s.upsert_source("idp", None).await.unwrap();
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
        let source = s.upsert_source("okta", Some("okta")).await.unwrap();
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
        let found = s.find_token(&[7; 32]).await.unwrap().unwrap();
        assert_eq!((found.id, found.revoked), (id, false), "{}", s.backend());
        assert_eq!(found.source.map(|s| (s.name, s.compat)), Some(("okta".into(), "okta".into())));
        assert_eq!(found.expires_at, token.expires_at);

        let at = now();
        s.touch_token(id, at).await.unwrap();
        assert!(s.revoke_token(id).await.unwrap());
        assert!(!s.revoke_token(id).await.unwrap(), "{}: revoked twice", s.backend());
        let found = s.find_token(&[7; 32]).await.unwrap().unwrap();
        assert_eq!((found.revoked, found.last_used_at), (true, Some(at)));
        let listed = s.list_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].source.as_deref(), Some("okta"));
        assert!(listed[0].revoked_at.is_some());
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
        s.put_assignment(&assignment).await.unwrap();
        let done =
            AssignmentRecord { state: AssignmentState::Created, request_id: None, ..assignment };
        s.put_assignment(&done).await.unwrap();
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
