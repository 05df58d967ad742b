//! Trust between sources, end to end against the emulator: a second IdP cannot reach access
//! it was not given. Rules reach only the principals of their source; an unmanaged AWS
//! principal is taken over only by a source with `adopt_existing`; the delete guard weighs
//! memberships removed, per group and across the runs of its window.

use crate::on_both_backends;
use crate::support::moto::Moto;
use crate::support::{Backend, TestApp, group, patch_op, spawn_app, user};
use crate::sync::{check_with, count, sync};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    a_rule_reaches_only_the_principals_of_its_source,
    a_rule_without_source_is_refused_once_a_second_source_exists,
    unmanaged_aws_principals_are_taken_over_only_with_adopt_existing,
    emptying_a_group_is_refused_until_forced,
    removals_spaced_out_count_together_within_the_window,
    one_large_group_emptied_is_refused_on_its_own,
    names_mean_one_thing_everywhere,
    a_permission_set_made_by_hand_is_planned_as_adopt,
);

const ACCOUNT: &str = "111111111111";

const ADMIN_ACCESS: &str = r#"
[[permission_sets]]
name = "AdminAccess"
managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess"]
"#;

/// `[[assignments.account]]` granting AdminAccess in ACCOUNT.
fn admin_rule(source: Option<&str>, principal: &str) -> String {
    let source = source.map(|s| format!("source = \"{s}\"\n")).unwrap_or_default();
    format!(
        "{ADMIN_ACCESS}\n[[assignments.account]]\n{source}{principal}\npermission_set = \"AdminAccess\"\naccounts = [\"{ACCOUNT}\"]\n"
    )
}

/// POSTs as another source's token; the SCIM id.
async fn post_as(app: &TestApp, token: &str, path: &str, body: &Value) -> String {
    let r = app.request_as(token, Method::POST, path, Some(body), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

fn with_external_id(mut body: Value, external_id: &str) -> Value {
    body["externalId"] = json!(external_id);
    body
}

/// The AWS group ids AdminAccess is assigned to in ACCOUNT.
async fn admin_holders(moto: &Moto) -> Vec<String> {
    match moto.permission_sets().await.get("AdminAccess") {
        Some(arn) => moto.account_assignments(ACCOUNT, arn).await,
        None => Vec::new(),
    }
}

fn errors(report: &Value) -> String {
    report["errors"].to_string()
}

async fn a_rule_reaches_only_the_principals_of_its_source(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let contractor = app.token_for("contractor", None).await;
    // The contractor's IdP pushes a group with okta's externalId, and creates a group of the
    // name a name rule uses before okta does.
    let c_user = post_as(&app, &contractor, "/Users", &user("mallory@contractor.example")).await;
    post_as(
        &app,
        &contractor,
        "/Groups",
        &with_external_id(group("Contractor admins", &[&c_user]), "okta-00g-admins"),
    )
    .await;
    post_as(&app, &contractor, "/Groups", &group("AWS-Ops", &[&c_user])).await;
    let alice = app.create_user("alice@example.com").await;
    let body = with_external_id(group("AWS - Admins", &[&alice]), "okta-00g-admins");
    assert_eq!(app.post("/Groups", &body).await.status, StatusCode::CREATED);

    let rules = format!(
        "{}{}",
        admin_rule(Some("test"), "group_external_id = \"okta-00g-admins\""),
        "\n[[assignments.account]]\nsource = \"test\"\ngroup = \"AWS-Ops\"\npermission_set = \"AdminAccess\"\naccounts = [\"111111111111\"]\n"
    );
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    let groups = moto.groups().await;
    assert_eq!(admin_holders(&moto).await, vec![groups["AWS - Admins"].clone()], "{report}");
    // The name rule belongs to `test`: the contractor's "AWS-Ops" is not its group.
    assert!(errors(&report).contains("no synced group \\\"AWS-Ops\\\""), "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 1, "{report}");
}

async fn a_rule_without_source_is_refused_once_a_second_source_exists(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let alice = app.create_user("alice@example.com").await;
    let body = with_external_id(group("AWS - Admins", &[&alice]), "okta-00g-admins");
    assert_eq!(app.post("/Groups", &body).await.status, StatusCode::CREATED);
    let rules = admin_rule(None, "group_external_id = \"okta-00g-admins\"");
    // One source: the rule can only mean it.
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    let holders = admin_holders(&moto).await;
    assert_eq!(holders.len(), 1, "{report}");

    // A second IdP connects and pushes a group with the same externalId.
    let contractor = app.token_for("contractor", None).await;
    let mallory = post_as(&app, &contractor, "/Users", &user("mallory@contractor.example")).await;
    let theirs = with_external_id(group("Contractor admins", &[&mallory]), "okta-00g-admins");
    post_as(&app, &contractor, "/Groups", &theirs).await;
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 2, "a configuration error: {report}");
    let message = errors(&report);
    assert!(message.contains("assignments.account[0] names no source"), "{report}");
    assert!(message.contains("\\\"contractor\\\", \\\"test\\\""), "{report}");
    // Nothing assigned to the contractor, nothing taken from the okta group.
    assert_eq!(admin_holders(&moto).await, holders, "{report}");
    let (code, out) = check_with(&app, &format!("{}{rules}", moto.config()));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  assignments.account[0]: assignments.account[0] names no source"),
        "{out}"
    );

    // Named, the rule works again; an externalId matching two groups of the source does not.
    let rules = admin_rule(Some("test"), "group_external_id = \"okta-00g-admins\"");
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(admin_holders(&moto).await, holders);
    let twin = with_external_id(group("AWS - Admins 2", &[&alice]), "okta-00g-admins");
    assert_eq!(app.post("/Groups", &twin).await.status, StatusCode::CREATED);
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 2, "{report}");
    assert!(errors(&report).contains("matches 2 groups of source \\\"test\\\""), "{report}");
    assert_eq!(admin_holders(&moto).await, holders, "nothing removed: {report}");
    let (code, out) = check_with(&app, &format!("{}{rules}", moto.config()));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("matches 2 groups"), "{out}");
}

