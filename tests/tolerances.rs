//! The tolerance list (reference `scim-and-idp-clients.md` §2.6), one item at a time: what a
//! lenient source (`generic`; every IdP mode is the same) accepts and what it makes of it, and
//! what the `strict` mode answers instead. RFC-legal forms that IdPs rely on (operators in any
//! case, members without `type`, `replace members []`) are checked in both modes.

use crate::on_both_backends;
use crate::support::{Backend, Reply, TestApp, enc, group, patch_op, spawn_app, user};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(patch_shapes, filter_shapes, create_shapes, rfc_forms_in_both_modes);

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// One app, two sources: `test` (generic) and `rfc` (strict).
struct Modes {
    app: TestApp,
    strict: String,
}

impl Modes {
    async fn start(b: Backend) -> Modes {
        let app = spawn_app(b).await;
        let strict = app.token_for("rfc", Some("strict")).await;
        Modes { app, strict }
    }

    async fn as_generic(&self, m: Method, path: &str, body: Option<&Value>) -> Reply {
        self.app.request(m, path, body).await
    }

    async fn as_strict(&self, m: Method, path: &str, body: Option<&Value>) -> Reply {
        self.app.request_as(&self.strict, m, path, body, &[]).await
    }

    /// A fresh user in each source; returns (generic id, strict id).
    async fn users(&self, name: &str) -> (String, String) {
        let g = self.as_generic(Method::POST, "/Users", Some(&user(&format!("g-{name}")))).await;
        let s = self.as_strict(Method::POST, "/Users", Some(&user(&format!("s-{name}")))).await;
        assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
        assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
        (id(&g), id(&s))
    }

    /// PATCHes each source's user with `ops`: the generic reply, and the strict one (which must
    /// be a 400 with `scim_type`), and the strict user must be unchanged.
    async fn patch_user(&self, name: &str, ops: Value, scim_type: &str) -> Value {
        let (g, s) = self.users(name).await;
        let before = self.as_strict(Method::GET, &format!("/Users/{s}"), None).await.body;
        let body = patch_op(ops);
        let r = self.as_strict(Method::PATCH, &format!("/Users/{s}"), Some(&body)).await;
        r.assert_error(400, Some(scim_type));
        let after = self.as_strict(Method::GET, &format!("/Users/{s}"), None).await.body;
        assert_eq!(before, after, "a rejected PATCH changes nothing");
        let r = self.as_generic(Method::PATCH, &format!("/Users/{g}"), Some(&body)).await;
        assert_eq!(r.status, StatusCode::OK, "generic accepts it: {}", r.body);
        r.body
    }
}

fn id(r: &Reply) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id: {}", r.body)).to_owned()
}

