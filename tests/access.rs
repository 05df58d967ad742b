//! Who can reach what (issue 17), end to end: rules assign a group of two users, a user and an
//! application through `scimbridge sync` (the real binary) into the moto emulator; an admin
//! assigns a user by hand, and a full run that a rule sends to the same assignment finds it
//! (foreign). Then `scimbridge access` (table, JSON, CSV, each filter) and `GET
//! /admin/v1/access` (paged) are checked row by row against what AWS holds, read back through
//! the SSO Admin and Identity Store APIs.

use crate::on_both_backends;
use crate::support::binary::command;
use crate::support::moto::Moto;
use crate::support::{Backend, Reply, TestApp, spawn_app};
use crate::sync::{count, sync};
use aws_sdk_ssoadmin::types::{PrincipalType, TargetType};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

on_both_backends!(
    the_report_matches_what_aws_holds_row_by_row,
    hostile_requests_for_the_report_are_refused,
);

const A: &str = "111111111111";
const B: &str = "222222222222";
const C: &str = "333333333333";
const APP: &str =
    "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111";

/// A row as both sides can tell it: (user, kind, target, permission set, via, holder's AWS id).
type Reach = (String, String, String, Option<String>, String, String);

/// The rows AWS implies for these (account, permission set name, ARN) pairs and the application:
/// each assignment to a user is that user's `direct` row; each one to a group, a row per
/// member of the group, through it.
async fn what_aws_holds(moto: &Moto, sets: &[(&str, &str, &str)]) -> BTreeSet<Reach> {
    let names: std::collections::BTreeMap<String, String> =
        moto.users().await.into_iter().map(|(name, id)| (id, name)).collect();
    let groups: std::collections::BTreeMap<String, String> =
        moto.groups().await.into_iter().map(|(name, id)| (id, name)).collect();
    let mut out = BTreeSet::new();
    let mut add = |kind: &str,
                   target: &str,
                   set: Option<&str>,
                   t: &PrincipalType,
                   id: &str,
                   members: Vec<String>| {
        let set = set.map(str::to_owned);
        match t {
            PrincipalType::User => {
                let user = names[id].clone();
                out.insert((user, kind.into(), target.into(), set, "direct".into(), id.into()));
            }
            _ => {
                for user in members {
                    let via = groups[id].clone();
                    out.insert((user, kind.into(), target.into(), set.clone(), via, id.into()));
                }
            }
        }
    };
    for (account, name, arn) in sets {
        let listed = moto
            .sso
            .list_account_assignments()
            .instance_arn(&moto.instance_arn)
            .account_id(*account)
            .permission_set_arn(*arn)
            .send()
            .await
            .expect("ListAccountAssignments");
        for a in listed.account_assignments() {
            let (t, id) = (a.principal_type().expect("type"), a.principal_id().unwrap_or_default());
            let members = group_members(moto, t, id).await;
            add("account", account, Some(name), t, id, members);
        }
    }
    let listed = moto
        .sso
        .list_application_assignments()
        .application_arn(APP)
        .send()
        .await
        .expect("ListApplicationAssignments");
    for a in listed.application_assignments() {
        let members = group_members(moto, a.principal_type(), a.principal_id()).await;
        add("application", APP, None, a.principal_type(), a.principal_id(), members);
    }
    out
}

/// The userNames of a group principal's members in AWS (none for a user principal).
async fn group_members(moto: &Moto, t: &PrincipalType, id: &str) -> Vec<String> {
    match t {
        PrincipalType::Group => moto.members(id).await,
        _ => Vec::new(),
    }
}

/// A report row (JSON) as a [`Reach`].
fn reach(row: &Value) -> Reach {
    let text = |k: &str| row[k].as_str().unwrap_or_else(|| panic!("{k} in {row}")).to_owned();
    (
        text("user"),
        text("kind"),
        text("target"),
        row["permission_set"].as_str().map(str::to_owned),
        text("via"),
        text("principal_id"),
    )
}