async fn unmanaged_aws_principals_are_taken_over_only_with_adopt_existing(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    // Made by hand in the Identity Store.
    let root = moto.create_user("root-admin@corp.example").await;
    let break_glass = moto
        .ids
        .create_group()
        .identity_store_id(&moto.identity_store_id)
        .display_name("AWS-Break-Glass-Admins")
        .send()
        .await
        .expect("CreateGroup")
        .group_id()
        .to_owned();
    let contractor = app.token_for("contractor", None).await;
    let root_scim = post_as(&app, &contractor, "/Users", &user("root-admin@corp.example")).await;
    let mallory = post_as(&app, &contractor, "/Users", &user("mallory@contractor.example")).await;
    post_as(&app, &contractor, "/Groups", &group("AWS-Break-Glass-Admins", &[&mallory])).await;

    // The dry run shows what the real run meets: errors, not plain creates.
    let (code, dry) = sync(&app, &moto, "", &["--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    let plan = dry["plan"].as_array().expect("plan");
    let names: Vec<&str> = plan.iter().filter_map(|a| a["name"].as_str()).collect();
    assert!(!names.contains(&"root-admin@corp.example"), "{dry}");
    assert!(!names.contains(&"AWS-Break-Glass-Admins"), "{dry}");
    assert!(errors(&dry).contains("adopt_existing"), "{dry}");

    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 1, "per-principal errors: {report}");
    let message = errors(&report);
    assert!(
        message.contains(&format!(
            "an AWS user with userName \\\"root-admin@corp.example\\\" already exists (id {root})"
        )),
        "{report}"
    );
    assert!(message.contains("[sources.contractor] adopt_existing = true"), "{report}");
    assert!(message.contains("AWS-Break-Glass-Admins"), "{report}");
    assert_eq!(count(&report, "adopt_user") + count(&report, "adopt_group"), 0, "{report}");
    // Left as they were: the hand-made user keeps its attributes, the group gets no member.
    let described = moto.describe_user(&root).await;
    assert_eq!(described.display_name(), Some("root-admin@corp.example"));
    assert!(moto.members(&break_glass).await.is_empty());
    // Deleting it at the IdP leaves the AWS user alone.
    let r = app
        .request_as(&contractor, Method::DELETE, &format!("/Users/{root_scim}"), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    sync(&app, &moto, "", &[]);
    assert_eq!(moto.users().await["root-admin@corp.example"], root);

    // With adopt_existing, the takeover is its own action: planned, counted and audited.
    post_as(&app, &contractor, "/Users", &user("bob@example.com")).await;
    let bob_aws = moto.create_user("bob@example.com").await;
    let adopting = "\n[sources.contractor]\nadopt_existing = true\n";
    let (code, dry) = sync(&app, &moto, adopting, &["--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    let adopt: Vec<&Value> =
        dry["plan"].as_array().unwrap().iter().filter(|a| a["action"] == "adopt").collect();
    assert_eq!(adopt.len(), 2, "{dry}");
    assert!(
        adopt.iter().any(|a| a["name"] == "bob@example.com" && a["aws_id"] == bob_aws.as_str())
    );
    assert_eq!(count(&dry, "adopt_user"), 1, "{dry}");
    assert_eq!(count(&dry, "adopt_group"), 1, "{dry}");
    let (code, report) = sync(&app, &moto, adopting, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "adopt_user"), 1, "{report}");
    assert_eq!(count(&report, "adopt_group"), 1, "{report}");
    assert_eq!(moto.users().await["bob@example.com"], bob_aws);
    assert_eq!(moto.members(&break_glass).await, ["mallory@contractor.example"]);
    let audit = audit_actions(&app).await;
    assert_eq!(audit.iter().filter(|a| a.as_str() == "adopt").count(), 2, "{audit:?}");
}

/// The action of every audit-log row.
async fn audit_actions(app: &TestApp) -> Vec<String> {
    let query = scimbridge::store::AuditQuery {
        since: chrono::DateTime::UNIX_EPOCH,
        after_seq: 0,
        limit: 1000,
    };
    app.store.list_audit(&query).await.expect("audit").into_iter().map(|e| e.action).collect()
}

/// Users u0..n of source `test`, and a group of them; their SCIM ids.
async fn team(app: &TestApp, name: &str, n: usize) -> (String, Vec<String>) {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(app.create_user(&format!("{}-{i}@example.com", name.to_lowercase())).await);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    (app.create_group(name, &refs).await, ids)
}

async fn emptying_a_group_is_refused_until_forced(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let (platform, _) = team(&app, "Platform", 12).await;
    let (_, data) = team(&app, "Data", 10).await;
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!((code, count(&report, "add_membership")), (0, 22), "{report}");
    let aws_platform = moto.groups().await["Platform"].clone();

    // A PUT without members empties the 12-member group.
    let r = app.put(&format!("/Groups/{platform}"), &group("Platform", &[])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["status"], "refused");
    let message = errors(&report);
    assert!(message.contains("remove 12 of 22 recorded group memberships"), "{report}");
    assert!(message.contains("--force"), "{report}");
    assert_eq!(moto.members(&aws_platform).await.len(), 12, "nothing removed");

    // Deactivations under remove_memberships count too.
    let off = patch_op(json!([{"op": "replace", "value": {"active": false}}]));
    for id in &data[..4] {
        app.patch(&format!("/Users/{id}"), &off).await;
    }
    let (code, report) = sync(&app, &moto, "", &["--force"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "remove_membership"), 16, "{report}");
    assert!(moto.members(&aws_platform).await.is_empty());
}

async fn removals_spaced_out_count_together_within_the_window(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let (team_id, members) = team(&app, "Team", 15).await;
    let (_, _) = team(&app, "Other", 15).await;
    sync(&app, &moto, "", &[]);
    // 30 memberships: 10% is 3. One removal per run, each within the fraction alone.
    let leave = |id: String| {
        let app = &app;
        let path = format!("/Groups/{team_id}");
        async move {
            let op = json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]);
            let r = app.patch(&path, &patch_op(op)).await;
            assert!(r.status.is_success(), "{}", r.body);
        }
    };
    for (i, id) in members[..3].iter().enumerate() {
        leave(id.clone()).await;
        let (code, report) = sync(&app, &moto, "", &[]);
        assert_eq!(code, 0, "run {i}: {report}");
    }
    leave(members[3].clone()).await;
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 3, "the fourth removal makes 4 of 30 in the window: {report}");
    assert!(errors(&report).contains("counted with the 3 that runs of the last 24h"), "{report}");
    // A forced run ends the window: the admin accepted what it removed.
    let (code, report) = sync(&app, &moto, "", &["--force"]);
    assert_eq!((code, count(&report, "remove_membership")), (0, 1), "{report}");
    leave(members[4].clone()).await;
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    // A window too short to hold the earlier runs lets the same removal through.
    leave(members[5].clone()).await;
    leave(members[6].clone()).await;
    let (code, report) = sync(&app, &moto, "\n[sync]\nguard_window = \"1ms\"\n", &[]);
    assert_eq!((code, count(&report, "remove_membership")), (0, 2), "{report}");
}

