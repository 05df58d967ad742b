//! The access report's store tests, on every backend ([`super::tests::stores`]): rows per path,
//! filters, keyset pages (filtered, and the unfiltered report's windows of users), and how old
//! the data is.

use super::tests::{ctx, stores};
use super::*;
use scim_schema::schema::ResourceKind;
use serde_json::json;
use uuid::Uuid;

const A: &str = "111111111111";
const B: &str = "222222222222";
const APP: &str =
    "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111";
const READ_ONLY: &str = "arn:aws:sso:::permissionSet/ssoins-1/ps-readonly";
/// A permission set the bridge has no name for: rows name it by its ARN.
const UNNAMED: &str = "arn:aws:sso:::permissionSet/ssoins-1/ps-unnamed";

/// A SCIM resource of the source, recorded as an AWS principal with this AWS id.
async fn principal(
    s: &dyn Store,
    source: i64,
    kind: ResourceKind,
    name: &str,
    aws_id: &str,
) -> Uuid {
    let attr = if kind == ResourceKind::User { "userName" } else { "displayName" };
    let new = NewResource { doc: json!({ attr: name }), members: None };
    let id = s.create(&ctx(source), kind, &new).await.unwrap().id.parse().unwrap();
    record(s, kind, id, name, aws_id).await;
    id
}

async fn record(s: &dyn Store, kind: ResourceKind, id: Uuid, name: &str, aws_id: &str) {
    let p = AwsPrincipal {
        kind,
        resource_id: id,
        aws_id: aws_id.into(),
        ownership: Ownership::Created,
        name: name.into(),
        pushed: json!({}),
    };
    s.put_principal(&p).await.unwrap();
}

async fn assign(
    s: &dyn Store,
    kind: AssignmentKind,
    target: &str,
    set: &str,
    holder: (PrincipalType, &str),
    state: AssignmentState,
    rule: Option<&str>,
) {
    let key = AssignmentKey {
        kind,
        target: target.into(),
        permission_set_arn: set.into(),
        principal_type: holder.0,
        principal_id: holder.1.into(),
    };
    s.put_assignment(&AssignmentRecord { key, state, request_id: None }, rule).await.unwrap();
}

/// (user, target, permission set, via, rule, source, state) of each row.
type Seen = (String, String, Option<String>, String, Option<String>, Option<String>, String);

fn seen(rows: &[AccessRow]) -> Vec<Seen> {
    rows.iter()
        .map(|r| {
            (
                r.user.clone(),
                r.target.clone(),
                r.permission_set.clone(),
                r.via.as_str().to_owned(),
                r.rule.clone(),
                r.source.clone(),
                r.state.as_str().to_owned(),
            )
        })
        .collect()
}

fn row(
    user: &str,
    target: &str,
    set: Option<&str>,
    via: &str,
    rule: Option<&str>,
    state: &str,
) -> Seen {
    let owned = |s: Option<&str>| s.map(str::to_owned);
    (
        user.into(),
        target.into(),
        owned(set),
        via.into(),
        owned(rule),
        Some("okta".into()),
        state.into(),
    )
}

/// Every row of the report, read `limit` at a time.
async fn every_page(s: &dyn Store, filter: Option<AccessFilter>, limit: u32) -> Vec<AccessRow> {
    let mut query = AccessQuery { filter, after: None, limit };
    let mut rows = Vec::new();
    loop {
        let page = s.access_page(&query).await.unwrap();
        assert!(page.rows.len() <= limit as usize);
        rows.extend(page.rows.iter().cloned());
        match page.rows.last() {
            Some(last) if page.more => query.after = Some(last.position()),
            _ => break,
        }
    }
    rows
}

