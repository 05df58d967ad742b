//! The in-process test app is built by the composition root `scimbridge serve` uses
//! (`Application::build_with`), so tests and production are wired alike: with `[sync] enabled`
//! it runs the sync scheduler, and the admin API has it to ask.

use crate::support::binary::free_port;
use crate::support::{Backend, eventually_ok, spawn_app_with};
use reqwest::StatusCode;
use scimbridge::config::Settings;
use serde_json::Value;
use std::time::Duration;

/// The scheduler of an in-process app with `[sync] enabled` starts and tries to reach AWS at an
/// endpoint where nothing listens (whatever credentials the test process has): its failure is
/// recorded, and `/admin/v1/status` shows sync on and the error, as a served replica's would.
/// A requested run is refused because AWS was not reached yet, not because sync is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_app_runs_the_scheduler_when_sync_is_enabled() {
    let mut settings = Settings::default();
    settings.sync.enabled = true;
    settings.aws.region = Some("us-east-1".into());
    settings.aws.endpoint_url = Some(format!("http://127.0.0.1:{}", free_port()));
    let app = spawn_app_with(Backend::Sqlite, settings, None).await;
    let (_, admin, _) =
        scimbridge::auth::create_token(&*app.store, None, None).await.expect("admin token");
    let root = app.base.trim_end_matches("/scim/v2").to_owned();
    let what = "the scheduler's failure to reach AWS in /admin/v1/status";
    let status = eventually_ok(Duration::from_secs(60), what, || async {
        let r = app
            .client
            .get(format!("{root}/admin/v1/status"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("GET /admin/v1/status");
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.expect("a JSON status");
        if body["sync"]["last_error"].is_object() { Ok(body) } else { Err(body.to_string()) }
    })
    .await;
    assert_eq!(status["sync"]["enabled"], true, "{status}");

    let r = app
        .client
        .post(format!("{root}/admin/v1/sync"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("POST /admin/v1/sync");
    let code = r.status();
    let body = r.text().await.expect("a body");
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("has not reached AWS yet"), "{body}");
}
