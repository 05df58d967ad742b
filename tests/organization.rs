//! Assignment rules that target the AWS organisation (`organizational_units`, `account_tags`,
//! `account_names`, `exclude_accounts`), end to end: the organisation is shaped through moto's
//! Organizations API as an admin would (units three levels deep, accounts created, tagged and
//! moved), `scimbridge sync` and `serve` (the real binary) apply the rules, and the assignments
//! are read back from the emulator's SSO Admin API.

use crate::on_both_backends;
use crate::support::binary::{BinaryApp, IdpClient};
use crate::support::moto::{Moto, SYNCING_ENV};
use crate::support::{Backend, eventually, spawn_app};
use crate::sync::{count, sync};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    a_unit_rule_reaches_the_deepest_account_and_follows_new_and_moved_accounts,
    tags_and_name_globs_select_accounts_minus_the_exclusions,
    moving_many_accounts_out_of_a_unit_is_refused_not_applied,
    an_unknown_unit_deletes_nothing_and_names_the_unit,
    serve_follows_an_account_moved_into_the_unit_on_its_own,
);

/// An `[[assignments.account]]` rule for group "Ops" and permission set "ViewOnly" with the
/// given target keys (TOML lines).
fn rule(targets: &str) -> String {
    format!(
        "\n[[assignments.account]]\ngroup = \"Ops\"\npermission_set = \"ViewOnly\"\n{targets}\n"
    )
}

/// The accounts where "Ops" holds ViewOnly, among `accounts`.
async fn assigned(moto: &Moto, view_only: &str, accounts: &[&str]) -> Vec<String> {
    let ops = moto.groups().await["Ops"].clone();
    let mut out = Vec::new();
    for account in accounts {
        if moto.account_assignments(account, view_only).await.contains(&ops) {
            out.push((*account).to_owned());
        }
    }
    out.sort();
    out
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

async fn a_unit_rule_reaches_the_deepest_account_and_follows_new_and_moved_accounts(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let root = moto.create_organization().await;
    let top = moto.create_unit(&root, "workloads").await;
    let mid = moto.create_unit(&top, "prod").await;
    let deep = moto.create_unit(&mid, "payments").await;
    let deepest = moto.create_account("payments-prod", &deep, &[]).await;
    let outside = moto.create_account("sandbox", &root, &[]).await;
    let rules = rule(&format!("organizational_units = [\"{top}\"]"));

    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(assigned(&moto, &view_only, &[&deepest, &outside]).await, vec![deepest.clone()]);
    assert!(count(&report, "create_account_assignment") == 1, "{report}");
    // One listing of accounts per root and unit: the root and three units.
    assert_eq!(report["aws_calls"]["ListAccountsForParent"], json!(4), "{report}");

    // A new account in the middle unit is assigned by the next run.
    let new = moto.create_account("ledger-prod", &mid, &[]).await;
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 1, "{report}");
    assert_eq!(
        assigned(&moto, &view_only, &[&deepest, &new, &outside]).await,
        sorted(&[&deepest, &new])
    );

    // Moved out of the tree: its assignment goes, the others stay.
    moto.move_account(&new, &mid, &root).await;
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_account_assignment"), 1, "{report}");
    assert_eq!(
        assigned(&moto, &view_only, &[&deepest, &new, &outside]).await,
        vec![deepest.clone()]
    );
}

async fn tags_and_name_globs_select_accounts_minus_the_exclusions(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let root = moto.create_organization().await;
    let unit = moto.create_unit(&root, "teams").await;
    let tagged = moto.create_account("billing", &unit, &[("env", "prod"), ("team", "pay")]).await;
    let half_tagged = moto.create_account("search", &unit, &[("env", "prod")]).await;
    let named = moto.create_account("Prod-Web", &root, &[]).await;
    let excluded =
        moto.create_account("prod-legacy", &root, &[("env", "prod"), ("team", "pay")]).await;
    let other = moto.create_account("dev-tools", &root, &[("env", "dev")]).await;
    let rules = rule(&format!(
        "account_tags = {{ env = \"prod\", team = \"pay\" }}\naccount_names = [\"prod-*\"]\n\
         exclude_accounts = [\"{excluded}\"]"
    ));
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    let all = [&tagged[..], &half_tagged, &named, &excluded, &other];
    // Both tags: billing; the glob, case-insensitively: Prod-Web; prod-legacy matches both and
    // is excluded; search lacks a tag.
    assert_eq!(assigned(&moto, &view_only, &all).await, sorted(&[&tagged, &named]));
    assert!(report["aws_calls"]["ListTagsForResource"].as_u64() >= Some(5), "{report}");
}

