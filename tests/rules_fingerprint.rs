//! A CLI `sync` with other rules than the serving replicas' (issue 14): each run records the
//! fingerprint of its rules; `scimbridge sync --config other.toml` whose rules differ from the
//! server's last run refuses (exit 2) before touching AWS, unless `--config-differs-ok`; a dry
//! run only says so. The real binary serves and syncs into moto.

use crate::admin::{QUIET, root_client, startup_run_done, status};
use crate::on_both_backends;
use crate::support::binary::{BinaryApp, IdpClient, cli_with_config};
use crate::support::moto::{Moto, SYNCING_ENV};
use crate::support::{Backend, user};
use reqwest::StatusCode;
use serde_json::Value;

on_both_backends!(a_cli_sync_with_other_rules_refuses_unless_told);

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The first 12 hex digits, as messages show a fingerprint.
fn short(fingerprint: &str) -> &str {
    &fingerprint[..12]
}

async fn a_cli_sync_with_other_rules_refuses_unless_told(b: Backend) {
    let moto = Moto::start().await;
    let serving = format!("{}{QUIET}[sync.filter]\nusers = \"user.active\"\n", moto.config());
    let app = BinaryApp::start_with_env(b, &serving, SYNCING_ENV).await;
    let admin = root_client(&app, app.admin_token());
    startup_run_done(&admin).await;
    let s = status(&admin).await;
    let ours = s["sync"]["rules_fingerprint"].as_str().expect("a fingerprint").to_owned();
    assert_eq!(ours.len(), 64, "{s}");
    assert_eq!(s["last_run"]["rules_fingerprint"], ours.as_str(), "the run records it: {s}");

    let idp =
        IdpClient::new(&app.base, app.token("okta", None), None, "application/scim+json", None);
    let r = idp.post("/Users", &user("bob@example.com")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Another filter, the same everything else (laid out differently: not a difference).
    let other = format!(
        "{}{QUIET}[sync.filter]\nusers = 'user.userName.startsWith(\"b\")'\n",
        moto.config()
    );
    let (code, stdout, _) = cli_with_config(&app.url, &other, &["status", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let theirs = json(&stdout)["sync"]["rules_fingerprint"].as_str().expect("fp").to_owned();
    assert_ne!(theirs, ours);

    let (code, stdout, stderr) = cli_with_config(&app.url, &other, &["sync", "--json"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "no report: {stdout}");
    for expected in [short(&ours), short(&theirs), "POST /admin/v1/sync", "--config-differs-ok"] {
        assert!(stderr.contains(expected), "{expected:?} in: {stderr}");
    }
    assert!(moto.users().await.is_empty(), "nothing pushed");

    // A dry run changes nothing: it runs, and says the rules differ.
    let (code, stdout, stderr) =
        cli_with_config(&app.url, &other, &["sync", "--json", "--dry-run"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report = json(&stdout);
    let note = report["rules_differ"].as_str().expect("the dry run says so");
    assert!(note.contains(short(&ours)) && note.contains(short(&theirs)), "{note}");
    assert_eq!(report["rules_fingerprint"], theirs.as_str(), "{report}");
    let (code, stdout, _) = cli_with_config(&app.url, &other, &["sync", "--dry-run"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("note: the rules of this config"), "{stdout}");
    assert!(moto.users().await.is_empty(), "a dry run pushes nothing");

    // Told so, it runs with its rules.
    let (code, stdout, stderr) =
        cli_with_config(&app.url, &other, &["sync", "--json", "--config-differs-ok"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report = json(&stdout);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["rules_fingerprint"], theirs.as_str(), "{report}");
    assert!(report.get("rules_differ").is_none(), "{report}");
    assert!(moto.users().await.contains_key("bob@example.com"));

    // The serving replicas' rules are still those of their last run (a CLI run is not one of
    // theirs): the same rules as the server's run without being told.
    let same = format!("[sync.filter]\nusers = \"user.active\"\n{QUIET}{}", moto.config());
    let (code, stdout, stderr) = cli_with_config(&app.url, &same, &["sync", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(json(&stdout)["rules_fingerprint"], ours.as_str(), "{stdout}");
}
