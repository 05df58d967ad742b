//! The sync into AWS IAM Identity Center, end to end: SCIM writes to the server, `scimbridge
//! sync` (the real binary) pushes them into the moto emulator, and the Identity Store's state
//! is read back through the AWS API.

use crate::on_both_backends;
use crate::support::binary::{BinaryApp, IdpClient, command};
use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::moto::{AWS_ENV, Moto, SYNCING_ENV, aws_config_section, writes};
use crate::support::{Backend, TestApp, eventually, execute_sql, patch_op, spawn_app, user};
use aws_sdk_identitystore::types::MemberId;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_text_dry_run_says_so_and_prints_its_plan_as_a_table,
    creates_updates_renames_and_deletes,
    a_second_run_changes_nothing,
    adopts_existing_and_leaves_foreign_alone,
    deactivation_removes_memberships_and_keeps_the_user,
    delete_guard_refuses_until_forced,
    dry_run_writes_nothing,
    converges_through_throttling_and_server_errors,
    stays_under_the_rate_limit,
    a_run_killed_half_way_converges_without_duplicates,
    one_run_at_a_time,
    serve_pushes_changes_after_the_debounce,
    a_full_run_repairs_drift,
    a_full_dry_run_shows_the_drift_repair_and_the_full_run_makes_it,
    a_missing_identity_store_is_not_a_deleted_user,
    changes_overtake_a_long_run,
    filters_and_mappings_shape_what_is_synced,
    the_enterprise_manager_is_the_managers_aws_user,
    check_probes_each_permission_without_changing_anything,
    a_run_that_loses_its_lease_stops,
    swapped_names_are_renamed_in_place,
    a_create_the_process_died_in_is_recorded_not_duplicated,
    a_create_aws_takes_late_is_recorded_not_refused,
    shutdown_stops_a_running_sync_cleanly,
    a_broken_expression_is_a_configuration_error,
    a_filter_of_the_wrong_type_is_caught,
    changes_during_a_full_runs_reads_are_pushed_and_kept,
    changes_during_a_full_runs_listings_are_pushed_and_kept,
    change_runs_plan_only_the_changes_and_leave_a_full_run_nothing,
);

/// `scimbridge sync --json [extra]` against the app's database and the emulator.
pub(crate) fn sync(app: &TestApp, moto: &Moto, extra_config: &str, args: &[&str]) -> (i32, Value) {
    sync_with(app, &format!("{}{extra_config}", moto.config()), args)
}

/// The sync command with this config file, not yet started.
pub(crate) fn sync_command(
    app: &TestApp,
    config_toml: &str,
    args: &[&str],
) -> (std::process::Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("scimbridge.toml");
    std::fs::write(&config, config_toml).expect("config");
    let mut cmd = command(&app.url);
    cmd.arg("--config").arg(&config).args(["sync", "--json"]).args(args);
    for (k, v) in AWS_ENV {
        cmd.env(k, v);
    }
    (cmd, dir)
}