async fn moving_many_accounts_out_of_a_unit_is_refused_not_applied(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let root = moto.create_organization().await;
    let unit = moto.create_unit(&root, "big").await;
    let mut accounts = Vec::new();
    for i in 0..6 {
        accounts.push(moto.create_account(&format!("acct-{i}"), &unit, &[]).await);
    }
    let guard = "[sync]\nmin_principals_for_guard = 2\n";
    let rules = format!("{guard}{}", rule(&format!("organizational_units = [\"{unit}\"]")));
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    let ids: Vec<&str> = accounts.iter().map(String::as_str).collect();
    assert_eq!(assigned(&moto, &view_only, &ids).await.len(), 6);
    // A mistaken move of half the unit: 3 of 6 assignments would go.
    for account in &accounts[..3] {
        moto.move_account(account, &unit, &root).await;
    }
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["status"], "refused", "{report}");
    assert!(report["errors"].to_string().contains("3 of 6 assignments"), "{report}");
    assert_eq!(assigned(&moto, &view_only, &ids).await.len(), 6, "nothing was removed");
    // Moved back: nothing to do, nothing refused.
    for account in &accounts[..3] {
        moto.move_account(account, &root, &unit).await;
    }
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["counts"], json!({}), "{report}");
}

async fn an_unknown_unit_deletes_nothing_and_names_the_unit(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let root = moto.create_organization().await;
    let unit = moto.create_unit(&root, "prod").await;
    let account = moto.create_account("prod-a", &unit, &[]).await;
    let (code, report) =
        sync(&app, &moto, &rule(&format!("organizational_units = [\"{unit}\"]")), &[]);
    assert_eq!(code, 0, "{report}");
    // A typo in the unit id: the rule is unresolved, exit 2, and its assignment stays.
    let typo = format!("{}0", &unit[..unit.len() - 1]);
    let (code, report) =
        sync(&app, &moto, &rule(&format!("organizational_units = [\"{typo}\"]")), &[]);
    assert_eq!(code, 2, "{report}");
    let errors = report["errors"].to_string();
    assert!(errors.contains(&typo) && errors.contains("no assignment is deleted"), "{report}");
    assert_eq!(assigned(&moto, &view_only, &[&account]).await, vec![account.clone()]);
}

async fn serve_follows_an_account_moved_into_the_unit_on_its_own(b: Backend) {
    let moto = Moto::start().await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let root = moto.create_organization().await;
    let unit = moto.create_unit(&root, "prod").await;
    let config = format!(
        "{}[sync]\ndebounce_seconds = 1\norganization_poll = \"10s\"\n{}",
        moto.config(),
        rule(&format!("organizational_units = [\"{unit}\"]"))
    );
    let app = BinaryApp::start_with_env(b, &config, SYNCING_ENV).await;
    let idp =
        IdpClient::new(&app.base, app.token("okta", None), None, "application/scim+json", None);
    let r = idp.post("/Groups", &crate::support::group("Ops", &[])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let account = moto.create_account("prod-new", &root, &[]).await;
    eventually(Duration::from_secs(30), "Ops reaching AWS", || async {
        moto.groups().await.contains_key("Ops")
    })
    .await;
    // No IdP request from here on: only the organisation check can find the move.
    moto.move_account(&account, &root, &unit).await;
    eventually(Duration::from_secs(40), "the moved account's assignment", || async {
        !assigned(&moto, &view_only, &[&account]).await.is_empty()
    })
    .await;
    let admin = crate::admin::root_client(&app, app.admin_token());
    let runs = admin.get("/admin/v1/sync/runs").await;
    assert_eq!(runs.status, StatusCode::OK);
    let triggers: Vec<&Value> =
        runs.body["runs"].as_array().expect("runs").iter().map(|r| &r["trigger"]).collect();
    assert!(triggers.contains(&&json!("organization")), "a run of the check: {}", runs.body);
}
