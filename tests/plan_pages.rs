//! A dry run's large plan (issue 16): past 5,000 actions it is stored in pages of 1,000 rather
//! than in the run record, `scimbridge sync --dry-run --json` still prints it whole as `plan`
//! (streamed page by page), the admin API's run detail says `plan_pages`, and
//! `GET /admin/v1/sync/runs/{id}/plan?page=N` serves the pages — refusing careless and hostile
//! requests with clear errors.

use crate::on_both_backends;
use crate::support::binary::command;
use crate::support::moto::{AWS_ENV, Moto, writes};
use crate::support::{Backend, Reply, TestApp, spawn_app, user};
use crate::sync::sync;
use reqwest::{Method, StatusCode};
use scimbridge::store::{RunRecord, RunStatus, Trigger};
use serde_json::{Value, json};
use uuid::Uuid;

on_both_backends!(a_large_dry_run_plan_is_paged_streamed_and_served_page_by_page);

/// Past the inline limit (5,000): five full pages and one of 50.
const USERS: usize = 5_050;
const PAGES: u64 = 6;
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// Creates the users through `/Bulk`, 100 operations a request, in this order.
async fn load_users(app: &TestApp, names: &[String]) {
    for chunk in names.chunks(100) {
        let ops: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, name)| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"), "data": user(name)})
            })
            .collect();
        let r = app.post("/Bulk", &json!({"schemas": [BULK], "Operations": ops})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let statuses: Vec<&Value> = r.body["Operations"]
            .as_array()
            .expect("operations")
            .iter()
            .map(|o| &o["status"])
            .collect();
        assert!(statuses.iter().all(|s| *s == "201"), "{}", r.body);
    }
}