pub(crate) fn sync_with(app: &TestApp, config_toml: &str, args: &[&str]) -> (i32, Value) {
    let (mut cmd, _dir) = sync_command(app, config_toml, args);
    let out = cmd.output().expect("run scimbridge sync");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "sync printed no JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

pub(crate) fn count(report: &Value, key: &str) -> u64 {
    report["counts"][key].as_u64().unwrap_or(0)
}

async fn creates_updates_renames_and_deletes(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let gid = app.create_group("AWS - Admins", &[&alice, &bob]).await;

    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["status"], "succeeded");
    assert_eq!(count(&report, "create_user"), 2, "{report}");
    assert_eq!(count(&report, "create_group"), 1);
    assert_eq!(count(&report, "add_membership"), 2);
    let users = moto.users().await;
    assert_eq!(users.keys().collect::<Vec<_>>(), ["alice@example.com", "bob@example.com"]);
    let groups = moto.groups().await;
    let aws_group = groups.get("AWS - Admins").expect("group in AWS").clone();
    assert_eq!(moto.members(&aws_group).await, ["alice@example.com", "bob@example.com"]);
    let described = moto.describe_user(&users["alice@example.com"]).await;
    assert_eq!(described.display_name(), Some("Display alice@example.com"));
    assert_eq!(described.name().and_then(|n| n.given_name()), Some("Given"));
    assert_eq!(described.emails().len(), 1);

    // An update, a rename of the user and of the group, a member removed.
    let r = app
        .patch(
            &format!("/Users/{alice}"),
            &patch_op(json!([
                {"op": "replace", "path": "displayName", "value": "Alice A."},
                {"op": "replace", "path": "userName", "value": "alice.a@example.com"}
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([
                {"op": "replace", "path": "displayName", "value": "AWS - Administrators"},
                {"op": "remove", "path": format!("members[value eq \"{bob}\"]")}
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "update_user"), 1, "{report}");
    assert_eq!(count(&report, "update_group"), 1);
    assert_eq!(count(&report, "remove_membership"), 1);
    assert_eq!(
        count(&report, "create_user") + count(&report, "delete_user"),
        0,
        "renamed in place"
    );
    let users_after = moto.users().await;
    assert_eq!(users_after["alice.a@example.com"], users["alice@example.com"], "same AWS id");
    assert_eq!(
        moto.describe_user(&users_after["alice.a@example.com"]).await.display_name(),
        Some("Alice A.")
    );
    let groups_after = moto.groups().await;
    assert_eq!(groups_after["AWS - Administrators"], aws_group, "group renamed in place");
    assert_eq!(moto.members(&aws_group).await, ["alice.a@example.com"]);

    // A DELETE at the IdP deletes in AWS.
    assert_eq!(app.delete(&format!("/Users/{bob}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/Groups/{gid}")).await.status, StatusCode::NO_CONTENT);
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_user"), 1, "{report}");
    assert_eq!(count(&report, "delete_group"), 1);
    assert_eq!(moto.users().await.keys().collect::<Vec<_>>(), ["alice.a@example.com"]);
    assert!(moto.groups().await.is_empty());
}

async fn a_second_run_changes_nothing(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let a = app.create_user("a@example.com").await;
    let mut u = user("b@example.com");
    u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"department": "Sales"});
    u["photos"] = json!([{"value": "https://example.com/b.png"}]);
    let r = app.post("/Users", &u).await;
    let b_id = r.body["id"].as_str().unwrap().to_owned();
    app.create_group("Team", &[&a, &b_id]).await;
    let (code, first) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{first}");
    let described = moto.describe_user(&moto.users().await["b@example.com"]).await;
    let ext = described.extensions().and_then(|e| e.get("aws:identitystore:enterprise"));
    assert!(format!("{ext:?}").contains("Sales"), "enterprise extension pushed: {ext:?}");

    let (code, second) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(second["counts"], json!({}), "nothing to do: {second}");
    assert_eq!(second["aws_calls"], json!({}), "a no-op run makes no AWS call: {second}");
    // An enterprise attribute changes on its own path.
    let dept = patch_op(json!([{"op": "replace",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Ops"}]));
    assert_eq!(app.patch(&format!("/Users/{b_id}"), &dept).await.status, StatusCode::OK);
    let (code, changed) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{changed}");
    assert_eq!(count(&changed, "update_user"), 1, "{changed}");
    let described = moto.describe_user(&moto.users().await["b@example.com"]).await;
    let ext = described.extensions().and_then(|e| e.get("aws:identitystore:enterprise"));
    assert!(format!("{ext:?}").contains("Ops"), "enterprise change pushed: {ext:?}");
    let (code, second) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(second["counts"], json!({}), "nothing to do: {second}");
    assert_eq!(second["aws_calls"], json!({}), "a no-op run makes no AWS call: {second}");
    let (code, full) = sync(&app, &moto, "", &["--full"]);
    assert_eq!(code, 0, "{full}");
    assert_eq!(full["counts"], json!({}), "{full}");
    assert_eq!(writes(&full), 0, "a no-op full run only reads: {full}");
    assert!(full["aws_calls"]["ListUsers"].as_u64().unwrap() >= 1, "{full}");
}

async fn adopts_existing_and_leaves_foreign_alone(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let existing = moto.create_user("existing@example.com").await;
    let foreign = moto.create_user("foreign@example.com").await;
    let foreign_group = moto
        .ids
        .create_group()
        .identity_store_id(&moto.identity_store_id)
        .display_name("Manual group")
        .send()
        .await
        .expect("CreateGroup")
        .group_id()
        .to_owned();

    let scim_id = app.create_user("existing@example.com").await;
    // Adoption is opt-in per source (tests/source_trust.rs has it off).
    let adopting = "\n[sources.test]\nadopt_existing = true\n";
    let (code, report) = sync(&app, &moto, adopting, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "adopt_user"), 1, "{report}");
    assert_eq!(moto.users().await["existing@example.com"], existing, "adopted, not duplicated");
    assert_eq!(moto.users().await.len(), 2);

    // Deleting it at the IdP deletes the adopted user; the foreign ones are never touched.
    app.delete(&format!("/Users/{scim_id}")).await;
    let (code, report) = sync(&app, &moto, adopting, &[]);
    assert_eq!(code, 0, "{report}");
    let users = moto.users().await;
    assert_eq!(users.keys().collect::<Vec<_>>(), ["foreign@example.com"]);
    assert_eq!(users["foreign@example.com"], foreign);
    assert_eq!(moto.groups().await["Manual group"], foreign_group);
}

async fn deactivation_removes_memberships_and_keeps_the_user(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let a = app.create_user("a@example.com").await;
    app.create_group("Team", &[&a]).await;
    sync(&app, &moto, "", &[]);
    let aws_user = moto.users().await["a@example.com"].clone();
    let team = moto.groups().await["Team"].clone();
    assert_eq!(moto.members(&team).await, ["a@example.com"]);

    let off = patch_op(json!([{"op": "replace", "value": {"active": false}}]));
    app.patch(&format!("/Users/{a}"), &off).await;
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert!(moto.members(&team).await.is_empty(), "suspended: out of every group");
    assert_eq!(moto.users().await["a@example.com"], aws_user, "the AWS user and its id survive");

    let on = patch_op(json!([{"op": "replace", "value": {"active": true}}]));
    app.patch(&format!("/Users/{a}"), &on).await;
    sync(&app, &moto, "", &[]);
    assert_eq!(moto.members(&team).await, ["a@example.com"], "reactivation restores access");
}

async fn delete_guard_refuses_until_forced(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(app.create_user(&format!("user{i}@example.com")).await);
    }
    let (code, _) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0);
    for id in &ids[..5] {
        app.delete(&format!("/Users/{id}")).await;
    }
    // 5 of 20 is 25% > the default 10%.
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["status"], "refused");
    assert_eq!(moto.users().await.len(), 20, "nothing deleted");
    assert_eq!(writes(&report), 0, "{report}");
    let (code, report) = sync(&app, &moto, "", &["--dry-run"]);
    assert_eq!(code, 3, "a dry run that would trip the guard exits 3 too: {report}");

    let (code, report) = sync(&app, &moto, "", &["--force"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_user"), 5);
    assert_eq!(moto.users().await.len(), 15);
}

async fn dry_run_writes_nothing(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let a = app.create_user("a@example.com").await;
    app.create_group("Team", &[&a]).await;
    let (code, report) = sync(&app, &moto, "", &["--dry-run"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["dry_run"], true);
    let plan = report["plan"].as_array().expect("a dry run lists its plan");
    let actions: Vec<&str> = plan.iter().filter_map(|p| p["action"].as_str()).collect();
    assert_eq!(actions, ["create", "create", "add_member"], "{report}");
    assert_eq!(writes(&report), 0);
    assert!(moto.users().await.is_empty());
    // The real run then does exactly that.
    let (_, report) = sync(&app, &moto, "", &[]);
    assert_eq!(
        count(&report, "create_user")
            + count(&report, "create_group")
            + count(&report, "add_membership"),
        3
    );
}

/// Users u0..u{n} in groups G0 (even) and G1 (odd); returns the userNames.
async fn population(app: &TestApp, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    let (mut even, mut odd) = (Vec::new(), Vec::new());
    for i in 0..n {
        let name = format!("u{i}@example.com");
        let id = app.create_user(&name).await;
        if i % 2 == 0 {
            even.push(id)
        } else {
            odd.push(id)
        }
        names.push(name);
    }
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    app.create_group("G0", &refs(&even)).await;
    app.create_group("G1", &refs(&odd)).await;
    names
}

/// The Identity Store holds exactly the population: every user once, each group with its
/// members once.
async fn assert_population(moto: &Moto, names: &[String]) {
    let users = moto.users().await;
    let mut want: Vec<&String> = names.iter().collect();
    want.sort();
    assert_eq!(users.keys().collect::<Vec<_>>(), want);
    let groups = moto.groups().await;
    for (g, parity) in [("G0", 0), ("G1", 1)] {
        let mut expected: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, n)| n.clone())
            .collect();
        expected.sort();
        assert_eq!(moto.members(&groups[g]).await, expected, "members of {g}, each once");
    }
}

async fn converges_through_throttling_and_server_errors(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let names = population(&app, 12).await;
    // The bridge may send 200/s; the proxy throttles above 20/s and fails every 9th request.
    let faults =
        Faults { throttle_above_per_second: Some(20), fail_every: Some(9), ..Faults::default() };
    let proxy = FaultProxy::start(&moto.endpoint, faults).await;
    let (code, report) = sync_with(&app, &aws_config_section(&proxy.endpoint, 200), &[]);
    assert_eq!(code, 0, "{report}");
    let stats = proxy.stats();
    assert!(stats.throttled > 0 && stats.failed > 0, "faults were injected: {stats:?}");
    assert!(report["throttles"].as_u64().unwrap() > 0, "{report}");
    assert_population(&moto, &names).await;
    // Bounded: every fault costs one retry, nothing more.
    let calls: u64 =
        report["aws_calls"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    // Each attempt is counted; the one call before the run discovers the identity store.
    assert_eq!(calls + 1, stats.requests, "each attempt is counted: {report}");
    assert!(calls <= (stats.requests - stats.throttled - stats.failed) * 2 + 20, "{report}");
}

async fn stays_under_the_rate_limit(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let names = population(&app, 16).await;
    // The proxy throttles above 22/s; the bridge is set to 20/s and must never be throttled.
    let faults = Faults { throttle_above_per_second: Some(22), ..Faults::default() };
    let proxy = FaultProxy::start(&moto.endpoint, faults).await;
    let (code, report) = sync_with(&app, &aws_config_section(&proxy.endpoint, 20), &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(proxy.stats().throttled, 0, "{report}");
    assert_eq!(report["throttles"], 0);
    assert_population(&moto, &names).await;
}

async fn a_run_killed_half_way_converges_without_duplicates(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let names = population(&app, 30).await;
    let faults = Faults { latency: std::time::Duration::from_millis(20), ..Faults::default() };
    let proxy = FaultProxy::start(&moto.endpoint, faults).await;
    let config = aws_config_section(&proxy.endpoint, 1000);
    let (mut cmd, _dir) = sync_command(&app, &config, &[]);
    let mut child = cmd.stdout(std::process::Stdio::null()).spawn().expect("start sync");
    // Half-way through the creates: kill -9.
    eventually(std::time::Duration::from_secs(60), "the run getting going", || async {
        proxy.stats().requests >= 25
    })
    .await;
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the run was killed, not finished");
    assert!(moto.users().await.len() < names.len(), "killed before it finished");

    proxy.set(Faults::default());
    // A full run re-reads what the killed run wrote before it could record it.
    let (code, report) = sync_with(&app, &config, &["--full"]);
    assert_eq!(code, 0, "{report}");
    assert_population(&moto, &names).await;
    let (_, again) = sync_with(&app, &config, &[]);
    assert_eq!(again["counts"], json!({}), "converged: {again}");
}

async fn one_run_at_a_time(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_user("a@example.com").await;
    // Another replica's run holds the lease.
    let other = uuid::Uuid::now_v7();
    assert!(app.store.acquire_sync_lease(other, 60).await.unwrap());
    let (mut cmd, _dir) = sync_command(&app, &moto.config(), &["--wait", "1"]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(moto.users().await.is_empty(), "no AWS write while another run holds the lease");
    // Once it is released (or expires), the run goes ahead.
    app.store.release_sync_lease(other).await.unwrap();
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(moto.users().await.len(), 1);
}

async fn serve_pushes_changes_after_the_debounce(b: Backend) {
    let moto = Moto::start().await;
    let config = format!("{}[sync]\ndebounce_seconds = 1\n", moto.config());
    let app = BinaryApp::start_with_env(b, &config, SYNCING_ENV).await;
    let idp =
        IdpClient::new(&app.base, app.token("okta", None), None, "application/scim+json", None);
    let r = idp.post("/Users", &user("pushed@example.com")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let created = std::time::Instant::now();
    eventually(std::time::Duration::from_secs(20), "the change reaching AWS", || async {
        moto.users().await.contains_key("pushed@example.com")
    })
    .await;
    // debounce (1 s) + the scheduler's tick and the run itself; the benchmark measures it.
    assert!(created.elapsed() < std::time::Duration::from_secs(10), "{:?}", created.elapsed());
}

async fn a_full_run_repairs_drift(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let a = app.create_user("a@example.com").await;
    let b_id = app.create_user("b@example.com").await;
    app.create_group("Team", &[&a, &b_id]).await;
    sync(&app, &moto, "", &[]);
    // Someone deletes a user and removes a membership by hand in AWS.
    let users = moto.users().await;
    moto.ids
        .delete_user()
        .identity_store_id(&moto.identity_store_id)
        .user_id(&users["b@example.com"])
        .send()
        .await
        .unwrap();
    let team = moto.groups().await["Team"].clone();
    let memberships = moto
        .ids
        .list_group_memberships()
        .identity_store_id(&moto.identity_store_id)
        .group_id(&team)
        .send()
        .await
        .unwrap();
    for m in memberships.group_memberships() {
        moto.ids
            .delete_group_membership()
            .identity_store_id(&moto.identity_store_id)
            .membership_id(m.membership_id())
            .send()
            .await
            .unwrap();
    }
    // A run without --full trusts its record; a full run sees the drift and repairs it.
    let (code, report) = sync(&app, &moto, "", &["--full"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "drift_recreated"), 1, "{report}");
    assert_eq!(count(&report, "create_user"), 1, "{report}");
    assert_eq!(moto.members(&team).await, ["a@example.com", "b@example.com"]);
    assert_eq!(moto.users().await["a@example.com"], users["a@example.com"], "a kept its id");
}

/// A user deleted by hand and a foreign membership added by hand in a managed group: a full
/// dry run shows the re-create and the removal and writes nothing (its drift repair is laid
/// over the record its plan reads); the full run then makes them.
async fn a_full_dry_run_shows_the_drift_repair_and_the_full_run_makes_it(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let a = app.create_user("a@example.com").await;
    let b_id = app.create_user("b@example.com").await;
    app.create_user("c@example.com").await;
    app.create_group("Team", &[&a, &b_id]).await;
    assert_eq!(sync(&app, &moto, "", &[]).0, 0);
    let (users, team) = (moto.users().await, moto.groups().await["Team"].clone());
    let (client, store) = (&moto.ids, &moto.identity_store_id);
    // b is deleted by hand (AWS drops its memberships with it; moto needs telling).
    let listed = client
        .list_group_memberships()
        .identity_store_id(store)
        .group_id(&team)
        .send()
        .await
        .unwrap();
    for m in listed.group_memberships() {
        if m.member_id() == Some(&MemberId::UserId(users["b@example.com"].clone())) {
            let id = m.membership_id();
            let gone = client.delete_group_membership().identity_store_id(store).membership_id(id);
            gone.send().await.unwrap();
        }
    }
    let user = client.delete_user().identity_store_id(store).user_id(&users["b@example.com"]);
    user.send().await.unwrap();
    // c, managed but not in Team at the IdP, is added to Team by hand.
    client
        .create_group_membership()
        .identity_store_id(store)
        .group_id(&team)
        .member_id(MemberId::UserId(users["c@example.com"].clone()))
        .send()
        .await
        .unwrap();

    for _ in 0..2 {
        let (code, dry) = sync(&app, &moto, "", &["--full", "--dry-run"]);
        assert_eq!(code, 0, "{dry}");
        assert_eq!(count(&dry, "drift_recreated"), 1, "{dry}");
        let plan: Vec<(&str, &str, &str)> = dry["plan"]
            .as_array()
            .expect("a dry run lists its plan")
            .iter()
            .map(|a| {
                let field = |k: &str| a[k].as_str().unwrap_or("");
                (field("action"), field("name"), field("user"))
            })
            .collect();
        assert!(plan.contains(&("create", "b@example.com", "")), "{dry}");
        assert!(plan.contains(&("add_member", "", "b@example.com")), "{dry}");
        assert!(plan.contains(&("remove_member", "", "c@example.com")), "{dry}");
        assert_eq!(plan.len(), 3, "{dry}");
        assert_eq!(writes(&dry), 0, "{dry}");
        // Nothing written: the second dry run finds the same drift.
        assert!(!moto.users().await.contains_key("b@example.com"));
        assert_eq!(moto.members(&team).await, ["a@example.com", "c@example.com"]);
    }

    let (code, report) = sync(&app, &moto, "", &["--full"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "drift_recreated"), 1, "{report}");
    assert_eq!(count(&report, "create_user"), 1, "{report}");
    assert_eq!(count(&report, "add_membership"), 1, "{report}");
    assert_eq!(count(&report, "remove_membership"), 1, "{report}");
    assert_eq!(moto.members(&team).await, ["a@example.com", "b@example.com"]);
    assert_eq!(moto.users().await["c@example.com"], users["c@example.com"], "c kept its id");
    let (code, again) = sync(&app, &moto, "", &["--full"]);
    assert_eq!((code, &again["counts"]), (0, &json!({})), "repaired: {again}");
}

async fn a_missing_identity_store_is_not_a_deleted_user(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let a = app.create_user("a@example.com").await;
    let proxy = FaultProxy::start(&moto.endpoint, Faults::default()).await;
    let config = aws_config_section(&proxy.endpoint, 1000);
    assert_eq!(sync_with(&app, &config, &[]).0, 0);
    app.delete(&format!("/Users/{a}")).await;
    // The store answers as if it did not exist (a wrong identity_store_id, say).
    let missing = json!({"__type": "ResourceNotFoundException", "Message": "IDENTITY_STORE not found",
                         "ResourceType": "IDENTITY_STORE"});
    proxy.set(Faults { answer: Some(("DeleteUser", missing)), ..Faults::default() });
    let (code, report) = sync_with(&app, &config, &[]);
    assert_eq!(code, 2, "a configuration error: {report}");
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(moto.users().await.len(), 1, "nothing was deleted");
    // The record was kept: once the store answers again, the delete happens.
    proxy.set(Faults::default());
    let (code, report) = sync_with(&app, &config, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_user"), 1, "{report}");
    assert!(moto.users().await.is_empty());
}

/// Waits until `done` holds, failing after `limit`, and says whether the run `child` was still
/// going at that moment.
async fn still_running_when<F, Fut>(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
    mut done: F,
) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "{what} never happened");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child.try_wait().expect("poll the run").is_none()
}

/// A change made while a long run (the initial sync of many users) is applying reaches AWS
/// before the run ends: the run re-plans and pushes it first.
async fn changes_overtake_a_long_run(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let names = population(&app, 60).await;
    let proxy = FaultProxy::start(&moto.endpoint, faults_with_latency(150)).await;
    let config =
        format!("{}[sync]\ndebounce_seconds = 1\n", aws_config_section(&proxy.endpoint, 1000));
    let (mut cmd, dir) = sync_command(&app, &config, &[]);
    let out = dir.path().join("report.json");
    let mut child =
        cmd.stdout(std::fs::File::create(&out).expect("report file")).spawn().expect("start sync");
    eventually(std::time::Duration::from_secs(60), "the run getting going", || async {
        proxy.stats().requests >= 5
    })
    .await;
    // The last user (created last in plan order) joins a new group.
    let last = app.create_user("late@example.com").await;
    app.create_group("Urgent", &[&last]).await;
    let pushed_while_running = still_running_when(
        &mut child,
        std::time::Duration::from_secs(60),
        "the urgent membership reaching AWS",
        || async {
            let groups = moto.groups().await;
            match groups.get("Urgent") {
                Some(g) => moto.members(g).await == ["late@example.com"],
                None => false,
            }
        },
    )
    .await;
    assert!(pushed_while_running, "the change waited for the whole run");
    let status = child.wait().expect("wait");
    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(status.success(), "{report}");
    let mut all = names.clone();
    all.push("late@example.com".into());
    all.sort();
    assert_eq!(moto.users().await.into_keys().collect::<Vec<_>>(), all, "each user once");
    let (_, again) = sync_with(&app, &config, &[]);
    assert_eq!(again["counts"], json!({}), "converged: {again}");
}

/// A membership added while a full run is still listing the Identity Store reaches AWS during
/// the listing, and the run's drift repair keeps it (its listing of that group may predate it).
async fn changes_during_a_full_runs_reads_are_pushed_and_kept(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let a = app.create_user("a@example.com").await;
    let newcomer = app.create_user("newcomer@example.com").await;
    let mut groups = Vec::new();
    for i in 0..30 {
        groups.push(app.create_group(&format!("Team {i:02}"), &[&a]).await);
    }
    let proxy = FaultProxy::start(&moto.endpoint, Faults::default()).await;
    let config =
        format!("{}[sync]\ndebounce_seconds = 1\n", aws_config_section(&proxy.endpoint, 1000));
    assert_eq!(sync_with(&app, &config, &[]).0, 0);
    proxy.set(faults_with_latency(300));
    let (mut cmd, dir) = sync_command(&app, &config, &["--full"]);
    let out = dir.path().join("report.json");
    let before = proxy.stats().requests;
    let mut child =
        cmd.stdout(std::fs::File::create(&out).expect("report file")).spawn().expect("start sync");
    // Into the membership listings (after ListUsers and ListGroups).
    eventually(std::time::Duration::from_secs(60), "the run's listings", || async {
        proxy.stats().requests >= before + 5
    })
    .await;
    // Team 00 was listed already: its listing lacks the newcomer.
    let r = app
        .patch(
            &format!("/Groups/{}", groups[0]),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": newcomer}]}])),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let team = moto.groups().await["Team 00"].clone();
    let pushed_while_running = still_running_when(
        &mut child,
        std::time::Duration::from_secs(60),
        "the membership reaching AWS",
        || async { moto.members(&team).await.len() == 2 },
    )
    .await;
    assert!(pushed_while_running, "the change waited for the full run's reads");
    let status = child.wait().expect("wait");
    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(status.success(), "{report}");
    assert_eq!(moto.members(&team).await, ["a@example.com", "newcomer@example.com"]);
    proxy.set(Faults::default());
    let (_, again) = sync_with(&app, &config, &["--full"]);
    assert_eq!(again["counts"], json!({}), "the drift repair kept the membership: {again}");
    assert_eq!(moto.members(&team).await, ["a@example.com", "newcomer@example.com"]);
}

/// A change made while a full run is still listing the Identity Store (minutes at 100,000
/// users) reaches AWS during the listing, and the user the push created, which the listing of
/// users predates, is not taken for a user deleted outside the bridge.
async fn changes_during_a_full_runs_listings_are_pushed_and_kept(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let a = app.create_user("a@example.com").await;
    let team = app.create_group("Team", &[&a]).await;
    // Groups made by hand: ListGroups reads 30 pages of 100.
    moto.seed_groups("Made by hand", 3_000).await;
    let proxy = FaultProxy::start(&moto.endpoint, Faults::default()).await;
    let config =
        format!("{}[sync]\ndebounce_seconds = 1\n", aws_config_section(&proxy.endpoint, 1000));
    assert_eq!(sync_with(&app, &config, &[]).0, 0);
    proxy.set(faults_with_latency(300));
    let list_calls = || proxy.stats().by_operation.get("ListGroups").copied().unwrap_or(0);
    let before = list_calls();
    let (mut cmd, dir) = sync_command(&app, &config, &["--full"]);
    let out = dir.path().join("report.json");
    let mut child =
        cmd.stdout(std::fs::File::create(&out).expect("report file")).spawn().expect("start sync");
    let listing = || async { list_calls() >= before + 2 };
    eventually(std::time::Duration::from_secs(60), "the run listing the groups", listing).await;
    // A user the listing of users cannot have seen, in the team.
    let late = app.create_user("late@example.com").await;
    let r = app
        .patch(
            &format!("/Groups/{team}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": late}]}])),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let team_id = moto.groups().await["Team"].clone();
    eventually(std::time::Duration::from_secs(60), "the membership reaching AWS", || async {
        moto.members(&team_id).await.len() == 2
    })
    .await;
    // 3,001 groups are 31 pages: the listing was still going.
    let listed = list_calls() - before;
    assert!(listed < 31, "the change waited for the listing of the groups ({listed} pages)");
    let status = child.wait().expect("wait");
    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(status.success(), "{report}");
    assert!(report["counts"].get("drift_recreated").is_none(), "{report}");
    assert_eq!(moto.members(&team_id).await, ["a@example.com", "late@example.com"]);
    proxy.set(Faults::default());
    let (_, again) = sync_with(&app, &config, &["--full"]);
    assert_eq!(again["counts"], json!({}), "nothing left to repair: {again}");
    let users: Vec<String> = moto.users().await.into_keys().collect();
    assert_eq!(users, ["a@example.com", "late@example.com"], "each user once");
}

fn faults_with_latency(ms: u64) -> Faults {
    Faults { latency: std::time::Duration::from_millis(ms), ..Faults::default() }
}

const RULES: &str = r#"
[sync.filter]
users = 'user.userName.endsWith("@example.com")'
groups = 'group.displayName.startsWith("AWS - ")'

[mapping]
drop_user_attributes = ["emails"]

[mapping.user_set]
displayName = 'user.name.familyName + ", " + user.name.givenName'
nickName = 'user.userName.split("@")[0]'
"#;

/// `[sync.filter]` chooses what is synced (and a group renamed out of it is deleted);
/// `[mapping]` drops and sets user attributes from CEL expressions.
async fn filters_and_mappings_shape_what_is_synced(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let a = app.create_user("a@example.com").await;
    let outsider = app.create_user("o@other.example").await;
    app.create_group("AWS - Admins", &[&a, &outsider]).await;
    let staff = app.create_group("AWS - Staff", &[&a]).await;
    app.create_group("Everyone", &[&a]).await;
    let (code, report) = sync(&app, &moto, RULES, &[]);
    assert_eq!(code, 0, "{report}");
    let users = moto.users().await;
    assert_eq!(users.keys().collect::<Vec<_>>(), ["a@example.com"], "the filter chose: {report}");
    let groups = moto.groups().await;
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["AWS - Admins", "AWS - Staff"]);
    assert_eq!(moto.members(&groups["AWS - Admins"]).await, ["a@example.com"]);
    let described = moto.describe_user(&users["a@example.com"]).await;
    assert_eq!(described.display_name(), Some("Family, Given"));
    assert_eq!(described.nick_name(), Some("a"));
    assert!(described.emails().is_empty(), "emails dropped: {described:?}");

    // Renamed out of the filter: deleted from AWS, with the reason in the report.
    let r = app
        .patch(
            &format!("/Groups/{staff}"),
            &patch_op(json!([{"op": "replace", "path": "displayName", "value": "Staff"}])),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let (code, report) = sync(&app, &moto, RULES, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "delete_group"), 1, "{report}");
    assert_eq!(moto.groups().await.keys().collect::<Vec<_>>(), ["AWS - Admins"]);
    let audit = app.store.list_audit(&scimbridge::store::AuditQuery {
        since: chrono::DateTime::UNIX_EPOCH,
        after_seq: 0,
        limit: 100,
    });
    let deleted = audit.await.unwrap().into_iter().find(|e| e.action == "delete").expect("audited");
    assert_eq!(deleted.name, "AWS - Staff");
    assert_eq!(deleted.detail.unwrap()["reason"], "no longer selected by sync.filter");
}

async fn a_broken_expression_is_a_configuration_error(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_user("a@example.com").await;
    let config =
        format!("{}[mapping.user_set]\ndisplayName = 'user.name.familyName +'\n", moto.config());
    let (mut cmd, _dir) = sync_command(&app, &config, &[]);
    let out = cmd.output().expect("run sync");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mapping.user_set.displayName"), "{stderr}");
    assert!(moto.users().await.is_empty(), "nothing was synced");
}

/// A `[sync.filter]` that does not give true or false (issue 14): refused at load by `serve`
/// and `sync` (exit 2, naming the key) and reported by `check`; one that does so only for some
/// users' data makes the run partial (exit 2) with those users named, never a quiet success.
async fn a_filter_of_the_wrong_type_is_caught(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_user("a@example.com").await;
    app.create_user("odd@example.com").await;
    let wrong = format!(
        "{}[sync.filter]
groups = 'group.displayName'
",
        moto.config()
    );
    let (code, stdout) = check_with(&app, &wrong);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("FAIL  config: sync.filter.groups: must give true")),
        "{stdout}"
    );
    let (mut cmd, _dir) = sync_command(&app, &wrong, &[]);
    let out = cmd.output().expect("run sync");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sync.filter.groups") && stderr.contains("a string"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, &wrong).unwrap();
    let serve = command(&app.url)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("run serve");
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert_eq!(serve.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sync.filter.groups"), "{stderr}");

    // A string for one user only: the samples pass, the run does not succeed.
    let odd = format!(
        r#"{}[sync.filter]
users = 'user.userName == "odd@example.com" ? "yes" : true'
"#,
        moto.config()
    );
    let (code, report) = sync_with(&app, &odd, &[]);
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["status"], "partial", "{report}");
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["principal"] == "odd@example.com"
            && e["message"].as_str().unwrap().contains("sync.filter.users")),
        "{report}"
    );
    assert_eq!(moto.users().await.keys().collect::<Vec<_>>(), ["a@example.com"]);
    let (code, stdout) = check_with(&app, &odd);
    assert!(
        stdout.lines().any(|l| l.starts_with("FAIL  odd@example.com: sync.filter.users")),
        "{stdout}"
    );
    assert_ne!(code, 0, "{stdout}");
}