/// `scimbridge access ARGS` against the app's database: exit code, stdout, stderr.
fn access(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = command(&app.url).arg("access").args(args).output().expect("run scimbridge access");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// `scimbridge access --json ARGS`: the object it prints.
fn access_json(app: &TestApp, args: &[&str]) -> Value {
    let (code, stdout, stderr) = access(app, &[&["--json"], args].concat());
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn rows(report: &Value) -> Vec<Value> {
    report["rows"].as_array().expect("rows").clone()
}

fn reaches(rows: &[Value]) -> BTreeSet<Reach> {
    let set: BTreeSet<Reach> = rows.iter().map(reach).collect();
    assert_eq!(set.len(), rows.len(), "a row printed twice: {rows:?}");
    set
}

/// An admin token for the in-process app.
async fn admin_token(app: &TestApp) -> String {
    scimbridge::auth::create_token(&*app.store, None, None).await.expect("admin token").1
}

/// `GET /admin/v1/access{query}` with this token (None: no Authorization header).
async fn get_access(app: &TestApp, token: Option<&str>, query: &str) -> Reply {
    let root = app.base.strip_suffix("/scim/v2").expect("SCIM base");
    let url = format!("{root}/admin/v1/access{query}");
    match token {
        Some(token) => app.request_as(token, Method::GET, &url, None, &[]).await,
        None => {
            let resp = reqwest::get(&url).await.expect("request");
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.json().await.unwrap_or(Value::Null);
            Reply { status, headers, body }
        }
    }
}

/// Every row the endpoint gives for `filter` (`account=…` or empty), `limit` at a time,
/// following `next_cursor`; and the last page's `as_of`.
async fn every_page(app: &TestApp, token: &str, filter: &str, limit: u32) -> (Vec<Value>, Value) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = format!("?limit={limit}");
        if !filter.is_empty() {
            query.push_str(&format!("&{filter}"));
        }
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let r = get_access(app, Some(token), &query).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        let page = rows(&r.body);
        assert!(page.len() <= limit as usize, "{}", r.body);
        out.extend(page);
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (out, r.body["as_of"].clone()),
        }
    }
}

/// Assigns a user directly, as an admin in the console would.
async fn assign_user_by_hand(moto: &Moto, account: &str, permission_set_arn: &str, user_id: &str) {
    moto.sso
        .create_account_assignment()
        .instance_arn(&moto.instance_arn)
        .target_id(account)
        .target_type(TargetType::AwsAccount)
        .permission_set_arn(permission_set_arn)
        .principal_type(PrincipalType::User)
        .principal_id(user_id)
        .send()
        .await
        .expect("CreateAccountAssignment");
}

fn account_rule(principal: &str, permission_set: &str, account: &str) -> String {
    format!(
        "\n[[assignments.account]]\n{principal}\npermission_set = \"{permission_set}\"\naccounts = [\"{account}\"]\n"
    )
}