/// An admin-API request with `token` (None: no Authorization header).
async fn admin_get(app: &TestApp, token: Option<&str>, path: &str) -> Reply {
    let root = app.base.strip_suffix("/scim/v2").expect("the SCIM base");
    let url = format!("{root}/admin/v1{path}");
    match token {
        Some(token) => app.request_as(token, Method::GET, &url, None, &[]).await,
        None => {
            let resp = reqwest::get(&url).await.expect("request");
            let (status, headers) = (resp.status(), resp.headers().clone());
            let body = resp.json().await.unwrap_or(Value::Null);
            Reply { status, headers, body }
        }
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().expect("an object").keys().map(String::as_str).collect()
}

async fn a_large_dry_run_plan_is_paged_streamed_and_served_page_by_page(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let (_, admin, _) =
        scimbridge::auth::create_token(&*app.store, None, None).await.expect("admin token");

    // A small dry run first: its plan is inline, as it always was.
    let (code, small) = sync(&app, &moto, "", &["--dry-run"]);
    assert_eq!(code, 0, "{small}");
    assert_eq!(small["plan"], json!([]), "{small}");
    let small_id = small["run_id"].as_str().expect("run_id").to_owned();

    let names: Vec<String> = (0..USERS).map(|i| format!("u{i:05}@example.com")).collect();
    load_users(&app, &names).await;

    // `sync --dry-run --json` prints the whole plan as `plan`, in the object a small plan's
    // report is (same fields, same order): every create, in the order the users were made.
    let (code, report) = sync(&app, &moto, "", &["--dry-run"]);
    assert_eq!(code, 0, "{}", report["errors"]);
    assert_eq!(keys(&report), keys(&small), "the same object as a small dry run's");
    assert_eq!(report["counts"], json!({"create_user": USERS}), "{}", report["counts"]);
    assert_eq!(writes(&report), 0, "a dry run writes nothing");
    let plan = report["plan"].as_array().expect("the plan, whole");
    assert_eq!(plan.len(), USERS);
    let planned: Vec<&str> = plan.iter().map(|a| a["name"].as_str().unwrap_or("?")).collect();
    assert_eq!(planned, names, "every create, in order");
    assert!(plan.iter().all(|a| a["action"] == "create" && a["kind"] == "User"), "{}", plan[0]);
    let run_id = report["run_id"].as_str().expect("run_id").to_owned();

    // The run record holds the page count, not the plan.
    let detail = admin_get(&app, Some(&admin), &format!("/sync/runs/{run_id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_eq!(detail.body["plan_pages"], PAGES, "{}", detail.body["plan_pages"]);
    assert!(detail.body.get("plan").is_none(), "no inline plan beside the pages");
    assert_eq!(detail.body["status"], "succeeded");

    // Its pages, read one by one, are the plan the CLI printed.
    let mut paged = Vec::new();
    for page in 0..PAGES {
        let r =
            admin_get(&app, Some(&admin), &format!("/sync/runs/{run_id}/plan?page={page}")).await;
        assert_eq!(r.status, StatusCode::OK, "page {page}: {}", r.body);
        assert_eq!(keys(&r.body), ["run_id", "page", "pages", "actions"]);
        assert_eq!((&r.body["run_id"], &r.body["page"]), (&json!(run_id), &json!(page)));
        assert_eq!(r.body["pages"], PAGES);
        let actions = r.body["actions"].as_array().expect("actions").clone();
        let wanted = if page + 1 < PAGES { 1000 } else { USERS - 5 * 1000 };
        assert_eq!(actions.len(), wanted, "page {page}");
        paged.extend(actions);
    }
    assert_eq!(&paged, plan, "the pages are the plan, in order");
    // No page given: the first.
    let first = admin_get(&app, Some(&admin), &format!("/sync/runs/{run_id}/plan")).await;
    assert_eq!((first.status, &first.body["page"]), (StatusCode::OK, &json!(0)));

    // Careless and hostile requests.
    let plan_of = |id: &str, query: &str| format!("/sync/runs/{id}/plan{query}");
    for query in ["?page=-1", "?page=x", "?page=", "?page=1.5", "?page=99999999999"] {
        let r = admin_get(&app, Some(&admin), &plan_of(&run_id, query)).await;
        r.assert_error(400, Some("invalidValue"));
        assert!(r.body["detail"].as_str().unwrap().contains("not a page number"), "{}", r.body);
    }
    let r = admin_get(&app, Some(&admin), &plan_of(&run_id, "?page=6")).await;
    r.assert_error(404, None);
    assert!(r.body["detail"].as_str().unwrap().contains("has 6 pages (0 to 5)"), "{}", r.body);
    // Unknown or malformed run ids.
    for id in [Uuid::now_v7().to_string(), "not-a-run".to_owned(), "..%2F..%2Fstatus".to_owned()] {
        admin_get(&app, Some(&admin), &plan_of(&id, "?page=0")).await.assert_error(404, None);
    }
    // Another run's plan is that run's: the small dry run's inline plan is one empty page.
    let r = admin_get(&app, Some(&admin), &plan_of(&small_id, "?page=0")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((&r.body["pages"], &r.body["actions"]), (&json!(1), &json!([])));
    admin_get(&app, Some(&admin), &plan_of(&small_id, "?page=1")).await.assert_error(404, None);
    // A run without a plan (a real run) has no page at all.
    let real = RunRecord {
        id: Uuid::now_v7(),
        trigger: Trigger::Cli,
        dry_run: false,
        status: RunStatus::Succeeded,
        started_at: scimbridge::store::now(),
        finished_at: Some(scimbridge::store::now()),
        journal_head: None,
        report: json!({"full": false, "counts": {}}),
        forced: false,
        removals: Default::default(),
        rules_fingerprint: None,
    };
    app.store.save_run(&real).await.expect("a real run");
    let r = admin_get(&app, Some(&admin), &plan_of(&real.id.to_string(), "?page=0")).await;
    r.assert_error(404, None);
    assert!(r.body["detail"].as_str().unwrap().contains("has no plan"), "{}", r.body);
    // The admin token is needed: none is 401, a source's SCIM token 403.
    admin_get(&app, None, &plan_of(&run_id, "?page=0")).await.assert_error(401, None);
    admin_get(&app, Some(&app.token), &plan_of(&run_id, "?page=0")).await.assert_error(403, None);

    // Without --json, the plan is a table, page after page under one header.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("scimbridge.toml");
    std::fs::write(&config, moto.config()).expect("config");
    let mut text = command(&app.url);
    text.arg("--config").arg(&config).args(["sync", "--dry-run"]).envs(AWS_ENV.iter().copied());
    let out = text.output().expect("sync --dry-run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("plan (6 pages of at most 1000 steps):"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.trim_start().starts_with("ACTION")).count(), 1);
    let rows: Vec<&str> =
        stdout.lines().filter(|l| l.trim_start().starts_with("create ")).collect();
    assert_eq!(rows.len(), USERS, "a row per create");
    assert!(rows[USERS - 1].contains(&names[USERS - 1]), "{}", rows[USERS - 1]);
}