/// The SCIM enterprise `manager` names a SCIM user; AWS gets that user's AWS id — also when
/// the manager is created in the same run (the run's closing pass), and a second run is a no-op.
async fn the_enterprise_manager_is_the_managers_aws_user(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let boss = app.create_user("boss@example.com").await;
    let mut u = user("emp@example.com");
    u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"department": "Ops", "manager": {"value": boss}});
    let r = app.post("/Users", &u).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    let users = moto.users().await;
    let described = moto.describe_user(&users["emp@example.com"]).await;
    let ext = described.extensions().and_then(|e| e.get("aws:identitystore:enterprise"));
    let ext = format!("{ext:?}");
    assert!(ext.contains(&users["boss@example.com"]), "manager's AWS id: {ext}");
    assert!(!ext.contains(&boss), "never the SCIM id: {ext}");
    let (_, again) = sync(&app, &moto, "", &[]);
    assert_eq!(again["counts"], json!({}), "{again}");
}

/// `scimbridge check` with this config: (exit code, stdout).
pub(crate) fn check_with(app: &TestApp, config_toml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("scimbridge.toml");
    std::fs::write(&config, config_toml).expect("config");
    let mut cmd = command(&app.url);
    cmd.arg("--config").arg(&config).arg("check");
    for (k, v) in AWS_ENV {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run scimbridge check");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn check_probes_each_permission_without_changing_anything(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let proxy = FaultProxy::start(&moto.endpoint, Faults::default()).await;
    let config = aws_config_section(&proxy.endpoint, 1000);
    let (code, out) = check_with(&app, &config);
    assert_eq!(code, 0, "{out}");
    for line in [
        "ok    database:",
        "ok    aws: identity store",
        "ok    identitystore:DeleteUser",
        "ok    identitystore:CreateGroupMembership",
        "ok    identitystore:ListGroupMemberships",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    assert!(!out.contains("FAIL"), "{out}");
    // A role without identitystore:DeleteUser: that line fails, naming the permission.
    let denied = json!({"__type": "AccessDeniedException",
        "Message": "User is not authorized to perform: identitystore:DeleteUser"});
    proxy.set(Faults { answer: Some(("DeleteUser", denied)), ..Faults::default() });
    let (code, out) = check_with(&app, &config);
    assert_eq!(code, 1, "{out}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(failed[0].contains("identitystore:DeleteUser"), "{out}");
    // Nothing was created or changed by the probes.
    assert!(moto.users().await.is_empty() && moto.groups().await.is_empty());
    // No Region at all: a failed check, not a crash.
    let (code, out) = check_with(&app, "");
    assert_eq!(code, 1, "{out}");
}

/// Two runs must never write at once: a run whose lease another took stops at its next
/// renewal, is recorded as failed, and a later run converges. The lease is shortened to 6 s
/// (`[sync] lease_seconds`), so the renewal comes within 2 s and a few users outlast it.
async fn a_run_that_loses_its_lease_stops(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let names = population(&app, 60).await;
    let proxy = FaultProxy::start(&moto.endpoint, faults_with_latency(150)).await;
    let config =
        format!("{}[sync]\nlease_seconds = 6\n", aws_config_section(&proxy.endpoint, 1000));
    let (mut cmd, dir) = sync_command(&app, &config, &[]);
    let out = dir.path().join("report.json");
    let mut child = cmd
        .stdout(std::fs::File::create(&out).expect("report file"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sync");
    eventually(std::time::Duration::from_secs(60), "the run getting going", || async {
        proxy.stats().requests >= 5
    })
    .await;
    // Another replica takes the lease, as it would once this one stalled past its expiry.
    execute_sql(&app.url, format!("UPDATE sync_lease SET holder = '{}'", uuid::Uuid::now_v7()))
        .await;
    // The renewal comes within a third of the 6 s lease.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "the run went on");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lease was lost"), "{stderr}");
    assert!(moto.users().await.len() < names.len(), "stopped before it finished");
    let runs = app.store.list_runs(5).await.unwrap();
    assert_eq!(runs[0].status, "failed", "recorded: {:?}", runs[0].report);
    // Once the other holder is gone, a run picks up where the stopped one left off.
    execute_sql(&app.url, "DELETE FROM sync_lease".into()).await;
    proxy.set(Faults::default());
    let (code, report) = sync_with(&app, &config, &["--full"]);
    assert_eq!(code, 0, "{report}");
    assert_population(&moto, &names).await;
}

async fn rename(app: &TestApp, id: &str, user_name: &str) {
    let op = patch_op(json!([{"op": "replace", "path": "userName", "value": user_name}]));
    let r = app.patch(&format!("/Users/{id}"), &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Two users swap userNames at the IdP: each AWS user is renamed in place (one steps aside
/// under a temporary name meanwhile), ids kept, nothing left under a temporary name. A name a
/// foreign AWS user holds is not taken, and the managed user keeps its own name.
async fn swapped_names_are_renamed_in_place(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    assert_eq!(sync(&app, &moto, "", &[]).0, 0);
    let before = moto.users().await;
    rename(&app, &alice, "swap@example.com").await;
    rename(&app, &bob, "alice@example.com").await;
    rename(&app, &alice, "bob@example.com").await;
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "update_user"), 2, "{report}");
    let after = moto.users().await;
    assert_eq!(after.keys().collect::<Vec<_>>(), ["alice@example.com", "bob@example.com"]);
    assert_eq!(after["bob@example.com"], before["alice@example.com"], "renamed in place");
    assert_eq!(after["alice@example.com"], before["bob@example.com"], "renamed in place");
    let query = scimbridge::store::AuditQuery {
        since: chrono::DateTime::UNIX_EPOCH,
        after_seq: 0,
        limit: 100,
    };
    let audit = app.store.list_audit(&query).await.unwrap();
    assert!(
        audit.iter().any(|e| e.detail.as_ref().is_some_and(|d| d.get("temporary_name").is_some())),
        "one stepped aside under a temporary name: {audit:?}"
    );
    let (_, again) = sync(&app, &moto, "", &[]);
    assert_eq!(again["counts"], json!({}), "{again}");

    // carol is an AWS user the bridge does not manage: her name is not freed, and the user
    // renamed to it (now "alice@example.com" in AWS) keeps its name.
    moto.create_user("carol@example.com").await;
    rename(&app, &bob, "carol@example.com").await;
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 1, "the rename failed: {report}");
    let now = moto.users().await;
    assert_eq!(now["alice@example.com"], before["bob@example.com"], "kept its name: {now:?}");
    assert!(!now.keys().any(|n| n.starts_with("scimbridge-")), "no temporary name left: {now:?}");
}

/// The process died after AWS created a user and before the bridge recorded it, and the IdP
/// renamed the user meanwhile: the next run finds it by the name it was sent with, records it
/// as created, and renames it — no second AWS user, no orphan.
async fn a_create_the_process_died_in_is_recorded_not_duplicated(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let id = app.create_user("first@example.com").await;
    // What the dead run left: AWS made the user; the bridge holds only the pending create.
    let aws_id = moto.create_user("first@example.com").await;
    let pending = scimbridge::store::PendingCreate {
        kind: scim_schema::schema::ResourceKind::User,
        resource_id: uuid::Uuid::parse_str(&id).unwrap(),
        name: "first@example.com".into(),
    };
    app.store.put_pending_create(&pending).await.unwrap();
    rename(&app, &id, "renamed@example.com").await;
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    let users = moto.users().await;
    assert_eq!(users.keys().collect::<Vec<_>>(), ["renamed@example.com"], "{report}");
    assert_eq!(users["renamed@example.com"], aws_id, "the same AWS user");
    let state = app.store.sync_state().await.unwrap();
    assert_eq!(state.principals[0].ownership, scimbridge::store::Ownership::Created);
    assert!(app.store.pending_creates().await.unwrap().is_empty());
    let (_, again) = sync(&app, &moto, "", &[]);
    assert_eq!(again["counts"], json!({}), "{again}");
}

/// A dead run's CreateUser that AWS took only after the next run had looked the name up (a
/// request AWS processes after its sender gave up): the next run's create meets the user. It is
/// the bridge's own create landing late, so it is recorded as created, not refused as a
/// hand-made principal (the source may not adopt).
async fn a_create_aws_takes_late_is_recorded_not_refused(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let id = app.create_user("late@example.com").await;
    let pending = scimbridge::store::PendingCreate {
        kind: scim_schema::schema::ResourceKind::User,
        resource_id: uuid::Uuid::parse_str(&id).unwrap(),
        name: "late@example.com".into(),
    };
    app.store.put_pending_create(&pending).await.unwrap();
    let aws_id = moto.create_user("late@example.com").await;
    // The run's first look-up finds nothing (the create had not landed yet); its CreateUser
    // then meets the user.
    let not_yet = json!({"__type": "ResourceNotFoundException", "Message": "USER not found",
                         "ResourceType": "USER"});
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Faults { answer: Some(("GetUserId", not_yet)), answer_times: Some(1), ..Faults::default() },
    )
    .await;
    let config = aws_config_section(&proxy.endpoint, 1000);
    let (code, report) = sync_with(&app, &config, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(moto.users().await["late@example.com"], aws_id, "the same AWS user");
    let state = app.store.sync_state().await.unwrap();
    assert_eq!(state.principals.len(), 1, "{report}");
    assert_eq!(state.principals[0].aws_id, aws_id);
    assert_eq!(state.principals[0].ownership, scimbridge::store::Ownership::Created);
    assert!(app.store.pending_creates().await.unwrap().is_empty());
    let (_, again) = sync_with(&app, &config, &[]);
    assert_eq!(again["counts"], json!({}), "{again}");
}

/// SIGTERM while `serve` is pushing changes: the process exits within seconds, the run stops
/// before its next AWS call and is recorded as failed with why, and the lease is free for the
/// next replica at once.
async fn shutdown_stops_a_running_sync_cleanly(b: Backend) {
    let moto = Moto::start().await;
    let proxy = FaultProxy::start(&moto.endpoint, faults_with_latency(200)).await;
    let config = format!(
        "{}[sync]\ndebounce_seconds = 1\nschedule = \"0 0 0 1 1 *\"\n",
        aws_config_section(&proxy.endpoint, 1000)
    );
    let mut app = BinaryApp::start_with_env(b, &config, SYNCING_ENV).await;
    let idp =
        IdpClient::new(&app.base, app.token("okta", None), None, "application/scim+json", None);
    for i in 0..60 {
        let r = idp.post("/Users", &user(&format!("u{i}@example.com"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // A run is creating users, one every 200 ms.
    eventually(std::time::Duration::from_secs(30), "a run pushing users", || async {
        moto.users().await.len() >= 3
    })
    .await;
    let status = app.terminate(std::time::Duration::from_secs(20)).expect("exited in time");
    assert!(status.success(), "{status:?}");
    assert!(moto.users().await.len() < 60, "stopped before the end");
    let store = app.store().await;
    let runs = store.list_runs(10).await.unwrap();
    // The newest run is the one that was pushing (start-up or change: whichever got the users).
    let stopped = &runs[0];
    assert_eq!(stopped.status, "failed", "{:?}", stopped.report);
    assert!(stopped.report.to_string().contains("shutting down"), "{:?}", stopped.report);
    assert!(store.acquire_sync_lease(uuid::Uuid::now_v7(), 60).await.unwrap(), "lease released");
}

/// Without `--json`, a dry run says it changed nothing and lists its plan as a table.
async fn a_text_dry_run_says_so_and_prints_its_plan_as_a_table(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let alice = app.create_user("alice@example.com").await;
    app.create_group("Team", &[&alice]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("scimbridge.toml");
    std::fs::write(&config, moto.config()).expect("config");
    let mut cmd = command(&app.url);
    cmd.arg("--config").arg(&config).args(["sync", "--dry-run"]);
    for (k, v) in AWS_ENV {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run scimbridge sync --dry-run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.ends_with("succeeded (dry run: nothing was changed)"), "{stdout}");
    assert!(stdout.contains("plan (3 steps):"), "{stdout}");
    let rows: Vec<Vec<&str>> =
        stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).collect();
    assert!(rows.iter().any(|r| r[..] == ["ACTION", "KIND", "NAME", "CHANGES"]), "{stdout}");
    assert!(rows.iter().any(|r| r[..] == ["create", "User", "alice@example.com"]), "{stdout}");
    assert!(
        rows.iter()
            .any(|r| r[..] == ["add_member", "Membership", "alice@example.com", "in", "Team"]),
        "{stdout}"
    );
    assert!(!stdout.contains("{\""), "no raw JSON in the text report: {stdout}");
    assert!(moto.users().await.is_empty(), "a dry run writes nothing");
}

/// Change runs (`scimbridge sync` without `--full`) plan only what changed since the last run
/// (docs/sync.md, "What a change run reads"); after several, a full dry run finds nothing left
/// to do: the scoped plans reached the state a full plan wants.
async fn change_runs_plan_only_the_changes_and_leave_a_full_run_nothing(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let mut people = Vec::new();
    for i in 0..6 {
        people.push(app.create_user(&format!("p{i}@example.com")).await);
    }
    // p0, p1 ∈ Inner ∈ Outer ∋ p2; p3, p4 ∈ Big.
    let inner = app.create_group("Inner", &[&people[0], &people[1]]).await;
    let outer = app.create_group("Outer", &[&inner, &people[2]]).await;
    let big = app.create_group("Big", &[&people[3], &people[4]]).await;
    let (code, first) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{first}");
    assert_eq!(count(&first, "add_membership"), 7, "{first}");
    let aws_groups = moto.groups().await;

    // p5 joins Inner: Outer gets p5 through the nesting, and nothing else is touched.
    let add =
        |id: &str| patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
    assert_eq!(
        app.patch(&format!("/Groups/{inner}"), &add(&people[5])).await.status,
        StatusCode::NO_CONTENT
    );
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["counts"], json!({"add_membership": 2}), "{report}");
    assert_eq!(
        moto.members(&aws_groups["Outer"]).await,
        ["p0@example.com", "p1@example.com", "p2@example.com", "p5@example.com"]
    );

    // A rename, a deactivation in Big, a delete, and Inner taken out of Outer.
    rename(&app, &people[1], "p1.renamed@example.com").await;
    let off = patch_op(json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(app.patch(&format!("/Users/{}", people[3]), &off).await.status, StatusCode::OK);
    assert_eq!(app.delete(&format!("/Users/{}", people[4])).await.status, StatusCode::NO_CONTENT);
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "update_user"), 1, "{report}");
    assert_eq!(count(&report, "delete_user"), 1, "{report}");
    let unnest = patch_op(json!([
        {"op": "remove", "path": format!("members[value eq \"{inner}\"]")}
    ]));
    assert_eq!(
        app.patch(&format!("/Groups/{outer}"), &unnest).await.status,
        StatusCode::NO_CONTENT
    );
    let (code, report) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["counts"], json!({"remove_membership": 3}), "{report}");
    assert_eq!(moto.members(&aws_groups["Outer"]).await, ["p2@example.com"]);
    assert_eq!(
        moto.members(&aws_groups["Inner"]).await,
        ["p0@example.com", "p1.renamed@example.com", "p5@example.com"]
    );
    // p3 is off; p4 is deleted (moto, unlike AWS, lists a deleted user's membership by id).
    let big_members = moto.members(&aws_groups["Big"]).await;
    assert!(!big_members.iter().any(|m| m.ends_with("@example.com")), "{big_members:?}");
    assert!(!moto.users().await.contains_key("p4@example.com"));
    let _ = big;

    // The safety net agrees: a full plan of everything finds nothing to do.
    let (code, full) = sync(&app, &moto, "", &["--full", "--dry-run"]);
    assert_eq!(code, 0, "{full}");
    assert_eq!(full["counts"], json!({}), "{full}");
    assert_eq!(full["plan"], json!([]), "{full}");
}
