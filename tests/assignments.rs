//! Permission sets, account assignments and application assignments from rules, end to end:
//! SCIM writes to the server, `scimbridge sync` (the real binary) applies `[[permission_sets]]`
//! and `[assignments]` in the moto emulator (extended with what it lacks, tests/aws), and what
//! AWS holds is read back through the SSO Admin API. The fault proxy holds operations
//! IN_PROGRESS, answers conflicts and fails operations, as AWS does and the emulator does not.

use crate::on_both_backends;
use crate::support::binary::{BinaryApp, IdpClient};
use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::moto::{Moto, SYNCING_ENV, aws_config_section, writes};
use crate::support::{Backend, TestApp, eventually, execute_sql, patch_op, spawn_app};
use crate::sync::{check_with, count, sync, sync_command, sync_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    assignments_follow_the_rules,
    a_group_renamed_at_the_idp_keeps_its_assignments,
    foreign_assignments_are_never_deleted,
    conflicts_are_retried_and_at_most_ten_operations_are_in_flight,
    a_failed_operation_is_reported_with_awss_reason,
    a_changed_permission_set_is_updated_in_place_and_reprovisioned,
    an_unknown_permission_set_is_a_configuration_error_and_deletes_nothing,
    malformed_rules_stop_the_run_naming_the_key,
    a_dry_run_shows_assignment_changes_and_writes_nothing,
    removing_most_assignments_is_refused_until_forced,
    operations_a_dead_run_left_open_are_settled,
    a_full_run_restores_an_assignment_removed_by_hand,
    a_principal_moved_between_rules_keeps_access_when_the_new_create_fails,
    an_assignment_aws_refuses_fails_alone,
    an_operation_still_in_progress_when_a_run_died_is_polled_not_resent,
    serve_applies_rules_to_a_group_pushed_by_the_idp,
);

const A: &str = "111111111111";
const B: &str = "222222222222";
const C: &str = "333333333333";
const APP: &str =
    "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111";