async fn the_report_matches_what_aws_holds_row_by_row(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    app.create_user("carol@example.com").await;
    app.create_user("dave@example.com").await;
    app.create_group("AWS - Ops", &[&alice, &bob]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let power_user = moto.create_permission_set("PowerUser").await;
    let rules = format!(
        "{}{}\n[[assignments.application]]\ngroup = \"AWS - Ops\"\napplication_arn = \"{APP}\"\n",
        account_rule("group = \"AWS - Ops\"", "ViewOnly", A),
        account_rule("user = \"carol@example.com\"", "PowerUser", B),
    );
    let (code, report) = sync(&app, &moto, &rules, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "create_account_assignment"), 2, "{report}");

    // An admin assigns bob by hand; then a rule wants the same: the full run finds it in AWS
    // and records it as foreign (never the bridge's to delete).
    let bob_aws = moto.users().await["bob@example.com"].clone();
    assign_user_by_hand(&moto, C, &power_user, &bob_aws).await;
    let rules = format!("{rules}{}", account_rule("user = \"bob@example.com\"", "PowerUser", C));
    let (code, full) = sync(&app, &moto, &rules, &["--full"]);
    assert_eq!(code, 0, "{full}");
    assert_eq!(count(&full, "found_existing_assignment"), 1, "{full}");

    let sets = [
        (A, "ViewOnly", view_only.as_str()),
        (B, "PowerUser", power_user.as_str()),
        (C, "PowerUser", power_user.as_str()),
    ];
    let aws = what_aws_holds(&moto, &sets).await;
    // Two members through the group in A and in the application, carol in B, bob in C.
    assert_eq!(aws.len(), 6, "{aws:?}");

    // The whole report, as JSON: the rows AWS implies, each with its rule, source and state.
    let report = access_json(&app, &[]);
    let all = rows(&report);
    assert_eq!(reaches(&all), aws, "{report}");
    for row in &all {
        let (rule, state) = (row["rule"].as_str(), row["state"].as_str());
        let expected = match (row["target"].as_str(), row["via"].as_str()) {
            (Some(A), Some("AWS - Ops")) => "assignments.account[0]",
            (Some(B), Some("direct")) => "assignments.account[1]",
            (Some(APP), Some("AWS - Ops")) => "assignments.application[0]",
            (Some(C), Some("direct")) => "foreign",
            _ => panic!("unexpected row {row}"),
        };
        assert_eq!(rule, Some(expected), "{row}");
        assert_eq!(state, Some(if expected == "foreign" { "foreign" } else { "created" }), "{row}");
        assert_eq!(row["source"], "test", "{row}");
        let user_aws = moto.users().await[row["user"].as_str().unwrap_or_default()].clone();
        assert_eq!(row["user_id"], json!(user_aws), "{row}");
    }
    // Ordered by user name, target, permission set, path.
    let order: Vec<(String, String)> = all
        .iter()
        .map(|r| (r["user"].as_str().unwrap().to_owned(), r["target"].as_str().unwrap().to_owned()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    // How old: the full run is the last full run that succeeded, and the last run.
    let full_id = full["run_id"].clone();
    assert_eq!(report["as_of"]["last_full_run"]["run_id"], full_id, "{report}");
    assert_eq!(report["as_of"]["last_run"]["run_id"], full_id, "{report}");

    // One account: exactly AWS's rows in it.
    let in_a: BTreeSet<Reach> = aws.iter().filter(|r| r.2 == A).cloned().collect();
    assert_eq!(in_a.len(), 2);
    assert_eq!(reaches(&rows(&access_json(&app, &["--account", A]))), in_a);
    // One user, named in another case: bob's three rows (the group in A and in the
    // application, and the assignment made by hand).
    let of_bob: BTreeSet<Reach> =
        aws.iter().filter(|r| r.0 == "bob@example.com").cloned().collect();
    assert_eq!(of_bob.len(), 3);
    assert_eq!(reaches(&rows(&access_json(&app, &["--user", "BOB@example.com"]))), of_bob);
    let through_ops: BTreeSet<Reach> = aws.iter().filter(|r| r.4 == "AWS - Ops").cloned().collect();
    assert_eq!(reaches(&rows(&access_json(&app, &["--group", "aws - ops"]))), through_ops);
    let power: BTreeSet<Reach> =
        aws.iter().filter(|r| r.3.as_deref() == Some("PowerUser")).cloned().collect();
    assert_eq!(reaches(&rows(&access_json(&app, &["--permission-set", "PowerUser"]))), power);
    // dave reaches nothing: an empty report, not an error.
    assert!(rows(&access_json(&app, &["--user", "dave@example.com"])).is_empty());

    // CSV: a header row, then the same rows.
    let (code, csv, stderr) = access(&app, &["--csv"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("the last full run that succeeded finished"), "{stderr}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        [
            "user",
            "user_id",
            "kind",
            "target",
            "permission_set",
            "via",
            "rule",
            "source",
            "state",
            "principal_id"
        ]
    );
    let from_csv: Vec<Value> = reader
        .records()
        .map(|r| {
            let r = r.expect("a CSV record");
            let field = |i: usize| if r[i].is_empty() { Value::Null } else { json!(r[i]) };
            json!({"user": field(0), "kind": field(2), "target": field(3),
                   "permission_set": field(4), "via": field(5), "rule": field(6),
                   "principal_id": field(9)})
        })
        .collect();
    assert_eq!(reaches(&from_csv), aws);
    let foreign: Vec<&Value> = from_csv.iter().filter(|r| r["rule"] == "foreign").collect();
    assert_eq!(foreign.len(), 1, "{csv}");
    assert_eq!(foreign[0]["target"], C);

    // The table: a header, a line per row, the age on stderr.
    let (code, table, stderr) = access(&app, &["--account", A]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("USER") && lines[0].contains("PERMISSION SET"), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[1..].iter().all(|l| l.contains("ViewOnly") && l.contains("AWS - Ops")),
        "{table}"
    );
    assert!(stderr.contains("access as recorded by the bridge"), "{stderr}");

    // The admin API: the same rows, one page at a time, whatever the page size.
    let token = admin_token(&app).await;
    for limit in [1, 2, 1000] {
        let (paged, as_of) = every_page(&app, &token, "", limit).await;
        assert_eq!(paged, all, "{limit} a page");
        assert_eq!(as_of, report["as_of"]);
    }
    let (in_a_paged, _) = every_page(&app, &token, &format!("account={A}"), 1).await;
    assert_eq!(reaches(&in_a_paged), in_a);
    let (bob_paged, _) = every_page(&app, &token, "user=bob%40example.com", 2).await;
    assert_eq!(reaches(&bob_paged), of_bob);
}

async fn hostile_requests_for_the_report_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let token = admin_token(&app).await;
    let no_token = get_access(&app, None, "").await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED, "{}", no_token.body);
    // A source's SCIM token is not an admin token.
    let scim = get_access(&app, Some(&app.token), "").await;
    assert_eq!(scim.status, StatusCode::FORBIDDEN, "{}", scim.body);

    let ok = get_access(&app, Some(&token), "").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["rows"], json!([]));
    assert_eq!(ok.body["next_cursor"], Value::Null);
    assert_eq!(ok.body["as_of"], json!({"last_full_run": null, "last_run": null}));

    // A cursor of another query (written by this server for a real row position).
    let position = json!({"v": 1, "f": {"by": "account", "value": A}, "p": {
        "user_name": "a", "target": A, "permission_set": "", "via": "direct",
        "user_id": "u", "holder_id": "u"}});
    let other_query = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position.to_string())
    };
    let too_long = format!("?cursor={}", "A".repeat(10_000));
    let mixed_up = format!("?cursor={other_query}");
    for (query, says) in [
        ("?user=alice&group=Ops", "mutually exclusive"),
        ("?account=111111111111&permission_set=ReadOnly", "mutually exclusive"),
        ("?account=12345", "not an AWS account id"),
        ("?account=11111111111x", "not an AWS account id"),
        ("?limit=5000", "1 to 1000"),
        ("?limit=0", "1 to 1000"),
        ("?limit=-1", "1 to 1000"),
        ("?cursor=garbage!", "not one this server wrote"),
        ("?cursor=eyJ2IjoxfQ", "not one this server wrote"),
        (too_long.as_str(), "not one this server wrote"),
        (mixed_up.as_str(), "other filters"),
        ("?acount=111111111111", "unknown field"),
        ("?user=", "empty"),
    ] {
        let r = get_access(&app, Some(&token), query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{query}: {}", r.body);
    }
    // The same cursor with its own query is fine.
    let r = get_access(&app, Some(&token), &format!("?account={A}&cursor={other_query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The CLI: usage errors exit 2.
    for args in
        [&["--account", "12345"][..], &["--user", "alice", "--group", "Ops"], &["--json", "--csv"]]
    {
        let (code, _, stderr) = access(&app, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
}