async fn patch_shapes(b: Backend) {
    let m = Modes::start(b).await;

    // 1. `op` in any case (Entra).
    let u = m
        .patch_user(
            "op",
            json!([{"op": "Replace", "path": "displayName", "value": "X"}]),
            "invalidSyntax",
        )
        .await;
    assert_eq!(u["displayName"], "X");

    // 2. Booleans as strings (Entra).
    let u = m
        .patch_user(
            "bool",
            json!([{"op": "replace", "path": "active", "value": "False"}]),
            "invalidValue",
        )
        .await;
    assert_eq!(u["active"], false);

    // 3. A no-path value with dotted and URN-qualified keys (Entra with aadOptscim062020).
    let ops = json!([{"op": "replace", "value": {
        "name.givenName": "Kkom",
        format!("{ENTERPRISE}:employeeNumber"): "Aklq"
    }}]);
    let u = m.patch_user("dotted", ops, "invalidPath").await;
    assert_eq!(u["name"]["givenName"], "Kkom");
    assert_eq!(u["name"]["familyName"], "Family", "siblings stay");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "Aklq");

    // 5. A filtered path that matches nothing creates the element, and adds with the same
    // filter merge into it (Entra; SCIM-SDK#680).
    let ops = json!([
        {"op": "add", "path": "addresses[type eq \"work\"].formatted", "value": "1 Main St"},
        {"op": "add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"},
        {"op": "add", "path": "addresses[type eq \"work\"].region", "value": "IL"}
    ]);
    let u = m.patch_user("merge", ops, "noTarget").await;
    assert_eq!(
        u["addresses"],
        json!([{"type": "work", "formatted": "1 Main St", "locality": "Springfield", "region": "IL"}])
    );

    // 6. `manager` as a plain string (Entra), then removed by a replace with an empty value.
    let (manager, _) = m.users("manager-target").await;
    let ops = json!([{"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": manager}]);
    let u = m.patch_user("manager", ops, "invalidValue").await;
    assert_eq!(u[ENTERPRISE]["manager"]["value"], manager.as_str());
    let uid = u["id"].as_str().unwrap();
    let clear =
        patch_op(json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": ""}]));
    let r = m.as_generic(Method::PATCH, &format!("/Users/{uid}"), Some(&clear)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get(ENTERPRISE).and_then(|e| e.get("manager")).is_none(), "{}", r.body);

    // 13. An empty `Operations` list is a no-op (Microsoft SCIM Validator).
    let u = m.patch_user("empty", json!([]), "invalidValue").await;
    assert_eq!(u["meta"]["version"], "W/\"1\"", "no change, no new version: {u}");

    // 4. `remove` on members with a value array removes only those (Entra, authentik).
    let (g1, s1) = m.users("member-1").await;
    let (g2, s2) = m.users("member-2").await;
    let gg = id(&m.as_generic(Method::POST, "/Groups", Some(&group("G", &[&g1, &g2]))).await);
    let sg = id(&m.as_strict(Method::POST, "/Groups", Some(&group("S", &[&s1, &s2]))).await);
    let remove =
        |v: &str| patch_op(json!([{"op": "remove", "path": "members", "value": [{"value": v}]}]));
    let r = m.as_strict(Method::PATCH, &format!("/Groups/{sg}"), Some(&remove(&s1))).await;
    r.assert_error(400, Some("invalidValue"));
    let r = m.as_generic(Method::PATCH, &format!("/Groups/{gg}"), Some(&remove(&g1))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(m.app.member_ids(&gg).await, vec![g2.clone()], "only the listed member left");
    let sg_members = m.as_strict(Method::GET, &format!("/Groups/{sg}"), None).await.body;
    assert_eq!(sg_members["members"].as_array().map(Vec::len), Some(2), "strict kept both");
}

async fn filter_shapes(b: Backend) {
    let m = Modes::start(b).await;
    m.users("filters").await;
    // 7. Unquoted values (Entra, authentik), and 15. Entra's `emails[…].value eq` form.
    for (filter, strict_code) in [
        ("userName eq g-filters", "invalidFilter"),
        ("emails[type eq \"work\"].value eq \"g-filters\"", "invalidFilter"),
    ] {
        let path = format!("/Users?filter={}", enc(filter));
        let r = m.as_generic(Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{filter}: {}", r.body);
        assert_eq!(r.body["totalResults"], 1, "{filter}: {}", r.body);
        m.as_strict(Method::GET, &path, None).await.assert_error(400, Some(strict_code));
    }
}

async fn create_shapes(b: Backend) {
    let m = Modes::start(b).await;
    // 10. Explicit nulls and Entra's schema typo; 11. Okta's `groups: []` and `password`.
    let mut u = user("shapes@example.com");
    u["schemas"] = json!([
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"
    ]);
    u["nickName"] = Value::Null;
    u["addresses"] = Value::Null;
    u["groups"] = json!([]);
    u["password"] = json!("s3cret-Passw0rd");
    let r = m.as_generic(Method::POST, "/Users", Some(&u)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("nickName").is_none() && r.body.get("password").is_none(), "{}", r.body);
    let r = m.as_strict(Method::POST, "/Users", Some(&u)).await;
    r.assert_error(400, Some("invalidSyntax"));
}

async fn rfc_forms_in_both_modes(b: Backend) {
    let m = Modes::start(b).await;
    let (g, s) = m.users("rfc").await;
    for (token_is_strict, uid, name) in [(false, &g, "g-rfc"), (true, &s, "s-rfc")] {
        let req = |method: Method, path: String, body: Option<Value>| {
            let m = &m;
            async move {
                if token_is_strict {
                    m.as_strict(method, &path, body.as_ref()).await
                } else {
                    m.as_generic(method, &path, body.as_ref()).await
                }
            }
        };
        // 16. Operators and attribute names in any case (PingOne).
        let path = format!("/Users?filter={}", enc(&format!("username Eq \"{name}\"")));
        let r = req(Method::GET, path, None).await;
        assert_eq!(r.body["totalResults"], 1, "{}", r.body);
        // 8. Members without `type`; 12. a no-path rename with {id, displayName}; 9. `[]`.
        let r =
            req(Method::POST, "/Groups".into(), Some(group(&format!("{name}-g"), &[uid]))).await;
        let gid = id(&r);
        let rename = patch_op(
            json!([{"op": "replace", "value": {"id": gid, "displayName": format!("{name}-renamed")}}]),
        );
        let r = req(Method::PATCH, format!("/Groups/{gid}"), Some(rename)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let r = req(Method::GET, format!("/Groups/{gid}"), None).await;
        assert_eq!(r.body["displayName"], format!("{name}-renamed"));
        assert_eq!(r.body["members"].as_array().map(Vec::len), Some(1), "rename kept members");
        let empty = patch_op(json!([{"op": "replace", "path": "members", "value": []}]));
        let r = req(Method::PATCH, format!("/Groups/{gid}"), Some(empty)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let r = req(Method::GET, format!("/Groups/{gid}"), None).await;
        assert!(r.body["members"].as_array().is_none_or(Vec::is_empty), "{}", r.body);
    }
}
