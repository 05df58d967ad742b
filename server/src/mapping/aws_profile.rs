//! The built-in AWS profile: a SCIM resource as the Identity Store accepts it (reference
//! `aws-identity-center.md` §2.3, §5). Pure: no I/O, no AWS types — the adapter turns the shape
//! into SDK calls, and the planner diffs shapes attribute by attribute.
//!
//! What it does to a user:
//! - drops what AWS has no place for or rejects: `photos`, `ims`, `entitlements`,
//!   `x509Certificates`, `password`, `groups`, `active` (deactivation is a sync policy), `id`,
//!   `externalId`, `meta`, `schemas`;
//! - collapses `emails`, `phoneNumbers`, `addresses` and `roles` to one value each: the primary,
//!   else the `work` one, else the first;
//! - fills `name.givenName`, `name.familyName` and `displayName`, which AWS requires, from each
//!   other and from `userName`;
//! - never sends an empty string (an empty value is left out) and refuses a value AWS would
//!   refuse (a `userName` with whitespace, a text over 1,024 characters) with a message naming
//!   the attribute, so the run skips that one user instead of failing;
//! - moves the enterprise extension to `aws:identitystore:enterprise`, except `manager`, which
//!   names a SCIM user the engine must translate to an AWS user id.

use serde_json::{Map, Value, json};

/// A user or group in the Identity Store's terms: top-level attribute → value, keyed by the
/// Identity Store's attribute paths (`userName`, `name`, `emails`, …, `extensions`).
pub type AwsAttributes = Map<String, Value>;

/// The Identity Store's enterprise extension key.
pub const ENTERPRISE_EXTENSION: &str = "aws:identitystore:enterprise";

const SCIM_ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Free-text limit for every Identity Store string attribute.
const MAX_TEXT: usize = 1024;
/// `UserName` limit.
const MAX_USER_NAME: usize = 128;
/// User names the Identity Store reserves.
const RESERVED_USER_NAMES: &[&str] = &["Administrator", "AWSAdministrators"];

/// A user shaped for the Identity Store.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsUser {
    pub attributes: AwsAttributes,
    /// The SCIM id of the enterprise `manager`, for the engine to resolve to an AWS user id.
    pub manager_scim_id: Option<String>,
}

/// Why a resource cannot go to AWS as it is: shown per principal in the run, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

/// Single-valued strings copied as they are (after trimming; empty → left out).
pub(crate) const USER_TEXT: &[&str] = &[
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
];

pub(crate) const NAME_PARTS: &[&str] =
    &["formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"];

/// The sub-attributes kept of each collapsed multi-valued attribute.
const COLLAPSED: &[(&str, &[&str])] = &[
    ("emails", &["value", "type"]),
    ("phoneNumbers", &["value", "type"]),
    (
        "addresses",
        &["formatted", "streetAddress", "locality", "region", "postalCode", "country", "type"],
    ),
    ("roles", &["value", "type"]),
];

pub(crate) const ENTERPRISE_TEXT: &[&str] =
    &["employeeNumber", "costCenter", "organization", "division", "department"];