async fn one_large_group_emptied_is_refused_on_its_own(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let (big, _) = team(&app, "Big", 12).await;
    team(&app, "Rest", 12).await;
    // Half of all memberships may go at once, but not a whole group of at least 10.
    let config = "\n[sync]\nmax_delete_fraction = 0.5\nmin_principals_for_guard = 10\n";
    sync(&app, &moto, config, &[]);
    let r = app.put(&format!("/Groups/{big}"), &group("Big", &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    let (code, report) = sync(&app, &moto, config, &[]);
    assert_eq!(code, 3, "{report}");
    assert!(errors(&report).contains("remove 12 of 12 members of group \\\"Big\\\""), "{report}");
    let (code, report) = sync(&app, &moto, config, &["--force"]);
    assert_eq!((code, count(&report, "remove_membership")), (0, 12), "{report}");
}

async fn names_mean_one_thing_everywhere(b: Backend) {
    let app = spawn_app(b).await;
    assert_eq!(app.post("/Groups", &group("A-Admins", &[])).await.status, StatusCode::CREATED);
    for variant in [" A-Admins", "A-Admins\u{a0}", "a-admins\u{2003}", "\u{3000}A-ADMINS"] {
        let r = app.post("/Groups", &group(variant, &[])).await;
        r.assert_error(409, Some("uniqueness"));
    }
    // Stored in its normal form: NFC (A + combining ring is Å), trimmed.
    let r = app.post("/Users", &user(" A\u{30a}sa@example.com\t")).await;
    r.assert_error(400, Some("invalidValue"));
    let r = app.post("/Users", &user(" A\u{30a}sa@example.com\u{a0}")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["userName"], "\u{c5}sa@example.com");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app.post("/Users", &user("\u{e5}SA@example.com")).await;
    r.assert_error(409, Some("uniqueness"));
    // Found by any form of the name, by Unicode's case rules.
    let found = app
        .get(&format!("/Users?filter={}", crate::support::enc("userName eq \"ÅSA@EXAMPLE.COM \"")))
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    // Control characters in a name are refused, on PATCH too, and nothing changes.
    let bell =
        patch_op(json!([{"op": "replace", "path": "userName", "value": "x\u{7}@example.com"}]));
    app.patch(&format!("/Users/{id}"), &bell).await.assert_error(400, Some("invalidValue"));
    assert_eq!(app.get(&format!("/Users/{id}")).await.body["userName"], "\u{c5}sa@example.com");
}

async fn a_permission_set_made_by_hand_is_planned_as_adopt(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let by_hand = moto.create_permission_set("AdminAccess").await;
    let (code, dry) = sync(&app, &moto, ADMIN_ACCESS, &["--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    let plan = dry["plan"].as_array().expect("plan");
    assert!(
        plan.iter().any(|a| a["action"] == "adopt_permission_set"
            && a["name"] == "AdminAccess"
            && a["arn"] == by_hand.as_str()),
        "{dry}"
    );
    assert!(!plan.iter().any(|a| a["action"] == "create_permission_set"), "{dry}");
    let (code, report) = sync(&app, &moto, ADMIN_ACCESS, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "adopt_permission_set"), 1, "{report}");
    assert_eq!(moto.permission_sets().await["AdminAccess"], by_hand, "the same permission set");
}
