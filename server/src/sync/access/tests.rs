//! The access applier over the in-memory target ([`FakeAws`]) and a SQLite record.

use super::AccessRun;
use super::plan::{AccessPlan, Assign, Unassign};
use super::rules::PermissionSetSettings;
use crate::store::{
    AccessObjectKind, AssignmentKey, AssignmentKind, AssignmentRecord, AssignmentState,
    PrincipalType, Store,
};
use crate::sync::target::fake::FakeAws;
use crate::sync::target::{AccountAssignment, Change, PermissionSetShape, SsoAdmin};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use uuid::Uuid;

const ACCOUNT: &str = "111111111111";
const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

/// A migrated SQLite store in a directory removed when the guard drops.
async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("access.db").display());
    let store = crate::store::connect(&url, 2).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, dir)
}

async fn run<'a>(store: &'a dyn Store, aws: &'a FakeAws) -> AccessRun<'a> {
    AccessRun::load(store, aws, Uuid::new_v4(), false, None).await.expect("access record loads")
}

fn assign(arn: &str, group: &str, group_id: &str) -> Assign {
    Assign {
        kind: AssignmentKind::Account,
        target: ACCOUNT.into(),
        permission_set: Some("ReadOnly".into()),
        permission_set_arn: Some(arn.into()),
        principal_type: PrincipalType::Group,
        principal: group.into(),
        resource_id: Uuid::new_v4(),
        principal_id: Some(group_id.into()),
        rule: "assignments.account[0]".into(),
        management_account: false,
    }
}

fn in_aws(arn: &str, group_id: &str) -> AccountAssignment {
    AccountAssignment {
        account: ACCOUNT.into(),
        permission_set_arn: arn.into(),
        principal_type: PrincipalType::Group,
        principal_id: group_id.into(),
    }
}

fn key(arn: &str, group_id: &str) -> AssignmentKey {
    AssignmentKey {
        kind: AssignmentKind::Account,
        target: ACCOUNT.into(),
        permission_set_arn: arn.into(),
        principal_type: PrincipalType::Group,
        principal_id: group_id.into(),
    }
}

fn recorded(run: &AccessRun, key: &AssignmentKey) -> Option<AssignmentState> {
    run.state.assignments.iter().find(|r| &r.key == key).map(|r| r.state)
}

