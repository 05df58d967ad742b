//! Microsoft Entra ID's request sequence, from reference `scim-and-idp-clients.md` §2.2 (the
//! Entra provisioning doc and its SCIM compatibility doc): Test Connection on a random GUID,
//! create with the enterprise extension, explicit nulls and the `…enterprise:2.0User` typo,
//! `externalId eq <unquoted>`, per-attribute PATCHes, manager as an array and as a string,
//! `active` as `"False"`, groups created empty with the ADSCIM schema, members added and removed
//! by value array, rename, user and group DELETE.
//!
//! Run twice: Entra's default PATCH dialect (capitalised ops, string booleans, one op per path,
//! member removal by value array) and the RFC dialect of the `aadOptscim062020` Tenant-URL flag
//! (lower-case ops, JSON booleans, one no-path op with dotted and URN keys, removal by filter).

use super::{
    ENTERPRISE, GROUP_SCHEMA, Idp, Replay, USER_SCHEMA, assert_no_content, created_id, list_total,
    patch, sorted,
};
use crate::on_both_backends;
use crate::support::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    entra_mode,
    generic_mode,
    auto_mode,
    flag_entra_mode,
    flag_generic_mode,
    flag_auto_mode,
);

async fn entra_mode(b: Backend) {
    replay(b, &ENTRA, "entra").await
}

async fn generic_mode(b: Backend) {
    replay(b, &ENTRA, "generic").await
}

async fn auto_mode(b: Backend) {
    replay(b, &ENTRA, "auto").await
}

async fn flag_entra_mode(b: Backend) {
    replay(b, &ENTRA_FLAG, "entra").await
}

async fn flag_generic_mode(b: Backend) {
    replay(b, &ENTRA_FLAG, "generic").await
}

async fn flag_auto_mode(b: Backend) {
    replay(b, &ENTRA_FLAG, "auto").await
}

/// Entra sends no User-Agent of its own in the documented requests.
const ENTRA: Idp = Idp {
    source: "entra",
    user_agent: None,
    content_type: "application/scim+json",
    query_suffix: None,
    detected_as: "entra",
};

const ENTRA_FLAG: Idp = Idp { query_suffix: Some("aadOptscim062020"), ..ENTRA };

const ADSCIM_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

/// The PATCH dialect: Entra's default, or RFC 7644 with `aadOptscim062020`.
#[derive(Clone, Copy)]
struct Dialect {
    rfc: bool,
}

impl Dialect {
    /// `Add`/`Replace`/`Remove` by default, lower case with the flag.
    fn op(self, op: &str) -> String {
        if self.rfc {
            op.to_owned()
        } else {
            let mut c = op.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
        }
    }

    /// `"False"`/`"True"` by default, JSON booleans with the flag.
    fn boolean(self, b: bool) -> Value {
        match (self.rfc, b) {
            (true, b) => json!(b),
            (false, true) => json!("True"),
            (false, false) => json!("False"),
        }
    }

    /// The profile update: one op per path by default; with the flag, one no-path `replace`
    /// with dotted and URN keys (the filtered email path and the added attribute stay ops).
    fn profile_update(self) -> Value {
        let email = json!({
            "op": self.op("replace"),
            "path": "emails[type eq \"work\"].value",
            "value": "ann.jones@fabrikam.com"
        });
        let nick = json!({"op": self.op("add"), "path": "nickName", "value": "Babs"});
        if self.rfc {
            patch(json!([email, {"op": "replace", "value": {
                "displayName": "Anna Jones-Smith",
                "name.givenName": "Anna",
                "name.familyName": "Jones-Smith",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1002"
            }}, nick]))
        } else {
            let replace =
                |path: &str, value: &str| json!({"op": "Replace", "path": path, "value": value});
            patch(json!([
                email,
                replace("displayName", "Anna Jones-Smith"),
                replace("name.givenName", "Anna"),
                replace("name.familyName", "Jones-Smith"),
                replace(
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
                    "1002"
                ),
                nick
            ]))
        }
    }

    /// Removing one member: a value array by default, a filter path with the flag.
    fn remove_member(self, id: &str) -> Value {
        if self.rfc {
            patch(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]))
        } else {
            patch(json!([{"op": "Remove", "path": "members", "value": [{"value": id}]}]))
        }
    }
}

/// Entra's create body: the legacy doc's example with explicit nulls and the schema typo, plus
/// the enterprise extension the current doc's example carries.
fn entra_user(user_name: &str, external_id: &str, given: &str, family: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "externalId": external_id,
        "userName": user_name,
        "active": true,
        "addresses": null,
        "nickName": null,
        "displayName": format!("{given} {family}"),
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": format!("{given} {family}"),
            "familyName": family,
            "givenName": given
        },
        "phoneNumbers": null,
        "preferredLanguage": null,
        "title": null,
        "department": null,
        "manager": null,
        "roles": [],
        ENTERPRISE: {"employeeNumber": "1001", "department": "Sales", "manager": null}
    })
}

