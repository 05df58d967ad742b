//! Filters run in the database: operators, logic, value paths, URNs, case rules, errors.

use crate::on_both_backends;
use crate::support::{Backend, TestApp, enc, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    filter_semantics,
    filter_errors,
    group_filters,
    entra_connection_test,
    non_ascii_values
);

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn seed(app: &TestApp) {
    let people = [
        ("alice@example.com", "Alice", true, "Sales", "work", "alice@example.com"),
        ("bob@example.org", "Bob", false, "Support", "home", "bob@home.example"),
        ("carol@example.com", "Carol", true, "Sales", "work", "CAROL@EXAMPLE.COM"),
        ("dan@other.net", "Dan", true, "Engineering", "work", "dan@other.net"),
    ];
    for (user_name, given, active, dept, email_type, email) in people {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "userName": user_name,
            "externalId": format!("ext-{given}"),
            "name": {"givenName": given, "familyName": "Test"},
            "active": active,
            "emails": [{"value": email, "type": email_type, "primary": true}],
            ENT: {"department": dept}
        });
        let r = app.post("/Users", &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
}

/// The userNames a filter selects, sorted.
async fn names(app: &TestApp, filter: &str) -> Vec<String> {
    let r = app.get(&format!("/Users?filter={}", enc(filter))).await;
    assert_eq!(r.status, StatusCode::OK, "filter {filter}: {}", r.body);
    let mut v: Vec<String> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    assert_eq!(r.body["totalResults"], v.len(), "totalResults for {filter}");
    v
}