/// Shapes a SCIM user (the stored document) for the Identity Store.
pub fn shape_user(scim: &Value) -> Result<AwsUser, ShapeError> {
    let mut out = AwsAttributes::new();
    let user_name =
        text(scim, "userName")?.ok_or_else(|| ShapeError("userName is missing or empty".into()))?;
    check_user_name(&user_name)?;
    out.insert("userName".into(), json!(user_name));
    for attr in USER_TEXT {
        if let Some(v) = text(scim, attr)? {
            out.insert((*attr).into(), json!(v));
        }
    }

    let mut name = Map::new();
    if let Some(scim_name) = scim.get("name") {
        for part in NAME_PARTS {
            if let Some(v) = text(scim_name, part).map_err(|e| prefixed("name", e))? {
                name.insert((*part).into(), json!(v));
            }
        }
    }
    fill_names(&mut out, &mut name, &user_name);
    out.insert("name".into(), Value::Object(name));

    for (attr, keep) in COLLAPSED {
        if let Some(one) = collapse(scim.get(*attr), keep).map_err(|e| prefixed(attr, e))? {
            out.insert((*attr).into(), json!([one]));
        }
    }

    let mut manager_scim_id = None;
    if let Some(ext) = scim.get(SCIM_ENTERPRISE).filter(|v| v.is_object()) {
        let mut enterprise = Map::new();
        for attr in ENTERPRISE_TEXT {
            if let Some(v) = text(ext, attr).map_err(|e| prefixed(SCIM_ENTERPRISE, e))? {
                enterprise.insert((*attr).into(), json!(v));
            }
        }
        manager_scim_id = manager_scim_id_of(scim).map(str::to_owned);
        if !enterprise.is_empty() {
            out.insert("extensions".into(), json!({ ENTERPRISE_EXTENSION: enterprise }));
        }
    }
    Ok(AwsUser { attributes: out, manager_scim_id })
}

/// The SCIM id of a SCIM user's enterprise `manager`, if it names one.
pub fn manager_scim_id_of(scim: &Value) -> Option<&str> {
    scim.get(SCIM_ENTERPRISE)
        .and_then(|ext| ext.get("manager"))
        .and_then(|m| m.get("value"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Shapes a SCIM group: the Identity Store keeps only `displayName` (and a description SCIM
/// does not have); members are synced as memberships.
pub fn shape_group(scim: &Value) -> Result<AwsAttributes, ShapeError> {
    let name = text(scim, "displayName")?
        .ok_or_else(|| ShapeError("displayName is missing or empty".into()))?;
    let mut out = AwsAttributes::new();
    out.insert("displayName".into(), json!(name));
    Ok(out)
}

/// AWS requires givenName, familyName and displayName: each missing one is derived from the
/// others, then from `userName` (its part before `@`).
fn fill_names(out: &mut AwsAttributes, name: &mut Map<String, Value>, user_name: &str) {
    let get = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let display = get(out, "displayName");
    let formatted = get(name, "formatted");
    // The words to split a missing given/family name from: formatted, displayName, userName.
    let source = formatted
        .clone()
        .or_else(|| display.clone())
        .unwrap_or_else(|| user_name.split('@').next().unwrap_or(user_name).to_owned());
    let words: Vec<&str> = source.split_whitespace().collect();
    if get(name, "givenName").is_none() {
        let given = words.first().copied().unwrap_or(user_name);
        name.insert("givenName".into(), json!(clip(given)));
    }
    if get(name, "familyName").is_none() {
        // One word only: the same word serves as both, rather than an invented surname.
        let family = if words.len() > 1 {
            words[1..].join(" ")
        } else {
            words.first().map_or(user_name.to_owned(), |w| (*w).to_owned())
        };
        name.insert("familyName".into(), json!(clip(&family)));
    }
    if display.is_none() {
        let given = get(name, "givenName").unwrap_or_default();
        let family = get(name, "familyName").unwrap_or_default();
        let joined = if given == family { given } else { format!("{given} {family}") };
        let display = formatted.unwrap_or(joined);
        out.insert("displayName".into(), json!(clip(display.trim())));
    }
}

/// Truncates a derived value to the Identity Store's limit (sent values are checked instead).
fn clip(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

pub(crate) fn check_user_name(name: &str) -> Result<(), ShapeError> {
    if name.chars().count() > MAX_USER_NAME {
        return Err(ShapeError(format!(
            "userName \"{name}\" is longer than {MAX_USER_NAME} characters, the Identity Store's limit"
        )));
    }
    if let Some(c) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(ShapeError(format!(
            "userName \"{name}\" contains {c:?}; the Identity Store allows no whitespace or control characters in a userName"
        )));
    }
    if RESERVED_USER_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(ShapeError(format!("userName \"{name}\" is reserved by the Identity Store")));
    }
    Ok(())
}

/// A trimmed, non-empty string attribute; a non-string value or an over-long one is an error.
fn text(obj: &Value, key: &str) -> Result<Option<String>, ShapeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if s.chars().count() > MAX_TEXT {
                Err(ShapeError(format!(
                    "{key} is longer than {MAX_TEXT} characters, the Identity Store's limit"
                )))
            } else {
                Ok(Some(s.to_owned()))
            }
        }
        // Numbers and booleans where text is expected (e.g. an employeeNumber of 42): as text.
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(_) => Err(ShapeError(format!("{key} is not a single text value"))),
    }
}