async fn replay(b: Backend, idp: &Idp, mode: &'static str) {
    let dialect = Dialect { rfc: idp.query_suffix.is_some() };
    let run = Replay::start(b, idp, mode).await;
    let entra = &run.idp;

    // Test Connection: a filter on a random GUID must answer 200 with an empty list.
    let guid = uuid::Uuid::new_v4();
    assert_eq!(run.filter_total("/Users", &format!("userName eq \"{guid}\""), "").await, 0);

    let ann = create_user(&run, "ann.jones@contoso.com", "ajones", "Ann", "Jones").await;
    let r = run.user(&ann).await;
    assert!(
        r.get("addresses").is_none() && r.get("nickName").is_none(),
        "nulls are unassigned: {r}"
    );
    // Matched by externalId, unquoted (the mailNickname).
    assert_eq!(run.filter_total("/Users", "externalId eq ajones", "").await, 1);

    // Profile update, one PATCH.
    let r = entra.patch(&format!("/Users/{ann}"), &dialect.profile_update()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Manager: the doc's array of {$ref, value}, then the plain string of other reports.
    let bob = create_user(&run, "bob.smith@contoso.com", "bsmith", "Bob", "Smith").await;
    let carol = create_user(&run, "carol.white@contoso.com", "cwhite", "Carol", "White").await;
    let manager = json!([{"op": dialect.op("add"), "path": "manager", "value": [
        {"$ref": format!("{}/Users/{bob}", run.app.base), "value": bob}
    ]}]);
    let r = entra.patch(&format!("/Users/{ann}"), &patch(manager)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(run.user(&ann).await[ENTERPRISE]["manager"]["value"], bob.as_str());
    let manager =
        json!([{"op": dialect.op("add"), "path": format!("{ENTERPRISE}:manager"), "value": carol}]);
    let r = entra.patch(&format!("/Users/{ann}"), &patch(manager)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(run.user(&ann).await[ENTERPRISE]["manager"]["value"], carol.as_str());

    // Disable, then enable: PATCH `active`.
    for active in [false, true] {
        let value = dialect.boolean(active);
        let body = patch(json!([{"op": dialect.op("replace"), "path": "active", "value": value}]));
        let r = entra.patch(&format!("/Users/{ann}"), &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["active"], active, "{}", r.body);
    }

    // Groups: looked up, created without members, read without members.
    let by_name = |name: &str| {
        format!(
            "/Groups?excludedAttributes=members&filter={}",
            crate::support::enc(&format!("displayName eq \"{name}\""))
        )
    };
    assert_eq!(list_total(&entra.get(&by_name("Sales")).await), 0);
    let r = entra
        .post(
            "/Groups",
            &json!({
                "schemas": [GROUP_SCHEMA, ADSCIM_GROUP],
                "externalId": "5b6c1a0e-7d3f-4c2a-9e8b-1f2d3c4b5a69",
                "displayName": "Sales",
                "meta": {"resourceType": "Group"},
                "members": []
            }),
        )
        .await;
    let gid = created_id(&r);
    let group = format!("/Groups/{gid}");
    let r = entra.get(&by_name("Sales")).await;
    assert_eq!(list_total(&r), 1);
    assert_eq!(r.body["Resources"][0]["id"], gid.as_str());
    assert!(r.body["Resources"][0].get("members").is_none(), "{}", r.body);
    let r = entra.get(&format!("{group}?excludedAttributes=members")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("members").is_none(), "{}", r.body);

    // Members: added as a value array with `$ref: null`, one removed.
    let add = patch(json!([{"op": dialect.op("add"), "path": "members", "value": [
        {"$ref": null, "value": ann}, {"$ref": null, "value": bob}
    ]}]));
    assert_no_content(&entra.patch(&group, &add).await);
    assert_eq!(run.members(&gid).await, sorted(&[&ann, &bob]));
    assert_no_content(&entra.patch(&group, &dialect.remove_member(&ann)).await);
    assert_eq!(run.members(&gid).await, sorted(&[&bob]), "only the listed member is removed");

    // Rename: the members stay.
    let rename =
        patch(json!([{"op": dialect.op("replace"), "path": "displayName", "value": "Sales EMEA"}]));
    assert_no_content(&entra.patch(&group, &rename).await);
    let r = entra.get(&group).await;
    assert_eq!(r.body["displayName"], "Sales EMEA");
    assert_eq!(super::member_ids(&r.body), sorted(&[&bob]));

    // A deleted user leaves its groups; then the group is deleted.
    let r = entra.delete(&format!("/Users/{bob}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(run.members(&gid).await.is_empty());
    let r = entra.delete(&group).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Final state.
    let user = run.user(&ann).await;
    assert_eq!(user["active"], true);
    assert_eq!(user["displayName"], "Anna Jones-Smith");
    assert_eq!(user["name"]["givenName"], "Anna");
    assert_eq!(user["name"]["familyName"], "Jones-Smith");
    assert_eq!(user["nickName"], "Babs");
    let emails = user["emails"].as_array().expect("emails");
    assert_eq!(emails.len(), 1, "the work email was replaced in place: {user}");
    assert_eq!(
        (&emails[0]["type"], &emails[0]["value"]),
        (&json!("work"), &json!("ann.jones@fabrikam.com"))
    );
    assert_eq!(user[ENTERPRISE]["employeeNumber"], "1002");
    assert_eq!(user[ENTERPRISE]["manager"]["value"], carol.as_str());
    assert_eq!(run.filter_total("/Users", "externalId eq ajones", "").await, 1);
    run.assert_gone("Users", &bob).await;
    run.user(&carol).await;
    run.assert_gone("Groups", &gid).await;
    assert_eq!(list_total(&entra.get(&by_name("Sales EMEA")).await), 0);
    run.finish(&ann).await;
}

/// Entra's lookup by userName (nothing found), then the create.
async fn create_user(
    run: &Replay,
    user_name: &str,
    external_id: &str,
    given: &str,
    family: &str,
) -> String {
    assert_eq!(run.filter_total("/Users", &format!("userName eq \"{user_name}\""), "").await, 0);
    let r = run.idp.post("/Users", &entra_user(user_name, external_id, given, family)).await;
    let id = created_id(&r);
    assert_eq!(r.body["userName"], user_name);
    assert_eq!(r.body["externalId"], external_id);
    id
}