async fn filter_semantics(b: Backend) {
    let app = spawn_app(b).await;
    seed(&app).await;
    let cases: &[(&str, &[&str])] = &[
        (r#"userName eq "ALICE@example.com""#, &["alice@example.com"]),
        (r#"UserName Eq "alice@example.com""#, &["alice@example.com"]),
        (
            r#"userName ne "alice@example.com""#,
            &["bob@example.org", "carol@example.com", "dan@other.net"],
        ),
        (
            r#"userName co "example""#,
            &["alice@example.com", "bob@example.org", "carol@example.com"],
        ),
        (r#"userName sw "CA""#, &["carol@example.com"]),
        (r#"userName ew ".net""#, &["dan@other.net"]),
        (r#"userName gt "c""#, &["carol@example.com", "dan@other.net"]),
        (r#"userName le "bob@example.org""#, &["alice@example.com", "bob@example.org"]),
        (r#"externalId eq "ext-Bob""#, &["bob@example.org"]),
        (r#"externalId eq "EXT-BOB""#, &[]),
        (r#"active eq false"#, &["bob@example.org"]),
        (r#"title pr"#, &[]),
        (r#"name.givenName eq "dan""#, &["dan@other.net"]),
        (r#"emails co "example.com""#, &["alice@example.com", "carol@example.com"]),
        (r#"emails.value eq "carol@example.com""#, &["carol@example.com"]),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            &["alice@example.com", "carol@example.com"],
        ),
        (r#"emails[type eq "work"].value eq "dan@other.net""#, &["dan@other.net"]),
        (r#"emails[not (type eq "work")]"#, &["bob@example.org"]),
        (r#"not (active eq true) or userName sw "d""#, &["bob@example.org", "dan@other.net"]),
        (r#"userName sw "a" or userName sw "b" and active eq true"#, &["alice@example.com"]),
        (r#"(userName sw "a" or userName sw "b") and active eq false"#, &["bob@example.org"]),
        (&format!(r#"{ENT}:department eq "sales""#), &["alice@example.com", "carol@example.com"]),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "dan@other.net""#,
            &["dan@other.net"],
        ),
        (r#"meta.resourceType eq "User" and name.givenName sw "B""#, &["bob@example.org"]),
        (
            r#"meta.lastModified gt "2000-01-01T00:00:00Z""#,
            &["alice@example.com", "bob@example.org", "carol@example.com", "dan@other.net"],
        ),
        (r#"meta.created lt "2000-01-01T00:00:00Z""#, &[]),
        (
            r#"title eq null"#,
            &["alice@example.com", "bob@example.org", "carol@example.com", "dan@other.net"],
        ),
        (r#"userName eq "it's \"quoted\"""#, &[]),
        (r#"userName co "%""#, &[]),
        (r#"userName co "_""#, &[]),
        // Unquoted values (Entra, authentik) in the default compatibility mode.
        (r#"externalId eq ext-Dan"#, &["dan@other.net"]),
        (r#"userName eq alice@example.com"#, &["alice@example.com"]),
    ];
    for (filter, expected) in cases {
        let got = names(&app, filter).await;
        assert_eq!(got, *expected, "filter {filter}");
    }
}

async fn filter_errors(b: Backend) {
    let app = spawn_app(b).await;
    seed(&app).await;
    for bad in [
        r#"userName eq"#,
        r#"userName xx "a""#,
        r#"(userName eq "a""#,
        r#"active gt true"#,
        r#"email co "x""#,
        r#"name eq "x""#,
        r#"emails[type eq "work""#,
        r#"userName eq "a" and"#,
    ] {
        let r = app.get(&format!("/Users?filter={}", enc(bad))).await;
        r.assert_error(400, Some("invalidFilter"));
    }
    let r = app.get(&format!("/Users?filter={}", enc(r#"userName eq "a" garbage"#))).await;
    r.assert_error(400, Some("invalidFilter"));
    assert!(r.body["detail"].as_str().unwrap().contains("position"), "says where: {}", r.body);
    let deep = format!("{}userName eq \"a\"{}", "(".repeat(5000), ")".repeat(5000));
    let r = app.get(&format!("/Users?filter={}", enc(&deep))).await;
    assert_eq!(r.status.as_u16(), 400, "deep nesting is refused");
    let many = vec![r#"userName eq "a""#; 400].join(" or ");
    let r = app.get(&format!("/Users?filter={}", enc(&many))).await;
    r.assert_error(400, Some("invalidFilter"));
}

async fn group_filters(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let u2 = app.create_user("b@example.com").await;
    let g1 = app.create_group("AWS - Admins", &[&u1]).await;
    let _g2 = app.create_group("AWS - Readers", &[&u2]).await;
    let r =
        app.get(&format!("/Groups?filter={}", enc(&format!("members.value eq \"{u1}\"")))).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert_eq!(r.body["Resources"][0]["id"], g1.as_str());
    let r = app
        .get(&format!(
            "/Groups?filter={}&excludedAttributes=members",
            enc(r#"displayName eq "aws - admins""#)
        ))
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());
    let r = app.get(&format!("/Users?filter={}", enc(&format!("groups.value eq \"{g1}\"")))).await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], u1.as_str());
    let r = app
        .get(&format!("/Groups?filter={}", enc(r#"members[display eq "Display b@example.com"]"#)))
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
}

async fn entra_connection_test(b: Backend) {
    let app = spawn_app(b).await;
    let guid = uuid::Uuid::new_v4();
    for f in [
        format!("id eq \"{guid}\""),
        format!("userName eq \"{guid}\""),
        "id eq \"not-a-uuid\"".into(),
    ] {
        let r = app.get(&format!("/Users?filter={}", enc(&f))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["totalResults"], 0);
        assert_eq!(r.body["Resources"], json!([]));
    }
}

async fn non_ascii_values(b: Backend) {
    let app = spawn_app(b).await;
    let mut body = crate::support::user("emile@example.com");
    body["displayName"] = json!("ÉMILE Zoë");
    body["name"] = json!({"givenName": "Émile"});
    assert_eq!(app.post("/Users", &body).await.status, StatusCode::CREATED);
    // A stored value always matches itself, whatever the database's case folding.
    for f in
        [r#"displayName eq "ÉMILE Zoë""#, r#"name.givenName sw "É""#, r#"displayName co "Zoë""#]
    {
        assert_eq!(names(&app, f).await, ["emile@example.com"], "{f}");
    }
    // userName folds in the server (Unicode-aware) on both backends.
    app.create_user("ÅSA@example.com").await;
    assert_eq!(names(&app, r#"userName eq "åsa@EXAMPLE.com""#).await, ["ÅSA@example.com"]);
}