#[tokio::test]
async fn the_report_has_a_row_per_user_target_permission_set_and_path() {
    for t in stores().await {
        let s = &*t.store;
        let b = s.backend();
        let okta = s.upsert_source(&crate::names::SourceName::parse("okta").unwrap(), None).await;
        let okta = okta.unwrap().id;
        let user = ResourceKind::User;
        let alice = principal(s, okta, user, "alice", "u-alice").await;
        let bob = principal(s, okta, user, "Bob", "u-bob").await;
        principal(s, okta, user, "carol", "u-carol").await;
        // Users with no access at all: the unfiltered report's windows pass over them.
        for name in ["dave", "erin", "frank", "grace"] {
            principal(s, okta, user, name, &format!("u-{name}")).await;
        }
        let ops = principal(s, okta, ResourceKind::Group, "Ops", "g-ops").await;
        for (u, m) in [(alice, "m-1"), (bob, "m-2")] {
            let m = AwsMembership { group_id: ops, user_id: u, membership_id: m.into() };
            s.put_membership(&m).await.unwrap();
        }
        let object = AccessObject {
            kind: AccessObjectKind::PermissionSet,
            name: "ReadOnly".into(),
            arn: READ_ONLY.into(),
            managed: false,
            pushed: json!({}),
            needs_provision: false,
        };
        s.put_access_object(&object).await.unwrap();
        let (account, application) = (AssignmentKind::Account, AssignmentKind::Application);
        let (created, foreign) = (AssignmentState::Created, AssignmentState::Foreign);
        let group = (PrincipalType::Group, "g-ops");
        assign(s, account, A, READ_ONLY, group, created, Some("assignments.account[0]")).await;
        let carol = (PrincipalType::User, "u-carol");
        assign(
            s,
            account,
            B,
            READ_ONLY,
            carol,
            AssignmentState::Creating,
            Some("assignments.account[1]"),
        )
        .await;
        // Its create is done: the rule stays.
        assign(s, account, B, READ_ONLY, carol, created, None).await;
        assign(s, account, A, UNNAMED, (PrincipalType::User, "u-bob"), foreign, None).await;
        assign(s, application, APP, "", group, created, Some("assignments.application[0]")).await;

        let ops_rule = Some("assignments.account[0]");
        let app_rule = Some("assignments.application[0]");
        let expected = vec![
            // Byte order: "Bob" before "alice"; "ReadOnly" before "arn:…".
            row("Bob", A, Some("ReadOnly"), "Ops", ops_rule, "created"),
            row("Bob", A, Some(UNNAMED), "direct", Some("foreign"), "foreign"),
            row("Bob", APP, None, "Ops", app_rule, "created"),
            row("alice", A, Some("ReadOnly"), "Ops", ops_rule, "created"),
            row("alice", APP, None, "Ops", app_rule, "created"),
            row("carol", B, Some("ReadOnly"), "direct", Some("assignments.account[1]"), "created"),
        ];
        for limit in [1, 2, 3, 1000] {
            assert_eq!(seen(&every_page(s, None, limit).await), expected, "{b}, {limit} a page");
        }
        let whole = every_page(s, None, 100).await;
        assert_eq!(whole[0].user_id, "u-bob");
        assert_eq!(whole[0].principal_id, "g-ops");
        assert_eq!(whole[1].principal_id, "u-bob");
        assert_eq!(whole[0].kind, AssignmentKind::Account);
        assert_eq!(whole[2].kind, AssignmentKind::Application);

        let only = |keep: &[usize]| keep.iter().map(|i| expected[*i].clone()).collect::<Vec<_>>();
        let filtered = [
            (AccessFilter::User(crate::names::fold("BOB")), only(&[0, 1, 2])),
            (AccessFilter::Group(crate::names::fold("ops")), only(&[0, 2, 3, 4])),
            (AccessFilter::Account(A.into()), only(&[0, 1, 3])),
            (AccessFilter::Account(B.into()), only(&[5])),
            (AccessFilter::PermissionSet("ReadOnly".into()), only(&[0, 3, 5])),
            (AccessFilter::PermissionSet(UNNAMED.into()), only(&[1])),
            (AccessFilter::User("nobody".into()), Vec::new()),
        ];
        for (filter, rows) in filtered {
            for limit in [1, 2, 100] {
                let got = every_page(s, Some(filter.clone()), limit).await;
                assert_eq!(seen(&got), rows, "{b}: {filter:?}, {limit} a page");
            }
        }
        t.drop_database().await;
    }
}

