//! Issue 14's day-2 tools through the real binary: `show user|group`, `token list` with its
//! header and `--json`, and `audit --action/--name/--run`, with careless input.

use crate::on_both_backends;
use crate::support::binary::command;
use crate::support::moto::Moto;
use crate::support::{Backend, group, spawn_app, user};
use crate::sync::sync;
use reqwest::StatusCode;
use serde_json::Value;
use std::process::Output;

on_both_backends!(show_audit_and_token_list);

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn show_audit_and_token_list(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let run = |args: &[&str]| command(&app.url).args(args).output().expect("run scimbridge");
    let okta = app.token_for("okta", None).await;
    let post = |path: &'static str, body: Value| {
        let (client, token) = (app.client.clone(), okta.clone());
        let url = format!("{}{path}", app.base);
        async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
        }
    };
    let ana = post("/Users", user("ana@example.com")).await;
    post("/Users", user("bo@example.com")).await;
    post("/Groups", group("Admins", &[&ana])).await;
    let (code, first) = sync(&app, &moto, "", &[]);
    assert_eq!(code, 0, "{first}");
    // An AWS user made by hand holds cy's name, and okta may not adopt it: a recorded failure.
    moto.create_user("cy@example.com").await;
    post("/Users", user("cy@example.com")).await;
    let (_, second) = sync(&app, &moto, "", &[]);
    assert!(!second["errors"].as_array().unwrap().is_empty(), "{second}");

    // show user: by any case of the name.
    let out = run(&["show", "user", "ANA@example.com"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "User ana@example.com",
        "source:     okta",
        "created by the bridge",
        "groups:     1",
        "Admins",
        "(in AWS)",
        "failures:   none recorded",
        "\"userName\": \"ana@example.com\"",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let out = run(&["show", "user", "ana@example.com", "--source", "okta", "--json"]);
    let shown: Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    let aws_users = moto.users().await;
    assert_eq!(shown["aws"]["id"], aws_users["ana@example.com"], "{shown}");
    assert_eq!(shown["aws"]["ownership"], "created");
    assert_eq!(shown["source"], "okta");
    assert_eq!(shown["resource"]["id"], ana.as_str());
    assert_eq!(shown["groups"]["total"], 1);
    assert_eq!(shown["groups"]["first"][0]["name"], "Admins");
    assert_eq!(shown["groups"]["first"][0]["in_aws"], true);
    assert_eq!(shown["last_push"]["action"], "create");
    assert_eq!(shown["last_push"]["run_id"], first["run_id"]);

    // cy never reached AWS; the failure recorded for her is shown.
    let out = run(&["show", "user", "cy@example.com", "--json"]);
    let shown: Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(shown["aws"], Value::Null, "{shown}");
    assert_eq!(shown["last_push"], Value::Null);
    assert_eq!(shown["failures"][0]["run_id"], second["run_id"], "{shown}");
    assert_eq!(shown["failures"][0]["principal"], "cy@example.com");
    assert!(
        shown["failures"][0]["message"].as_str().unwrap().contains("adopt_existing"),
        "{shown}"
    );
    let text = stdout(&run(&["show", "user", "cy@example.com"]));
    assert!(text.contains("aws id:     - (not in AWS") && text.contains("failures:   1"), "{text}");

    let out = run(&["show", "group", "admins", "--limit", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("members:    1 (first 0)"), "{}", stdout(&out));

    let out = run(&["show", "user", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(1), "not found is exit 1");
    assert!(
        stderr(&out).contains("no user with userName \"nobody@example.com\""),
        "{}",
        stderr(&out)
    );
    let out = run(&["show", "group", "Admins", "--source", "okat"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no source named \"okat\""), "{}", stderr(&out));
    // A name belongs to one source; asking another one says which holds it.
    app.token_for("entra", None).await;
    let out = run(&["show", "group", "Admins", "--source", "entra"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("in source entra (source okta holds that name)"),
        "{}",
        stderr(&out)
    );

    // audit filters.
    let lines = |args: &[&str]| -> Vec<String> {
        let out = run(&[&["audit"][..], args].concat());
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out).lines().map(str::to_owned).collect()
    };
    let all = lines(&[]);
    let creates = lines(&["--action", "create"]);
    assert_eq!(creates.len(), 3, "ana, bo and Admins: {creates:?}");
    assert!(creates.iter().all(|l| l.contains(" create ")), "{creates:?}");
    assert!(all.len() > creates.len());
    let ana_rows = lines(&["--name", "ANA@example.com"]);
    assert_eq!(ana_rows.len(), 2, "her create and her membership: {ana_rows:?}");
    assert!(
        ana_rows.iter().any(|l| l.contains("add_member") && l.contains("Admins")),
        "{ana_rows:?}"
    );
    let run_id = first["run_id"].as_str().unwrap();
    let in_run = lines(&["--run", run_id, "--action", "add_member"]);
    assert_eq!(in_run.len(), 1, "{in_run:?}");
    let json = run(&["audit", "--json", "--name", "admins"]);
    let rows: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "the group's create and add_member: {rows}");
    assert!(
        lines(&["--run", second["run_id"].as_str().unwrap()]).is_empty(),
        "the second run changed nothing"
    );

    let out = run(&["audit", "--action", "created"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("create") && stderr(&out).contains("add_member"),
        "the known actions: {}",
        stderr(&out)
    );
    let out = run(&["audit", "--run", "last"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--run"), "{}", stderr(&out));

    // token list: a header row, and JSON objects with the same columns.
    let out = run(&["token", "list"]);
    let text = stdout(&out);
    let mut rows = text.lines();
    assert_eq!(rows.next(), Some("ID\tSOURCE\tCREATED\tEXPIRES\tLAST_USED\tSTATE\tCOMPAT"));
    assert_eq!(rows.count(), 3, "test, okta, entra: {text}");
    let out = run(&["token", "list", "--json"]);
    let tokens: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let okta_row = tokens.as_array().unwrap().iter().find(|t| t["source"] == "okta").expect("okta");
    for key in ["id", "created", "expires", "last_used", "state", "compat", "revoked"] {
        assert!(okta_row.get(key).is_some(), "{key} in {okta_row}");
    }
    assert_eq!(okta_row["state"], "live");
    assert_eq!(okta_row["expires"], Value::Null);
    assert!(okta_row["last_used"].is_string(), "the token was used: {okta_row}");
}
