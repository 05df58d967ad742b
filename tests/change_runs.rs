//! Change runs follow the pending set (issue 16): SCIM writers hammer the bridge concurrently —
//! on PostgreSQL through two replicas of one database, whose write transactions commit out of
//! `seq` order (one of the last wave's held open until a change run has come and gone) — while
//! change runs follow with a one-second debounce. With no full run after the start-up one, AWS
//! ends up holding exactly what the database holds: no change is missed.

use crate::on_both_backends;
use crate::support::binary::{BinaryApp, IdpClient};
use crate::support::moto::{Moto, SYNCING_ENV};
use crate::support::{Backend, eventually, eventually_ok, execute_sql, group, patch_op, user};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// No scheduled run during the test (1 January only); changes go out a second after the
/// writers pause, and the engine looks often. The delete guard is off: a quarter of the users
/// are deleted at once.
const CONFIG: &str = "[sync]\nschedule = \"0 0 0 1 1 *\"\ndebounce_seconds = 1\n\
     journal_poll_milliseconds = 100\nscheduler_tick_milliseconds = 100\n\
     min_principals_for_guard = 1000\n";
const WRITERS: usize = 8;
const ROUNDS: usize = 6;
const GROUPS: usize = 4;

on_both_backends!(change_runs_follow_concurrent_writers_and_miss_nothing);