/// A run for [`how_old_the_data_is_comes_from_the_last_full_run_and_the_last_run`].
fn run(age_minutes: i64, status: RunStatus, full: bool, dry_run: bool) -> RunRecord {
    let finished = now() - chrono::TimeDelta::minutes(age_minutes);
    RunRecord {
        id: Uuid::now_v7(),
        trigger: if full { Trigger::Schedule } else { Trigger::Change },
        dry_run,
        status,
        started_at: finished - chrono::TimeDelta::seconds(5),
        finished_at: Some(finished),
        journal_head: None,
        report: json!({"full": full}),
        forced: false,
        removals: Removals::default(),
        rules_fingerprint: None,
    }
}

#[tokio::test]
async fn how_old_the_data_is_comes_from_the_last_full_run_and_the_last_run() {
    for t in stores().await {
        let s = &*t.store;
        assert_eq!(s.access_as_of().await.unwrap(), AccessAsOf::default());
        let full = run(60, RunStatus::Succeeded, true, false);
        // Neither a full run that failed, nor a dry one, read AWS for the record.
        let failed_full = run(40, RunStatus::Failed, true, false);
        let change = run(30, RunStatus::Partial, false, false);
        let dry_full = run(10, RunStatus::Succeeded, true, true);
        for r in [&full, &failed_full, &change, &dry_full] {
            s.save_run(r).await.unwrap();
        }
        let as_of = s.access_as_of().await.unwrap();
        let full_mark = as_of.last_full_run.expect("a full run");
        assert_eq!(
            (full_mark.run_id, full_mark.trigger),
            (full.id, Trigger::Schedule),
            "{}",
            s.backend()
        );
        assert_eq!(full_mark.finished_at, full.finished_at.unwrap());
        let last = as_of.last_run.expect("a run");
        assert_eq!((last.run_id, last.status), (change.id, RunStatus::Partial));
        t.drop_database().await;
    }
}