/// One element of a multi-valued attribute (primary, else `work`, else first), with only the
/// `keep` sub-attributes that have a value, marked primary; None when nothing is left.
fn collapse(values: Option<&Value>, keep: &[&str]) -> Result<Option<Value>, ShapeError> {
    let Some(Value::Array(items)) = values else { return Ok(None) };
    let usable: Vec<&Value> = items
        .iter()
        .filter(|i| keep.iter().any(|k| *k != "type" && text(i, k).ok().flatten().is_some()))
        .collect();
    let is_true =
        |v: &Value| v.get("primary").is_some_and(|p| p == true || p == "true" || p == "True");
    let is_work = |v: &Value| {
        v.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("work"))
    };
    let Some(chosen) = usable
        .iter()
        .find(|v| is_true(v))
        .or_else(|| usable.iter().find(|v| is_work(v)))
        .or_else(|| usable.first())
    else {
        return Ok(None);
    };
    let mut one = Map::new();
    for k in keep {
        if let Some(v) = text(chosen, k)? {
            one.insert((*k).into(), json!(v));
        }
    }
    one.insert("primary".into(), json!(true));
    Ok(Some(Value::Object(one)))
}

fn prefixed(parent: &str, e: ShapeError) -> ShapeError {
    ShapeError(format!("{parent}.{}", e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authentik_user() -> Value {
        json!({
            "userName": "alice@example.com",
            "name": {"formatted": "Alice Liddell", "givenName": "Alice", "familyName": "Liddell"},
            "displayName": "Alice Liddell",
            "photos": [{"value": "https://example.com/a.png", "type": "photo"}],
            "locale": "en-GB",
            "active": true,
            "password": "never",
            "emails": [{"value": "alice@example.com", "type": "other", "primary": true}]
        })
    }

    #[test]
    fn drops_what_aws_rejects_and_keeps_the_rest() {
        let u = shape_user(&authentik_user()).unwrap();
        let a = &u.attributes;
        for gone in ["photos", "password", "active", "groups", "ims", "x509Certificates"] {
            assert!(!a.contains_key(gone), "{gone}: {a:?}");
        }
        assert_eq!(a["userName"], "alice@example.com");
        assert_eq!(a["locale"], "en-GB");
        assert_eq!(
            a["emails"],
            json!([{"value": "alice@example.com", "type": "other", "primary": true}])
        );
        assert_eq!(a["name"]["givenName"], "Alice");
    }

    #[test]
    fn collapses_to_primary_else_work_else_first() {
        let mut scim = authentik_user();
        scim["emails"] = json!([
            {"value": "home@example.com", "type": "home"},
            {"value": "work@example.com", "type": "work"}
        ]);
        scim["phoneNumbers"] = json!([
            {"value": "+1 555 0100", "type": "mobile"},
            {"value": "+1 555 0199", "type": "work", "primary": true}
        ]);
        scim["addresses"] = json!([{"locality": "Springfield", "type": "home", "display": "x"}]);
        let a = shape_user(&scim).unwrap().attributes;
        assert_eq!(
            a["emails"],
            json!([{"value": "work@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(a["phoneNumbers"][0]["value"], "+1 555 0199");
        assert_eq!(
            a["addresses"],
            json!([{"locality": "Springfield", "type": "home", "primary": true}])
        );
        scim["emails"] = json!([{"value": "a@x"}, {"value": "b@x"}]);
        assert_eq!(shape_user(&scim).unwrap().attributes["emails"][0]["value"], "a@x");
        scim["emails"] = json!([{"value": ""}, {"value": "  "}]);
        assert!(!shape_user(&scim).unwrap().attributes.contains_key("emails"), "nothing empty");
    }

    #[test]
    fn fills_required_names() {
        let only_user_name = json!({"userName": "bob.smith@example.com"});
        let a = shape_user(&only_user_name).unwrap().attributes;
        assert_eq!(a["name"]["givenName"], "bob.smith");
        assert_eq!(a["name"]["familyName"], "bob.smith");
        assert_eq!(a["displayName"], "bob.smith");

        let display_only = json!({"userName": "c@x", "displayName": "Carol Ann Jones"});
        let a = shape_user(&display_only).unwrap().attributes;
        assert_eq!(a["name"]["givenName"], "Carol");
        assert_eq!(a["name"]["familyName"], "Ann Jones");
        assert_eq!(a["displayName"], "Carol Ann Jones");

        let names_only =
            json!({"userName": "d@x", "name": {"givenName": "Dan", "familyName": "Doe"}});
        assert_eq!(shape_user(&names_only).unwrap().attributes["displayName"], "Dan Doe");
    }

    #[test]
    fn never_sends_empty_strings() {
        let scim = json!({"userName": "e@x", "title": "", "nickName": "   ", "name": {"givenName": ""}, "displayName": "Eve Example"});
        let a = shape_user(&scim).unwrap().attributes;
        assert!(!a.contains_key("title") && !a.contains_key("nickName"));
        assert_eq!(a["name"]["givenName"], "Eve");
        let all_strings = |v: &Value| -> bool {
            fn walk(v: &Value) -> bool {
                match v {
                    Value::String(s) => !s.is_empty(),
                    Value::Array(a) => a.iter().all(walk),
                    Value::Object(o) => o.values().all(walk),
                    _ => true,
                }
            }
            walk(v)
        };
        assert!(all_strings(&Value::Object(a)));
    }

    #[test]
    fn refuses_what_aws_would_refuse_with_a_message() {
        let e = shape_user(&json!({"userName": "alice smith"})).unwrap_err();
        assert!(e.0.contains("whitespace"), "{e}");
        let e = shape_user(&json!({"userName": "x".repeat(129)})).unwrap_err();
        assert!(e.0.contains("128"), "{e}");
        let e = shape_user(&json!({"userName": "administrator"})).unwrap_err();
        assert!(e.0.contains("reserved"), "{e}");
        let e = shape_user(&json!({"userName": "f@x", "title": "t".repeat(1025)})).unwrap_err();
        assert!(e.0.contains("title") && e.0.contains("1024"), "{e}");
        let e = shape_user(&json!({"displayName": "no user name"})).unwrap_err();
        assert!(e.0.contains("userName"), "{e}");
    }

    #[test]
    fn enterprise_goes_to_the_aws_extension_and_manager_is_left_to_resolve() {
        let scim = json!({
            "userName": "g@x",
            SCIM_ENTERPRISE: {"employeeNumber": 701, "department": "Sales", "costCenter": "",
                              "manager": {"value": "8f0c-scim-id", "displayName": "Boss"}}
        });
        let u = shape_user(&scim).unwrap();
        assert_eq!(
            u.attributes["extensions"],
            json!({ENTERPRISE_EXTENSION: {"employeeNumber": "701", "department": "Sales"}})
        );
        assert_eq!(u.manager_scim_id.as_deref(), Some("8f0c-scim-id"));
        assert!(!u.attributes.contains_key(SCIM_ENTERPRISE));
    }

    #[test]
    fn groups_keep_their_display_name() {
        let g = json!({"displayName": " AWS - Admins ", "members": [{"value": "x"}], "externalId": "e"});
        assert_eq!(
            shape_group(&g).unwrap(),
            json!({"displayName": "AWS - Admins"}).as_object().unwrap().clone()
        );
        assert!(shape_group(&json!({"displayName": ""})).is_err());
    }
}
