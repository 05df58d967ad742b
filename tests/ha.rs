//! High availability: two `scimbridge serve` processes on one PostgreSQL database behind one
//! Service. Both serve SCIM at once with correct results, and sync runs never overlap however
//! many are triggered on both.

use crate::support::Backend;
use crate::support::binary::{BinaryApp, IdpClient};
use crate::support::moto::{Moto, SYNCING_ENV};
use crate::support::{eventually_ok, group, patch_op, user};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// No scheduled run during the test; changes are pushed a second after the IdP pauses.
const CONFIG: &str = "[sync]\nschedule = \"0 0 0 1 1 *\"\ndebounce_seconds = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_concurrently_and_sync_one_run_at_a_time() {
    let moto = Moto::start().await;
    let config = format!("{}{CONFIG}", moto.config());
    let a = BinaryApp::start_with_env(Backend::Postgres, &config, SYNCING_ENV).await;
    let b = a.replica(&config, SYNCING_ENV).await;
    let token = a.token("okta", None);
    let scim = |app: &BinaryApp| {
        IdpClient::new(&app.base, token.clone(), None, "application/scim+json", None)
    };
    let replicas = [scim(&a), scim(&b)];

    // Concurrent SCIM load across both replicas: users created on either, one group filled by
    // concurrent PATCHes through both.
    let created = join_all((0..40).map(|i| {
        let idp = &replicas[i % 2];
        async move {
            let r = idp.post("/Users", &user(&format!("u{i}@example.com"))).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    }))
    .await;
    let r = replicas[0].post("/Groups", &group("Everyone", &[])).await;
    let group_id = r.body["id"].as_str().unwrap().to_owned();
    join_all(created.iter().enumerate().map(|(i, id)| {
        let (idp, path) = (&replicas[i % 2], format!("/Groups/{group_id}"));
        let op = patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
        async move {
            let r = idp.patch(&path, &op).await;
            assert!(r.status.is_success(), "{}", r.body);
        }
    }))
    .await;
    for idp in &replicas {
        let r = idp.get(&format!("/Groups/{group_id}")).await;
        assert_eq!(r.body["members"].as_array().map(Vec::len), Some(40), "no member lost");
        let r = idp.get("/Users?count=1").await;
        assert_eq!(r.body["totalResults"], 40);
    }

    // Sync triggered on both at once (besides their start-up and change runs).
    let admin_token = a.admin_token();
    let admin = |app: &BinaryApp| {
        let root = app.base.trim_end_matches("/scim/v2").to_owned();
        IdpClient::new(&root, admin_token.clone(), None, "application/json", None)
    };
    let admins = [admin(&a), admin(&b)];
    let requested = join_all(admins.iter().map(|c| async move {
        let r = c.post("/admin/v1/sync?full=true", &json!({})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        r.body["run_id"].as_str().unwrap().to_owned()
    }))
    .await;
    // One deadline for both runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    for (c, id) in admins.iter().zip(&requested) {
        let limit = deadline.saturating_duration_since(Instant::now());
        let run = eventually_ok(limit, &format!("run {id} ending"), || async {
            let run = c.get(&format!("/admin/v1/sync/runs/{id}")).await.body;
            if run["status"] != "running" { Ok(run) } else { Err(run.to_string()) }
        })
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }

    // A single run at a time: no two recorded runs overlap.
    let runs = a.store().await.list_runs(100).await.unwrap();
    let mut spans: Vec<_> = runs
        .iter()
        .map(|r| (r.started_at, r.finished_at.expect("every run finished"), r.report.clone()))
        .collect();
    spans.sort_by_key(|s| s.0);
    // Both requested runs at least (a start-up run is skipped when a full run made after the
    // replica started covers it).
    assert!(spans.len() >= 2, "both requested runs: {}", spans.len());
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {} and {}", pair[0].2, pair[1].2);
    }
    // Consistent state in AWS: every user once, the group with each member once.
    let users = moto.users().await;
    assert_eq!(users.len(), 40, "{users:?}");
    let groups = moto.groups().await;
    assert_eq!(groups.len(), 1);
    assert_eq!(moto.members(&groups["Everyone"]).await.len(), 40);
}
