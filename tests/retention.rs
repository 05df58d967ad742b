//! Retention (`[retention]`, issue 16), end to end through the real binary: `serve` prunes the
//! change journal, the audit log and the run records, and keeps what a run still needs —
//! journal rows no run has covered however old, the journal head, the runs of the delete
//! guard's window, the last full run, runs with a hold open. And careless values stop every
//! command with exit 2, naming the key.

use crate::on_both_backends;
use crate::support::binary::{BinaryApp, IdpClient, cli_with_config};
use crate::support::moto::{Moto, SYNCING_ENV};
use crate::support::{Backend, eventually, eventually_ok, execute_sql, user};
use chrono::TimeDelta;
use reqwest::StatusCode;
use scimbridge::store::{
    Hold, HoldState, Removals, RunRecord, RunStatus, Store, Trigger, format_timestamp, now,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

on_both_backends!(retention_keeps_what_a_run_still_needs);

/// No scheduled run; changes pushed a second after the IdP pauses; pruning every second with
/// short ages, and a single run kept beyond what something still needs.
const CONFIG: &str = "[sync]\nschedule = \"0 0 0 1 1 *\"\ndebounce_seconds = 1\n\
    guard_window = \"24h\"\n\
    [retention]\njournal_days = 1\naudit_days = 30\nruns_keep = 1\ninterval_seconds = 1\n";

const WAIT: Duration = Duration::from_secs(60);

fn admin_client(app: &BinaryApp, token: &str) -> IdpClient {
    let root = app.base.strip_suffix("/scim/v2").unwrap();
    IdpClient::new(root, token.to_owned(), None, "application/json", None)
}

/// A timestamp literal both databases compare correctly with their own (RFC 3339, UTC).
fn ago(age: TimeDelta) -> String {
    format!("'{}'", format_timestamp(&(now() - age)))
}

fn run(trigger: Trigger, status: RunStatus, age: TimeDelta) -> RunRecord {
    let started_at = now() - age;
    RunRecord {
        id: Uuid::now_v7(),
        trigger,
        dry_run: false,
        status,
        started_at,
        finished_at: Some(started_at),
        journal_head: None,
        report: json!({"full": false}),
        forced: false,
        removals: Removals::default(),
        rules_fingerprint: None,
    }
}

/// The newest finished real run covers the whole journal (nothing pending); its id.
async fn caught_up(store: &Arc<dyn Store>, what: &str) -> Uuid {
    eventually_ok(WAIT, what, || async {
        let head = store.journal_head().await.map_err(|e| e.to_string())?;
        let runs = store.list_runs(20).await.map_err(|e| e.to_string())?;
        let last = runs.iter().find(|r| r.journal_head.is_some());
        match last {
            Some(r) if r.journal_head == Some(head) && r.status == RunStatus::Succeeded => Ok(r.id),
            _ => Err(format!(
                "head {head}, runs {:?}",
                runs.iter().map(|r| (r.trigger, r.status, r.journal_head)).collect::<Vec<_>>()
            )),
        }
    })
    .await
}

async fn journal_seqs(store: &Arc<dyn Store>) -> Vec<i64> {
    store.journal_since(0, 10_000).await.unwrap().iter().map(|e| e.seq).collect()
}

async fn retention_keeps_what_a_run_still_needs(b: Backend) {
    let moto = Moto::start().await;
    let app =
        BinaryApp::start_with_env(b, &format!("{}{CONFIG}", moto.config()), SYNCING_ENV).await;
    let store = app.store().await;
    let admin = admin_client(&app, &app.admin_token());
    let idp =
        IdpClient::new(&app.base, app.token("okta", None), None, "application/scim+json", None);
    let run_exists = |id: Uuid| {
        let admin = &admin;
        async move {
            let r = admin.get(&format!("/admin/v1/sync/runs/{id}")).await;
            assert!(
                matches!(r.status, StatusCode::OK | StatusCode::NOT_FOUND),
                "{}: {}",
                r.status,
                r.body
            );
            r.status == StatusCode::OK
        }
    };

    // The start-up run (full), then a change run pushing three users.
    caught_up(&store, "the start-up run").await;
    for name in ["u1@example.com", "u2@example.com", "u3@example.com"] {
        assert_eq!(idp.post("/Users", &user(name)).await.status, StatusCode::CREATED);
    }
    let first_change = caught_up(&store, "the change run covering u1..u3").await;
    let covered = store.journal_head().await.unwrap();
    let runs = store.list_runs(50).await.unwrap();
    let startup = runs.iter().find(|r| r.trigger == Trigger::Startup).expect("start-up run");
    assert_eq!(startup.report["full"], true);
    let startup = startup.id;
    let change_runs: Vec<Uuid> =
        runs.iter().filter(|r| r.trigger == Trigger::Change).map(|r| r.id).collect();

    // Paused: two more users wait in the journal, after the covered head.
    let (code, _, stderr) = cli_with_config(&app.url, &moto.config(), &["sync", "pause"]);
    assert_eq!(code, 0, "{stderr}");
    for name in ["u4@example.com", "u5@example.com"] {
        assert_eq!(idp.post("/Users", &user(name)).await.status, StatusCode::CREATED);
    }
    let head = store.journal_head().await.unwrap();
    assert_eq!(journal_seqs(&store).await.iter().filter(|s| **s > covered).count(), 2);

    // Runs beyond runs_keep with nothing that needs them; one with a hold open; one inside the
    // guard's window whose deletes the guard still counts.
    let mut old1 = run(Trigger::Change, RunStatus::Succeeded, TimeDelta::days(30));
    old1.journal_head = Some(1);
    let mut old2 = run(Trigger::Cli, RunStatus::Succeeded, TimeDelta::days(29));
    old2.journal_head = Some(1);
    let held = run(Trigger::Change, RunStatus::Partial, TimeDelta::zero());
    let mut window = run(Trigger::Change, RunStatus::Failed, TimeDelta::hours(2));
    window.removals = Removals { principals: 3, memberships: 0, assignments: 0 };
    for r in [&old1, &old2, &held, &window] {
        store.save_run(r).await.unwrap();
    }
    store
        .put_hold(&Hold {
            run_id: held.id,
            held_at: now(),
            state: HoldState::Pending,
            action_keys: vec!["delete_user:gone".into()],
            actions: vec![json!({"action": "delete_user", "name": "gone"})],
            approved_at: None,
            approved_by: None,
            closed_at: None,
            closed_by_run: None,
        })
        .await
        .unwrap();
    let guarded = store.recent_removals(now() - TimeDelta::hours(24)).await.unwrap();

    // Everything made so far grows old (the journal by 100 days, the real runs by weeks).
    let ids =
        |list: &[Uuid]| list.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(", ");
    execute_sql(&app.url, format!("UPDATE change_journal SET at = {}", ago(TimeDelta::days(100))))
        .await;
    let set_started = |id_list: String, age: TimeDelta| {
        format!("UPDATE sync_runs SET started_at = {} WHERE id IN ({id_list})", ago(age))
    };
    execute_sql(&app.url, set_started(ids(&[startup]), TimeDelta::days(20))).await;
    execute_sql(&app.url, set_started(ids(&[held.id]), TimeDelta::days(25))).await;
    // One statement, so that the newest of them stays the newest finished run throughout.
    execute_sql(&app.url, set_started(ids(&change_runs), TimeDelta::days(15))).await;

    // What no run needs goes: the covered journal rows, the old runs beyond runs_keep.
    eventually(WAIT, "the covered journal rows and the unneeded runs pruned", || async {
        journal_seqs(&store).await.iter().all(|s| *s > covered)
            && !run_exists(old1.id).await
            && !run_exists(old2.id).await
    })
    .await;
    // What a run needs stays: the rows after the covered head however old, the head itself.
    let seqs = journal_seqs(&store).await;
    assert_eq!(seqs.len(), 2, "{seqs:?}");
    assert_eq!(store.journal_head().await.unwrap(), head, "the head never moves back");
    let status = admin.get("/admin/v1/status").await.body;
    assert_eq!(status["pending_journal_entries"], 2, "{status}");
    // The last full run, the last real run, the held run, the guard window's run.
    for (what, id) in [
        ("the last full run", startup),
        ("the last finished real run", first_change),
        ("the run with a pending hold", held.id),
        ("the guard window's run", window.id),
    ] {
        assert!(run_exists(id).await, "{what} was pruned");
    }
    assert_eq!(store.recent_removals(now() - TimeDelta::hours(24)).await.unwrap(), guarded);
    let status = admin.get("/admin/v1/status").await.body;
    let pending = &status["sync"]["pending_approvals"];
    assert_eq!(pending[0]["run_id"], held.id.to_string(), "{status}");

    // Resumed: a run covers u4 and u5. Every journal row then goes but the head.
    let (code, _, stderr) = cli_with_config(&app.url, &moto.config(), &["sync", "resume"]);
    assert_eq!(code, 0, "{stderr}");
    let last = caught_up(&store, "the change run covering u4 and u5").await;
    assert_ne!(last, first_change);
    eventually(WAIT, "every covered journal row but the head pruned", || async {
        journal_seqs(&store).await == [head]
    })
    .await;
    assert_eq!(store.journal_head().await.unwrap(), head, "the head never moves back");
    // The run that was the last real one is now an old run like any other; so is the held
    // run, whose hold the new run superseded (it held nothing).
    eventually(WAIT, "the superseded real run and the closed hold's run pruned", || async {
        !run_exists(first_change).await && !run_exists(held.id).await
    })
    .await;
    assert!(run_exists(startup).await, "the last full run was pruned");
    assert!(run_exists(last).await && run_exists(window.id).await);

    // Audit rows older than audit_days go; the rest stay.
    let entries = |body: serde_json::Value| -> Vec<(i64, String)> {
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["seq"].as_i64().unwrap(), e["name"].as_str().unwrap().to_owned()))
            .collect()
    };
    let before = entries(admin.get("/admin/v1/audit").await.body);
    let old: Vec<i64> = before
        .iter()
        .filter(|(_, name)| {
            ["u1@example.com", "u2@example.com", "u3@example.com"].contains(&name.as_str())
        })
        .map(|(seq, _)| *seq)
        .collect();
    assert_eq!(old.len(), 3, "{before:?}");
    let seq_list = old.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    execute_sql(
        &app.url,
        format!("UPDATE audit_log SET at = {} WHERE seq IN ({seq_list})", ago(TimeDelta::days(31))),
    )
    .await;
    let wanted: Vec<(i64, String)> =
        before.iter().filter(|(seq, _)| !old.contains(seq)).cloned().collect();
    assert!(!wanted.is_empty());
    eventually(WAIT, "the old audit rows pruned", || async {
        entries(admin.get("/admin/v1/audit").await.body) == wanted
    })
    .await;

    // Counted per table.
    let metrics = admin.get("/metrics").await.body;
    let metrics = metrics.as_str().unwrap_or_default();
    for (table, at_least) in [("change_journal", 4.0), ("sync_runs", 3.0), ("audit_log", 3.0)] {
        let line = format!("scimbridge_retention_pruned_total{{table=\"{table}\"}} ");
        let value: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {line}in {metrics}"));
        assert!(value >= at_least, "{table}: {value}");
    }
}