async fn change_runs_follow_concurrent_writers_and_miss_nothing(b: Backend) {
    let moto = Moto::start().await;
    let config = format!("{}{CONFIG}", moto.config());
    let a = BinaryApp::start_with_env(b, &config, SYNCING_ENV).await;
    // SQLite serves one replica (one writer at a time, the chart enforces it); PostgreSQL two.
    let second = match b {
        Backend::Postgres => Some(a.replica(&config, SYNCING_ENV).await),
        Backend::Sqlite => None,
    };
    let token = a.token("okta", None);
    let scim = |app: &BinaryApp| {
        IdpClient::new(&app.base, token.clone(), None, "application/scim+json", None)
    };
    let replicas: Vec<IdpClient> =
        [Some(&a), second.as_ref()].into_iter().flatten().map(scim).collect();
    let store = a.store().await;
    wait_for_startup_run(&*store).await;

    let groups: Vec<String> = join_all((0..GROUPS).map(|g| {
        let idp = &replicas[g % replicas.len()];
        async move {
            let r = idp.post("/Groups", &group(&format!("Team {g}"), &[])).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    }))
    .await;

    // Waves of concurrent writes, each writer alternating replicas; between waves a pause a
    // little longer than the debounce, so change runs start and the next wave lands while they
    // run.
    let mut mine: Vec<Vec<String>> = vec![Vec::new(); WRITERS];
    for round in 0..ROUNDS {
        if round == ROUNDS - 1 && b == Backend::Postgres {
            // One write of the last wave takes its journal seq, then stays uncommitted for 8 s
            // while the others commit later seqs and a change run covers them and ends: the
            // commit order a cursor over the journal's head loses (no later write moves the
            // head again).
            slow_down_writes_of(&a.url, &mine[0][round - 1]).await;
        }
        let wave = join_all(mine.iter().enumerate().map(|(w, own)| {
            let idp = &replicas[(w + round) % replicas.len()];
            let groups = &groups;
            async move {
                tokio::time::sleep(Duration::from_millis(40 * w as u64)).await;
                write_round(idp, groups, w, round, own).await
            }
        }))
        .await;
        for (own, created) in mine.iter_mut().zip(wave) {
            own.push(created);
        }
        tokio::time::sleep(Duration::from_millis(1300)).await;
    }

    // AWS converges on the database, with change runs only.
    let expected = scim_state(&replicas[0]).await;
    assert_eq!(expected.users.len(), WRITERS * (ROUNDS - 1), "one user per writer deleted");
    eventually_ok(Duration::from_secs(180), "AWS holding what the database holds", || async {
        let seen = aws_state(&moto).await;
        if seen == expected { Ok(()) } else { Err(format!("{seen:?}\n  expected {expected:?}")) }
    })
    .await;
    eventually(Duration::from_secs(60), "every pending change cleared", || async {
        store.pending_summary().await.unwrap().is_empty() && !store.sync_running().await.unwrap()
    })
    .await;
    // Only the replicas' start-up runs were full (the second replica's may have started while
    // the writers wrote); every run succeeded.
    let runs = store.list_runs(1000).await.unwrap();
    for r in &runs {
        if r.report["full"] == true {
            assert_eq!(r.trigger.as_str(), "startup", "no other full run: {}", r.report);
        }
        assert_eq!(r.status.as_str(), "succeeded", "{}", r.report);
    }
    let change_runs = runs.iter().filter(|r| r.trigger.as_str() == "change").count();
    assert!(change_runs >= 2, "change runs followed the writers: {change_runs}");
}

/// Makes every write of resource `id` wait 8 s after its journal row (and seq) was taken,
/// before it commits: a trigger on this test's database only.
async fn slow_down_writes_of(url: &str, id: &str) {
    let function = format!(
        "CREATE FUNCTION test_slow_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.resource_id = '{id}' THEN PERFORM pg_sleep(8); END IF; RETURN NULL; END $$"
    );
    execute_sql(url, function).await;
    let trigger = "CREATE TRIGGER zz_test_slow_write AFTER INSERT ON change_journal \
                   FOR EACH ROW EXECUTE FUNCTION test_slow_write()";
    execute_sql(url, trigger.to_owned()).await;
}

/// One writer's round: a new user (put in a group), the previous round's user renamed, and
/// in round 3 the writer's first user deleted and another removed from its group. Returns the
/// new user's id.
async fn write_round(
    idp: &IdpClient,
    groups: &[String],
    w: usize,
    round: usize,
    own: &[String],
) -> String {
    let r = idp.post("/Users", &user(&format!("w{w}-r{round}@example.com"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let team = &groups[(w + round) % groups.len()];
    let add = patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
    let r = idp.patch(&format!("/Groups/{team}"), &add).await;
    assert!(r.status.is_success(), "{}", r.body);
    if let Some(previous) = own.last() {
        let name = format!("w{w}-r{}-renamed@example.com", round - 1);
        let rename = patch_op(json!([{"op": "replace", "path": "userName", "value": name}]));
        let r = idp.patch(&format!("/Users/{previous}"), &rename).await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    if round == 3 {
        let r = idp.delete(&format!("/Users/{}", own[0])).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let (user, team) = (&own[1], &groups[(w + 1) % groups.len()]);
        let remove =
            patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{user}\"]")}]));
        let r = idp.patch(&format!("/Groups/{team}"), &remove).await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    id
}

/// Users and groups with their members, by name.
#[derive(Debug, PartialEq, Eq)]
struct Directory {
    users: BTreeSet<String>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

async fn scim_state(idp: &IdpClient) -> Directory {
    let users = idp.get("/Users?count=1000").await.body;
    let names: BTreeMap<String, String> = resources(&users)
        .map(|u| (u["id"].as_str().unwrap().to_owned(), u["userName"].as_str().unwrap().to_owned()))
        .collect();
    let groups = idp.get("/Groups?count=1000").await.body;
    let groups = resources(&groups)
        .map(|g| {
            let members = g["members"].as_array().cloned().unwrap_or_default();
            let members = members.iter().map(|m| names[m["value"].as_str().unwrap()].clone());
            (g["displayName"].as_str().unwrap().to_owned(), members.collect())
        })
        .collect();
    Directory { users: names.into_values().collect(), groups }
}

fn resources(list: &Value) -> impl Iterator<Item = &Value> {
    list["Resources"].as_array().into_iter().flatten()
}

/// What AWS holds. AWS drops a deleted user's memberships itself (the bridge relies on it);
/// moto keeps them, naming a user that no longer exists (by id): those are left out.
async fn aws_state(moto: &Moto) -> Directory {
    let users: BTreeSet<String> = moto.users().await.into_keys().collect();
    let mut groups = BTreeMap::new();
    for (name, id) in moto.groups().await {
        let members = moto.members(&id).await.into_iter().filter(|m| users.contains(m));
        groups.insert(name, members.collect());
    }
    Directory { users, groups }
}

/// Waits until a start-up run has finished.
async fn wait_for_startup_run(store: &dyn scimbridge::store::Store) {
    eventually(Duration::from_secs(60), "the start-up run", || async {
        let runs = store.list_runs(10).await.unwrap();
        runs.iter().any(|r| r.trigger.as_str() == "startup" && r.finished_at.is_some())
    })
    .await
}