/// A group with an externalId (the IdP's immutable id); its SCIM id.
async fn group_with_external_id(
    app: &TestApp,
    name: &str,
    external_id: &str,
    members: &[&str],
) -> String {
    let mut body = crate::support::group(name, members);
    body["externalId"] = json!(external_id);
    let r = app.post("/Groups", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

/// An `[[assignments.account]]` rule.
fn account_rule(principal: &str, permission_set: &str, accounts: &[&str]) -> String {
    format!(
        "\n[[assignments.account]]\n{principal}\npermission_set = \"{permission_set}\"\naccounts = {}\n",
        json!(accounts)
    )
}

/// Every row of the audit log.
async fn audit_log(app: &TestApp) -> Vec<scimbridge::store::AuditEntry> {
    let query = scimbridge::store::AuditQuery {
        since: chrono::DateTime::UNIX_EPOCH,
        after_seq: 0,
        limit: 1000,
    };
    app.store.list_audit(&query).await.expect("audit")
}

/// SSO Admin operations of a run report that change something.
fn assignment_writes(report: &Value) -> u64 {
    let calls = report["aws_calls"].as_object().cloned().unwrap_or_default();
    calls
        .iter()
        .filter(|(op, _)| {
            op.contains("Assignment") && !op.starts_with("List") && !op.starts_with("Describe")
        })
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum()
}

fn calls(report: &Value, operation: &str) -> u64 {
    report["aws_calls"][operation].as_u64().unwrap_or(0)
}

async fn assignments_follow_the_rules(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let alice = app.create_user("alice@example.com").await;
    let admins = group_with_external_id(&app, "AWS - Admins", "ext-admins", &[&alice]).await;
    app.create_group("Data Engineers", &[&alice]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let declared = r#"
[[permission_sets]]
name = "AdminAccess"
description = "Administrators"
session_duration = "PT8H"
managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess"]
"#;
    let admin_rule = account_rule("group = \"AWS - Admins\"", "AdminAccess", &[A, B]);
    let user_rule = account_rule("user = \"alice@example.com\"", "ViewOnly", &[C]);
    let app_rule = format!(
        "\n[[assignments.application]]\ngroup = \"Data Engineers\"\napplication_arn = \"{APP}\"\nassignment_required = true\n"
    );
    let rules = format!("{declared}{admin_rule}{user_rule}{app_rule}");

    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "create_permission_set"), 1, "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 3, "{report}");
    assert_eq!(count(&report, "create_application_assignment"), 1, "{report}");
    assert_eq!(count(&report, "set_assignment_required"), 1, "{report}");
    // The principals are new: nothing can be assigned to them yet, so nothing is looked up.
    assert_eq!(calls(&report, "ListAccountAssignments"), 0, "{report}");
    let (users, groups) = (moto.users().await, moto.groups().await);
    let (alice_aws, admins_aws, data_aws) =
        (&users["alice@example.com"], &groups["AWS - Admins"], &groups["Data Engineers"]);
    let admin_access = moto.permission_sets().await["AdminAccess"].clone();
    let (duration, policies, _) = moto.permission_set(&admin_access).await;
    assert_eq!(duration.as_deref(), Some("PT8H"));
    assert_eq!(policies, ["arn:aws:iam::aws:policy/AdministratorAccess"]);
    assert_eq!(moto.account_assignments(A, &admin_access).await, vec![admins_aws.clone()]);
    assert_eq!(moto.account_assignments(B, &admin_access).await, vec![admins_aws.clone()]);
    assert_eq!(moto.account_assignments(C, &view_only).await, vec![alice_aws.clone()]);
    assert_eq!(moto.application_assignments(APP).await, vec![data_aws.clone()]);
    assert!(moto.assignment_required(APP).await);
    // What `GET /admin/v1/status` and the `scimbridge_aws_assignments` gauge report.
    let counts = app.store.sync_counts().await.expect("counts");
    assert_eq!((counts.aws_account_assignments, counts.aws_application_assignments), (3, 1));

    // Nothing changed: nothing to do, and no AWS call at all.
    let (code, again) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["counts"], json!({}), "{again}");
    assert_eq!(again["aws_calls"], json!({}), "{again}");

    // The audit log names each assignment.
    let audit = audit_log(&app).await;
    let assigned: Vec<&str> =
        audit.iter().filter(|e| e.action == "assign").map(|e| e.name.as_str()).collect();
    assert!(
        assigned.contains(&"account 111111111111 / AdminAccess / group AWS - Admins"),
        "{assigned:?}"
    );

    // Rules removed: their assignments go, the others stay.
    let fewer = format!("{declared}{admin_rule}");
    let (code, report) = sync(&app, &moto, &fewer, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_account_assignment"), 1, "{report}");
    assert_eq!(count(&report, "delete_application_assignment"), 1, "{report}");
    assert!(moto.account_assignments(C, &view_only).await.is_empty());
    assert!(moto.application_assignments(APP).await.is_empty());
    assert_eq!(moto.account_assignments(A, &admin_access).await, vec![admins_aws.clone()]);

    // The group deleted at the IdP: deleted in AWS, and its assignments with it.
    assert_eq!(app.delete(&format!("/Groups/{admins}")).await.status, StatusCode::NO_CONTENT);
    let (code, report) = sync(&app, &moto, &fewer, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_group"), 1, "{report}");
    assert_eq!(count(&report, "delete_account_assignment"), 2, "{report}");
    assert!(moto.account_assignments(A, &admin_access).await.is_empty());
    assert!(moto.account_assignments(B, &admin_access).await.is_empty());
    // Its assignments went first: AWS never held an assignment to a deleted group.
    let audit = audit_log(&app).await;
    let seq = |action: &str, kind: &str| {
        audit.iter().filter(|e| e.action == action && e.kind == kind).map(|e| e.seq).max()
    };
    assert!(seq("unassign", "AccountAssignment") < seq("delete", "Group"), "{audit:?}");
    assert!(moto.permission_sets().await.contains_key("AdminAccess"));
}

async fn a_group_renamed_at_the_idp_keeps_its_assignments(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let team = group_with_external_id(&app, "Team", "ext-team", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let rules = account_rule("group_external_id = \"ext-team\"", "ViewOnly", &[A]);
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    let group_aws = moto.groups().await["Team"].clone();
    assert_eq!(moto.account_assignments(A, &view_only).await, vec![group_aws.clone()]);

    let r = app
        .patch(
            &format!("/Groups/{team}"),
            &patch_op(json!([{"op": "replace", "path": "displayName", "value": "Team Renamed"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["counts"], json!({"update_group": 1}), "{report}");
    assert_eq!(assignment_writes(&report), 0, "no delete and re-create: {report}");
    assert_eq!(moto.groups().await["Team Renamed"], group_aws, "renamed in place");
    assert_eq!(moto.account_assignments(A, &view_only).await, [group_aws]);
}

async fn foreign_assignments_are_never_deleted(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let (code, _) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0);
    let ops = moto.groups().await["Ops"].clone();
    // An admin assigned Ops by hand in A, and someone else too.
    let someone = uuid::Uuid::new_v4().to_string();
    moto.assign_group(A, &view_only, &ops).await;
    moto.assign_group(A, &view_only, &someone).await;

    let rules = account_rule("group = \"Ops\"", "ViewOnly", &[A, B]);
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "found_existing_assignment"), 1, "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 1, "{report}");
    assert_eq!(calls(&report, "CreateAccountAssignment"), 1, "{report}");

    // The rule removed: only what the bridge created goes.
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_account_assignment"), 1, "{report}");
    assert!(moto.account_assignments(B, &view_only).await.is_empty());
    let mut both = vec![ops.clone(), someone];
    both.sort();
    assert_eq!(moto.account_assignments(A, &view_only).await, both);
    // And once forgotten, it is never claimed later either.
    let (_, report) = sync(&app, &moto, "", &[]);
    assert_eq!(report["counts"], json!({}), "{report}");
}

async fn conflicts_are_retried_and_at_most_ten_operations_are_in_flight(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Wide", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let accounts: Vec<String> = (0..13).map(|i| format!("1000000000{i:02}")).collect();
    let accounts: Vec<&str> = accounts.iter().map(String::as_str).collect();
    let conflict = json!({"__type": "ConflictException",
        "Message": "An operation on this permission set is in progress"});
    let faults = Faults {
        answer: Some(("CreateAccountAssignment", conflict)),
        answer_times: Some(2),
        hold_in_progress: Some(Duration::from_millis(1500)),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&moto.endpoint, faults).await;
    let config = format!(
        "{}{}",
        aws_config_section(&proxy.endpoint, 200),
        account_rule("group = \"Wide\"", "ViewOnly", &accounts)
    );
    let (code, report) = sync_with(&app, &config, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 13, "{report}");
    // Two conflicts, each tried again.
    assert_eq!(calls(&report, "CreateAccountAssignment"), 15, "{report}");
    assert!(calls(&report, "DescribeAccountAssignmentCreationStatus") >= 13, "{report}");
    let stats = proxy.stats();
    assert_eq!(
        stats.max_outstanding_assignments, 10,
        "the window is used, and never exceeded: {stats:?}"
    );
    let group = moto.groups().await["Wide"].clone();
    for account in &accounts {
        assert_eq!(
            moto.account_assignments(account, &view_only).await,
            vec![group.clone()],
            "{account}"
        );
    }
}

async fn a_failed_operation_is_reported_with_awss_reason(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    moto.create_permission_set("ViewOnly").await;
    let faults = Faults {
        hold_in_progress: Some(Duration::from_millis(300)),
        fail_held_with: Some("Received a 404 status error: Not supported policy".into()),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&moto.endpoint, faults).await;
    let config = format!(
        "{}{}",
        aws_config_section(&proxy.endpoint, 200),
        account_rule("group = \"Ops\"", "ViewOnly", &[A])
    );
    let (code, report) = sync_with(&app, &config, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["status"], "partial");
    assert_eq!(count(&report, "create_account_assignment"), 0, "{report}");
    let errors = report["errors"].as_array().unwrap();
    let failure = errors
        .iter()
        .find(|e| e["principal"] == "account 111111111111 / ViewOnly / group Ops")
        .unwrap_or_else(|| panic!("the failure names the assignment: {report}"));
    assert!(
        failure["message"].as_str().unwrap().contains("Not supported policy"),
        "AWS's reason: {report}"
    );
}

async fn a_changed_permission_set_is_updated_in_place_and_reprovisioned(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Deployers", &[]).await;
    let policies = tempfile::tempdir().expect("temp dir");
    let inline = policies.path().join("deploy.json");
    std::fs::write(
        &inline,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}"#,
    )
    .unwrap();
    let rule = account_rule("group = \"Deployers\"", "Deploy", &[A]);
    let first = format!(
        "{rule}\n[[permission_sets]]\nname = \"Deploy\"\nsession_duration = \"PT1H\"\n\
         managed_policies = [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n"
    );
    let (code, report) = sync(&app, &moto, &first, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "create_permission_set"), 1, "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 1, "{report}");
    let arn = moto.permission_sets().await["Deploy"].clone();

    // New policies, a longer session, an inline policy: updated in place and provisioned again
    // (AWS takes a while: the proxy holds the provisioning IN_PROGRESS).
    let changed = format!(
        "{rule}\n[[permission_sets]]\nname = \"Deploy\"\nsession_duration = \"PT4H\"\n\
         managed_policies = [\"arn:aws:iam::aws:policy/PowerUserAccess\"]\ninline_policy_file = {}\n",
        json!(inline.to_str().unwrap())
    );
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Faults { hold_in_progress: Some(Duration::from_millis(1200)), ..Faults::default() },
    )
    .await;
    let config = format!("{}{changed}", aws_config_section(&proxy.endpoint, 200));
    let (code, report) = sync_with(&app, &config, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "update_permission_set"), 1, "{report}");
    assert_eq!(count(&report, "provision_permission_set"), 1, "{report}");
    assert_eq!(
        calls(&report, "CreatePermissionSet") + calls(&report, "DeletePermissionSet"),
        0,
        "{report}"
    );
    assert_eq!(calls(&report, "ProvisionPermissionSet"), 1, "{report}");
    assert!(calls(&report, "DescribePermissionSetProvisioningStatus") >= 1, "polled: {report}");
    assert_eq!(moto.permission_sets().await["Deploy"], arn, "the same permission set");
    let (duration, managed, inline_policy) = moto.permission_set(&arn).await;
    assert_eq!(duration.as_deref(), Some("PT4H"));
    assert_eq!(managed, ["arn:aws:iam::aws:policy/PowerUserAccess"]);
    assert!(inline_policy.unwrap_or_default().contains("s3:GetObject"));
    assert_eq!(assignment_writes(&report), 0, "assignments untouched: {report}");

    // Provisioned: the next run has nothing to do.
    let (code, again) = sync_with(&app, &config, &[]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["counts"], json!({}), "{again}");
    // A full run compares with AWS itself: a policy attached by hand is detached again.
    moto.sso
        .attach_managed_policy_to_permission_set()
        .instance_arn(&moto.instance_arn)
        .permission_set_arn(&arn)
        .managed_policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .expect("attach by hand");
    let (code, full) = sync_with(&app, &config, &["--full"]);
    assert_eq!(code, 0, "{full}");
    assert_eq!(count(&full, "update_permission_set"), 1, "{full}");
    assert_eq!(moto.permission_set(&arn).await.1, ["arn:aws:iam::aws:policy/PowerUserAccess"]);
}

async fn an_unknown_permission_set_is_a_configuration_error_and_deletes_nothing(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let good = account_rule("group = \"Ops\"", "ViewOnly", &[A]);
    let (code, report) = sync(&app, &moto, &good, &[]);
    assert_eq!(code, 0, "{report}");
    // A typo in the rule: the assignment it made is not revoked, and the run says why.
    let typo = account_rule("group = \"Ops\"", "ViewOnIy", &[A]);
    let (code, report) = sync(&app, &moto, &typo, &[]);
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["status"], "partial");
    let text = report["errors"].to_string();
    assert!(text.contains("assignments.account[0]") && text.contains("ViewOnIy"), "{report}");
    assert_eq!(count(&report, "delete_account_assignment"), 0, "{report}");
    assert_eq!(moto.account_assignments(A, &view_only).await.len(), 1);
    // `check` says so too.
    let (code, out) = check_with(&app, &format!("{}{typo}", moto.config()));
    assert_eq!(code, 1, "{out}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(failed[0].contains("assignments.account[0].permission_set"), "{out}");
    let (code, out) = check_with(&app, &format!("{}{good}", moto.config()));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok    sso:ListAccountAssignments"), "{out}");
}

async fn malformed_rules_stop_the_run_naming_the_key(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    for (rules, key) in [
        (
            account_rule("group = \"Ops\"", "ViewOnly", &["1234"]),
            "assignments.account[0].accounts[0]",
        ),
        (account_rule("", "ViewOnly", &[A]), "assignments.account[0] names no principal"),
        (
            "\n[[assignments.application]]\ngroup = \"Ops\"\napplication_arn = \"apl-1\"\n"
                .to_owned(),
            "assignments.application[0].application_arn",
        ),
    ] {
        let (mut cmd, _dir) = sync_command(&app, &format!("{}{rules}", moto.config()), &[]);
        let out = cmd.output().expect("run sync");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(key), "{key:?} in {stderr}");
    }
    assert!(moto.groups().await.is_empty(), "nothing was synced");
}

async fn a_dry_run_shows_assignment_changes_and_writes_nothing(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let rules = format!(
        "{}\n[[permission_sets]]\nname = \"OpsAccess\"\nmanaged_policies = [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n",
        account_rule("group = \"Ops\"", "OpsAccess", &[A, B])
    );
    let (code, report) = sync(&app, &moto, &rules, &["--dry-run"]);
    assert_eq!(code, 0, "{report}");
    let plan = report["plan"].as_array().expect("a plan");
    let actions: Vec<&str> = plan.iter().filter_map(|p| p["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "create",
            "create_permission_set",
            "create_account_assignment",
            "create_account_assignment"
        ],
        "{report}"
    );
    assert_eq!(plan[2]["principal"], "Ops");
    assert_eq!(plan[2]["permission_set"], "OpsAccess");
    assert_eq!(plan[2]["rule"], "assignments.account[0]");
    assert_eq!(count(&report, "create_account_assignment"), 2);
    assert_eq!(writes(&report), 0, "{report}");
    assert!(moto.permission_sets().await.is_empty());
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 2, "the run does what the plan said");
}

async fn removing_most_assignments_is_refused_until_forced(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let guard = "[sync]\nmin_principals_for_guard = 2\n";
    let rules = format!("{guard}{}", account_rule("group = \"Ops\"", "ViewOnly", &[A, B, C]));
    let (code, _) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0);
    // The rule file lost its rule: 3 of 3 assignments would go.
    let (code, report) = sync(&app, &moto, guard, &[]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["status"], "refused");
    assert!(report["errors"].to_string().contains("3 of 3 assignments"), "{report}");
    assert_eq!(moto.account_assignments(C, &view_only).await.len(), 1);
    let (code, report) = sync(&app, &moto, guard, &["--force"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_account_assignment"), 3);
    assert!(moto.account_assignments(C, &view_only).await.is_empty());
}

async fn operations_a_dead_run_left_open_are_settled(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let rules = account_rule("group = \"Ops\"", "ViewOnly", &[A]);
    let (code, _) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0);
    let ops = moto.groups().await["Ops"].clone();
    // As a run killed between sending and recording leaves them: A was created in AWS; B was
    // written down but never reached AWS.
    execute_sql(&app.url, "UPDATE aws_assignments SET state = 'creating'".into()).await;
    execute_sql(
        &app.url,
        format!(
            "INSERT INTO aws_assignments (kind, target, permission_set_arn, principal_type, \
             principal_id, state) VALUES ('account', '{B}', '{view_only}', 'GROUP', '{ops}', 'creating')"
        ),
    )
    .await;
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(assignment_writes(&report), 0, "settled by looking, nothing re-sent: {report}");
    assert_eq!(moto.account_assignments(A, &view_only).await, vec![ops.clone()]);
    assert!(moto.account_assignments(B, &view_only).await.is_empty());
    // Settled as created: removing the rule deletes A (the bridge's own).
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_account_assignment"), 1, "{report}");
}

async fn serve_applies_rules_to_a_group_pushed_by_the_idp(b: Backend) {
    let moto = Moto::start().await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let config = format!(
        "{}[sync]\ndebounce_seconds = 1\n{}",
        moto.config(),
        account_rule("group = \"Pushed\"", "ViewOnly", &[A])
    );
    let app = BinaryApp::start_with_env(b, &config, SYNCING_ENV).await;
    let idp =
        IdpClient::new(&app.base, app.token("okta", None), None, "application/scim+json", None);
    let r = idp.post("/Groups", &crate::support::group("Pushed", &[])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    eventually(Duration::from_secs(30), "the assignment reaching AWS", || async {
        !moto.account_assignments(A, &view_only).await.is_empty()
    })
    .await;
    assert_eq!(
        moto.account_assignments(A, &view_only).await,
        [moto.groups().await["Pushed"].clone()]
    );
}

async fn a_full_run_restores_an_assignment_removed_by_hand(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let rules = account_rule("group = \"Ops\"", "ViewOnly", &[A]);
    let (code, _) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0);
    let ops = moto.groups().await["Ops"].clone();
    moto.unassign_group(A, &view_only, &ops).await;
    // A change run trusts its record (it reads nothing from AWS) ...
    let (_, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(report["counts"], json!({}), "{report}");
    // ... a full run looks, and makes it again.
    let (code, report) = sync(&app, &moto, &rules, &["--full"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "drift_recreated_assignment"), 1, "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 1, "{report}");
    assert_eq!(moto.account_assignments(A, &view_only).await, [ops]);
}

async fn a_principal_moved_between_rules_keeps_access_when_the_new_create_fails(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let power_user = moto.create_permission_set("PowerUser").await;
    let (code, _) = sync(&app, &moto, &account_rule("group = \"Ops\"", "ViewOnly", &[A]), &[]);
    assert_eq!(code, 0);
    let ops = moto.groups().await["Ops"].clone();
    // The rule moves Ops to PowerUser; AWS fails the new assignment.
    let moved = account_rule("group = \"Ops\"", "PowerUser", &[A]);
    let faults = Faults {
        hold_in_progress: Some(Duration::from_millis(300)),
        fail_held_with: Some("Received a 404 status error: Not supported policy".into()),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&moto.endpoint, faults).await;
    let config = format!("{}{moved}", aws_config_section(&proxy.endpoint, 200));
    let (code, report) = sync_with(&app, &config, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(calls(&report, "DeleteAccountAssignment"), 0, "the old one stays: {report}");
    assert_eq!(moto.account_assignments(A, &view_only).await, vec![ops.clone()]);
    // Once the new one is made, the old one goes.
    moto.unassign_group(A, &power_user, &ops).await; // what the failed create left in moto
    let (code, report) = sync(&app, &moto, &moved, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 1, "{report}");
    assert_eq!(count(&report, "delete_account_assignment"), 1, "{report}");
    assert_eq!(moto.account_assignments(A, &power_user).await, vec![ops]);
    assert!(moto.account_assignments(A, &view_only).await.is_empty());
}

async fn an_assignment_aws_refuses_fails_alone(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    // As AWS answers an assignment to the management account made by a delegated admin.
    let denied = json!({"__type": "AccessDeniedException",
        "Message": "User is not authorized to perform this operation on the management account"});
    let faults = Faults {
        answer: Some(("CreateAccountAssignment", denied)),
        answer_times: Some(1),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&moto.endpoint, faults).await;
    let config = format!(
        "{}{}",
        aws_config_section(&proxy.endpoint, 200),
        account_rule("group = \"Ops\"", "ViewOnly", &[A, B])
    );
    let (code, report) = sync_with(&app, &config, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["status"], "partial");
    assert_eq!(count(&report, "create_account_assignment"), 1, "the other is made: {report}");
    assert!(report["errors"].to_string().contains("management account"), "{report}");
    let ops = moto.groups().await["Ops"].clone();
    assert_eq!(moto.account_assignments(B, &view_only).await, vec![ops]);
}

async fn an_operation_still_in_progress_when_a_run_died_is_polled_not_resent(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let faults = Faults { hold_in_progress: Some(Duration::from_secs(5)), ..Faults::default() };
    let proxy = FaultProxy::start(&moto.endpoint, faults).await;
    let config = format!(
        "{}{}",
        aws_config_section(&proxy.endpoint, 200),
        account_rule("group = \"Ops\"", "ViewOnly", &[A])
    );
    // The run is killed while AWS still works on its create.
    let (mut cmd, _dir) = sync_command(&app, &config, &[]);
    let mut child = cmd.stdout(std::process::Stdio::null()).spawn().expect("start sync");
    eventually(Duration::from_secs(20), "the create being sent", || async {
        proxy.stats().by_operation.get("CreateAccountAssignment").copied().unwrap_or(0) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().expect("kill sync");
    child.wait().expect("reap sync");
    // As once the dead run's lease has expired (a minute later).
    execute_sql(&app.url, "DELETE FROM sync_lease".into()).await;
    // The next run finds it IN_PROGRESS by its request id, waits for it, and sends nothing again.
    let (code, report) = sync_with(&app, &config, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(calls(&report, "CreateAccountAssignment"), 0, "{report}");
    assert!(calls(&report, "DescribeAccountAssignmentCreationStatus") >= 2, "polled: {report}");
    let ops = moto.groups().await["Ops"].clone();
    assert_eq!(moto.account_assignments(A, &view_only).await, vec![ops]);
    // Recorded as the bridge's own: removing the rule deletes it.
    let (code, report) = sync_with(&app, &aws_config_section(&proxy.endpoint, 200), &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_account_assignment"), 1, "{report}");
}