fn read_only_set() -> PermissionSetSettings {
    PermissionSetSettings {
        name: "ReadOnly".into(),
        description: Some("read only".into()),
        managed_policies: vec![READ_ONLY.into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_declared_permission_set_is_created_with_its_policies_and_recorded() {
    let (store, _dir) = store().await;
    let aws = FakeAws::new();
    let declared = vec![read_only_set()];
    let mut access = run(store.as_ref(), &aws).await;
    let names = BTreeSet::from(["ReadOnly".to_owned()]);
    access.resolve_permission_sets(&names, &declared, false).await.expect("resolves");
    assert_eq!(access.permission_sets.get("ReadOnly"), Some(&None), "declared, not in AWS yet");
    access.sync_permission_sets(&declared, false).await.expect("syncs");

    let world = aws.world();
    let (arn, set) = world.permission_sets.iter().next().expect("created in AWS");
    assert_eq!(set.name, "ReadOnly");
    assert_eq!(set.shape.description.as_deref(), Some("read only"));
    assert!(set.shape.managed_policies.contains(READ_ONLY));
    assert_eq!(access.done.get("create_permission_set"), Some(&1));
    let object = store.access_state().await.expect("reads").objects;
    let object = object.iter().find(|o| o.kind == AccessObjectKind::PermissionSet);
    let object = object.expect("recorded");
    assert_eq!((&object.arn, object.managed, object.needs_provision), (arn, true, false));

    // Unchanged since pushed: a normal run leaves it alone.
    let mut again = run(store.as_ref(), &aws).await;
    again.resolve_permission_sets(&names, &declared, false).await.expect("resolves");
    again.sync_permission_sets(&declared, false).await.expect("syncs");
    assert!(again.done.is_empty(), "{:?}", again.done);
    assert_eq!(aws.calls_of("DescribePermissionSet"), 0);
}

#[tokio::test]
async fn a_permission_set_changed_in_aws_is_pushed_back_and_provisioned() {
    let (store, _dir) = store().await;
    let aws = FakeAws::new();
    let shape = PermissionSetShape {
        description: Some("edited by hand".into()),
        managed_policies: BTreeSet::from([READ_ONLY.to_owned(), "arn:extra".to_owned()]),
        ..Default::default()
    };
    let arn = aws.seed_permission_set("ReadOnly", shape);
    let group = aws.seed_group("Admins");
    aws.seed_account_assignment(&in_aws(&arn, &group));
    let declared = vec![read_only_set()];
    let mut access = run(store.as_ref(), &aws).await;
    let names = BTreeSet::from(["ReadOnly".to_owned()]);
    // Found by name in AWS: adopted.
    access.resolve_permission_sets(&names, &declared, true).await.expect("resolves");
    access.sync_permission_sets(&declared, true).await.expect("syncs");

    let set = aws.world().permission_sets[&arn].clone();
    assert_eq!(set.shape.description.as_deref(), Some("read only"));
    assert_eq!(set.shape.managed_policies, BTreeSet::from([READ_ONLY.to_owned()]));
    assert_eq!(set.provisions, 1, "re-provisioned to the account that holds it");
    assert_eq!(access.done.get("adopt_permission_set"), Some(&1));
    assert_eq!(access.done.get("provision_permission_set"), Some(&1));
    assert!(access.failures.is_empty(), "{:?}", access.failures);
}

#[tokio::test]
async fn an_assignment_is_created_and_recorded() {
    let (store, _dir) = store().await;
    let aws = FakeAws::new();
    let arn = aws.seed_permission_set("ReadOnly", PermissionSetShape::default());
    let group = aws.seed_group("Admins");
    // AWS works on it for a poll before it is done.
    aws.set_async_polls(1);
    let mut access = run(store.as_ref(), &aws).await;
    let plan = AccessPlan { assign: vec![assign(&arn, "Admins", &group)], ..Default::default() };
    access.apply(&plan).await.expect("applies");

    assert!(aws.has_account_assignment(&in_aws(&arn, &group)));
    assert_eq!(recorded(&access, &key(&arn, &group)), Some(AssignmentState::Created));
    assert_eq!(access.done.get("create_account_assignment"), Some(&1));
    assert_eq!(aws.calls_of("DescribeAccountAssignmentCreationStatus"), 1);
    let stored = store.access_state().await.expect("reads").assignments;
    assert_eq!(
        stored,
        vec![AssignmentRecord {
            key: key(&arn, &group),
            state: AssignmentState::Created,
            request_id: None
        }]
    );
}

#[tokio::test]
async fn a_foreign_assignment_is_recorded_and_never_deleted() {
    let (store, _dir) = store().await;
    let aws = FakeAws::new();
    let arn = aws.seed_permission_set("ReadOnly", PermissionSetShape::default());
    let group = aws.seed_group("Admins");
    aws.seed_account_assignment(&in_aws(&arn, &group));
    let mut access = run(store.as_ref(), &aws).await;
    let plan = AccessPlan { assign: vec![assign(&arn, "Admins", &group)], ..Default::default() };
    access.apply(&plan).await.expect("applies");
    assert_eq!(recorded(&access, &key(&arn, &group)), Some(AssignmentState::Foreign));
    assert_eq!(access.done.get("found_existing_assignment"), Some(&1));
    assert_eq!(aws.calls_of("CreateAccountAssignment"), 0);

    // No rule wants it any more: forgotten, and left in AWS.
    let mut later = run(store.as_ref(), &aws).await;
    let plan = AccessPlan { forget: vec![key(&arn, &group)], ..Default::default() };
    later.apply(&plan).await.expect("applies");
    assert_eq!(recorded(&later, &key(&arn, &group)), None);
    assert!(store.access_state().await.expect("reads").assignments.is_empty());
    assert!(aws.has_account_assignment(&in_aws(&arn, &group)));
    assert_eq!(aws.calls_of("DeleteAccountAssignment"), 0);
}

#[tokio::test]
async fn a_failing_assignment_fails_its_principal_and_the_others_go_on() {
    let (store, _dir) = store().await;
    let aws = FakeAws::new();
    let arn = aws.seed_permission_set("ReadOnly", PermissionSetShape::default());
    let refused = aws.seed_group("Refused");
    let rejected = aws.seed_group("Rejected");
    let admins = aws.seed_group("Admins");
    aws.fail_assignment(&refused, "the account is suspended");
    aws.fail_on(
        "CreateAccountAssignment",
        &rejected,
        crate::sync::target::AwsError::Invalid {
            operation: "CreateAccountAssignment",
            message: "bad principal".into(),
        },
    );
    let mut access = run(store.as_ref(), &aws).await;
    let plan = AccessPlan {
        assign: vec![
            assign(&arn, "Refused", &refused),
            assign(&arn, "Rejected", &rejected),
            assign(&arn, "Admins", &admins),
        ],
        ..Default::default()
    };
    access.apply(&plan).await.expect("per-principal failures do not end the run");

    assert!(aws.has_account_assignment(&in_aws(&arn, &admins)));
    assert_eq!(recorded(&access, &key(&arn, &admins)), Some(AssignmentState::Created));
    assert_eq!(recorded(&access, &key(&arn, &refused)), None, "reverted");
    assert_eq!(recorded(&access, &key(&arn, &rejected)), None, "reverted");
    let failures: Vec<(&str, &str)> =
        access.failures.iter().map(|f| (f.principal.as_str(), f.message.as_str())).collect();
    assert_eq!(
        failures,
        vec![
            (
                "account 111111111111 / ReadOnly / group Refused",
                "AWS reports the create FAILED: the account is suspended"
            ),
            (
                "account 111111111111 / ReadOnly / group Rejected",
                "CreateAccountAssignment: rejected: bad principal"
            ),
        ]
    );
    assert_eq!(access.done.get("create_account_assignment"), Some(&1));
}

#[tokio::test]
async fn a_failed_create_holds_back_the_principals_deletes() {
    let (store, _dir) = store().await;
    let aws = FakeAws::new();
    let old = aws.seed_permission_set("Old", PermissionSetShape::default());
    let new = aws.seed_permission_set("ReadOnly", PermissionSetShape::default());
    let group = aws.seed_group("Admins");
    aws.seed_account_assignment(&in_aws(&old, &group));
    let row = AssignmentRecord {
        key: key(&old, &group),
        state: AssignmentState::Created,
        request_id: None,
    };
    store.put_assignment(&row, None).await.expect("recorded");
    aws.fail_assignment(&group, "");
    let unassign = Unassign {
        key: key(&old, &group),
        permission_set: Some("Old".into()),
        principal: "Admins".into(),
    };
    let plan = AccessPlan {
        assign: vec![assign(&new, "Admins", &group)],
        unassign: vec![unassign],
        ..Default::default()
    };
    let mut access = run(store.as_ref(), &aws).await;
    access.apply(&plan).await.expect("applies");

    assert!(aws.has_account_assignment(&in_aws(&old, &group)), "moved, never left without access");
    assert_eq!(recorded(&access, &key(&old, &group)), Some(AssignmentState::Created));
    assert_eq!(access.failures.len(), 1);
    assert_eq!(access.failures[0].message, "AWS reports the create FAILED and gives no reason");
    assert_eq!(aws.calls_of("DeleteAccountAssignment"), 0);
}

#[tokio::test]
async fn an_unwanted_assignment_the_bridge_made_is_deleted() {
    let (store, _dir) = store().await;
    let aws = FakeAws::new();
    let arn = aws.seed_permission_set("ReadOnly", PermissionSetShape::default());
    let group = aws.seed_group("Admins");
    aws.seed_account_assignment(&in_aws(&arn, &group));
    let row = AssignmentRecord {
        key: key(&arn, &group),
        state: AssignmentState::Created,
        request_id: None,
    };
    store.put_assignment(&row, None).await.expect("recorded");
    let mut access = run(store.as_ref(), &aws).await;
    let unassign = Unassign {
        key: key(&arn, &group),
        permission_set: Some("ReadOnly".into()),
        principal: "Admins".into(),
    };
    access.unassign(&[unassign]).await.expect("unassigns");

    assert!(!aws.has_account_assignment(&in_aws(&arn, &group)));
    assert_eq!(recorded(&access, &key(&arn, &group)), None);
    assert!(store.access_state().await.expect("reads").assignments.is_empty());
    assert_eq!(access.done.get("delete_account_assignment"), Some(&1));
}

#[tokio::test]
async fn an_operation_a_dead_process_left_open_is_settled_by_its_request_id() {
    let (store, _dir) = store().await;
    let aws = FakeAws::new();
    let arn = aws.seed_permission_set("ReadOnly", PermissionSetShape::default());
    let group = aws.seed_group("Admins");
    // Sent by a process that died before it saw the answer.
    let sent = aws.account_assignment(&in_aws(&arn, &group), Change::Add).await.expect("sent");
    let row = AssignmentRecord {
        key: key(&arn, &group),
        state: AssignmentState::Creating,
        request_id: Some(sent.request_id),
    };
    store.put_assignment(&row, None).await.expect("recorded");
    let mut access = run(store.as_ref(), &aws).await;
    access.settle_in_flight().await.expect("settles");

    assert_eq!(recorded(&access, &key(&arn, &group)), Some(AssignmentState::Created));
    let stored = store.access_state().await.expect("reads").assignments;
    assert_eq!(stored[0].state, AssignmentState::Created);
    assert_eq!(aws.calls_of("CreateAccountAssignment"), 1, "not sent twice");
}

#[tokio::test]
async fn a_stopped_run_stops_before_it_changes_anything() {
    let (store, _dir) = store().await;
    let aws = FakeAws::new();
    let arn = aws.seed_permission_set("ReadOnly", PermissionSetShape::default());
    let group = aws.seed_group("Admins");
    let stop = Arc::new(AtomicBool::new(true));
    let mut access = AccessRun::load(store.as_ref(), &aws, Uuid::new_v4(), false, Some(stop))
        .await
        .expect("access record loads");
    let plan = AccessPlan { assign: vec![assign(&arn, "Admins", &group)], ..Default::default() };
    assert!(access.apply(&plan).await.is_err(), "a stopped run ends with an error");
    assert!(access.sync_permission_sets(&[read_only_set()], false).await.is_err());
    assert_eq!(aws.calls_of("CreateAccountAssignment"), 0);
    assert_eq!(aws.calls_of("CreatePermissionSet"), 0);
    assert!(!aws.has_account_assignment(&in_aws(&arn, &group)));
}