/// `[retention]` values a careless admin could write: each stops every command with exit 2
/// and names the key, before the database is opened.
#[test]
fn careless_retention_values_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("never-opened.db").display());
    for (setting, named) in [
        (
            "journal_days = 0",
            "retention.journal_days = 0 is out of range: it must be from 1 to 36500 days",
        ),
        ("audit_days = 0", "retention.audit_days = 0 is out of range"),
        ("audit_days = -1", "retention.audit_days"),
        ("journal_days = 1000000", "retention.journal_days = 1000000 is out of range"),
        ("journal_days = \"30d\"", "retention.journal_days"),
        (
            "runs_keep = 0",
            "retention.runs_keep = 0 is out of range: it must be from 1 to 10000000 runs",
        ),
        ("runs_keep = 1.5", "retention.runs_keep"),
        ("interval_seconds = 0", "retention.interval_seconds = 0 is out of range"),
        ("keep_days = 3", "keep_days"),
    ] {
        for command in [&["migrate"][..], &["serve", "--listen", "127.0.0.1:0"][..]] {
            let (code, _, stderr) =
                cli_with_config(&url, &format!("[retention]\n{setting}\n"), command);
            assert_eq!(code, 2, "{setting}, {command:?}: {stderr}");
            assert!(stderr.contains(named), "{setting}, {command:?}: {stderr}");
        }
    }
    assert!(!dir.path().join("never-opened.db").exists(), "no database was created");

    // The environment is checked alike.
    let out = crate::support::binary::command(&url)
        .env("SCIMBRIDGE_RETENTION__RUNS_KEEP", "0")
        .arg("migrate")
        .output()
        .expect("run scimbridge");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("retention.runs_keep = 0"), "{stderr}");

    // In range, it is taken.
    let (code, _, stderr) = cli_with_config(
        &url,
        "[retention]\njournal_days = 1\naudit_days = 36500\nruns_keep = 1\ninterval_seconds = 86400\n",
        &["migrate"],
    );
    assert_eq!(code, 0, "{stderr}");
}