/// Fills the record with `users` users, 200 groups (group 1, `everyone`, holds every user; each
/// user is in one other), each group assigned in 5 of 1,000 accounts, and a direct assignment
/// for every tenth user; written in bulk, as no run could in a test's time.
async fn populate(t: &super::tests::TestStore, users: u32) {
    let s = &*t.store;
    let source = s.upsert_source(&crate::names::SourceName::parse("idp").unwrap(), None).await;
    let source = source.unwrap().id;
    let pg = t.url.starts_with("postgres");
    // The numbers 1..=n, as a FROM item named n(i).
    let numbers = |n: u32| {
        if pg {
            format!("generate_series(1, {n}) AS n(i)")
        } else {
            format!(
                "(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) SELECT i FROM c) AS n"
            )
        }
    };
    // A deterministic id of number `expr` in family `family` (users 0, groups 1).
    let id = |family: u32, expr: &str| {
        if pg {
            format!("('00000000-0000-0000-000{family}-' || lpad(({expr})::text, 12, '0'))::uuid")
        } else {
            format!("('00000000-0000-0000-000{family}-' || printf('%012d', {expr}))")
        }
    };
    let pad = |expr: &str, width: u32| {
        if pg {
            format!("lpad(({expr})::text, {width}, '0')")
        } else {
            format!("printf('%0{width}d', {expr})")
        }
    };
    let (doc, at) =
        if pg { ("'{}'::jsonb", "now()") } else { ("'{}'", "'2026-01-01T00:00:00.000000Z'") };
    let user_name = format!("'user' || {} || '@example.com'", pad("i", 6));
    let group_name = format!("'group-' || {}", pad("i", 3));
    let statements = [
        format!(
            "INSERT INTO users (id, source_id, user_name, user_name_lower, doc, created_at, modified_at) \
             SELECT {}, {source}, {user_name}, {user_name}, {doc}, {at}, {at} FROM {}",
            id(0, "i"),
            numbers(users)
        ),
        format!(
            "INSERT INTO groups (id, source_id, display_name, display_name_lower, doc, created_at, modified_at) \
             SELECT {}, {source}, {group_name}, {group_name}, {doc}, {at}, {at} FROM {}",
            id(1, "i"),
            numbers(200)
        ),
        format!(
            "INSERT INTO aws_principals (kind, resource_id, aws_id, ownership, name, pushed, pushed_at) \
             SELECT 'User', {}, 'u-' || i, 'created', {user_name}, {doc}, {at} FROM {}",
            id(0, "i"),
            numbers(users)
        ),
        format!(
            "INSERT INTO aws_principals (kind, resource_id, aws_id, ownership, name, pushed, pushed_at) \
             SELECT 'Group', {}, 'g-' || i, 'created', {group_name}, {doc}, {at} FROM {}",
            id(1, "i"),
            numbers(200)
        ),
        format!(
            "INSERT INTO aws_memberships (group_id, user_id, membership_id) \
             SELECT {}, {}, 'm-' || i FROM {}",
            id(1, "1"),
            id(0, "i"),
            numbers(users)
        ),
        format!(
            "INSERT INTO aws_memberships (group_id, user_id, membership_id) \
             SELECT {}, {}, 'n-' || i FROM {}",
            id(1, "2 + i % 199"),
            id(0, "i"),
            numbers(users)
        ),
        format!(
            "INSERT INTO aws_assignments (kind, target, permission_set_arn, principal_type, principal_id, state, rule) \
             SELECT 'account', {}, 'arn:ps-1', 'GROUP', 'g-' || (1 + (i - 1) / 5), 'created', 'assignments.account[0]' FROM {}",
            pad("((i - 1) / 5) * 5 + (i - 1) % 5 * 7", 12),
            numbers(1000)
        ),
        format!(
            "INSERT INTO aws_assignments (kind, target, permission_set_arn, principal_type, principal_id, state, rule) \
             SELECT 'account', {}, 'arn:ps-2', 'USER', 'u-' || (i * 10), 'created', 'assignments.account[1]' FROM {}",
            pad("i % 1000", 12),
            numbers(users / 10)
        ),
        "INSERT INTO aws_access_objects (kind, name, arn, managed, pushed, needs_provision) VALUES \
         ('permission_set', 'ReadOnly', 'arn:ps-1', FALSE, '{}', FALSE), \
         ('permission_set', 'Admin', 'arn:ps-2', FALSE, '{}', FALSE)"
            .to_owned(),
    ];
    if pg {
        let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
        }
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
}

/// The benchmark: one account and one user at 100,000 users, in well under a second.
/// Slow to set up, so run on request:
/// `cargo test -p scimbridge --lib access_report_at_scale -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a benchmark: 100,000 users"]
async fn access_report_at_scale() {
    for t in stores().await {
        let started = std::time::Instant::now();
        populate(&t, 100_000).await;
        let s = &*t.store;
        println!("{}: populated in {:?}", s.backend(), started.elapsed());
        // Account 000000000000 holds group 1, `everyone`: 100,000 rows.
        let cases = [
            ("one account, every user", Some(AccessFilter::Account("000000000000".into()))),
            ("one account, one group", Some(AccessFilter::Account("000000000012".into()))),
            ("one user", Some(AccessFilter::User("user012340@example.com".into()))),
            ("one group", Some(AccessFilter::Group("group-007".into()))),
            ("one permission set", Some(AccessFilter::PermissionSet("Admin".into()))),
            ("no filter", None),
        ];
        for (what, filter) in cases {
            for limit in [100, 1000] {
                let query = AccessQuery { filter: filter.clone(), after: None, limit };
                let started = std::time::Instant::now();
                let first = s.access_page(&query).await.unwrap();
                let took = started.elapsed();
                let after = first.rows.last().map(AccessRow::position);
                let started = std::time::Instant::now();
                let second = s.access_page(&AccessQuery { after, ..query }).await.unwrap();
                println!(
                    "{}: {what}, {limit} a page: {} rows in {took:?}, the next {} in {:?}",
                    s.backend(),
                    first.rows.len(),
                    second.rows.len(),
                    started.elapsed()
                );
                assert!(took < std::time::Duration::from_secs(1), "{what}: {took:?}");
            }
        }
        t.drop_database().await;
    }
}
