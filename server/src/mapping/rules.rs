//! What the admin configures on top of the built-in AWS profile, in CEL (the `cel` crate):
//! `[sync.filter]` chooses which users and groups are synced, `[mapping]` drops attributes and
//! sets attributes from expressions over the SCIM user.
//!
//! The order is fixed: the built-in profile shapes the user; `drop_user_attributes` removes
//! attributes; `user_set` sets attributes, in the order of their names, each expression seeing
//! the SCIM user as the IdP sent it (so no expression depends on another's result); the result
//! is checked as the profile checks its own (no empty strings, a valid userName, the names AWS
//! requires). Expressions are compiled when the config loads, so a broken one stops start-up;
//! one that fails for a particular user (a missing attribute, a wrong type) skips that user
//! with the error — never deletes it.

use super::aws_profile::{
    AwsAttributes, ENTERPRISE_EXTENSION, ENTERPRISE_TEXT, NAME_PARTS, ShapeError, USER_TEXT,
    check_user_name,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use crate::config::MappingSettings;

/// Expressions longer than this are refused (they are config, not programs).
const MAX_EXPRESSION: usize = 4096;

/// Collapsed multi-valued attributes: set from a string (the value) or a map.
const LIST_TARGETS: &[&str] = &["emails", "phoneNumbers", "addresses", "roles"];
/// What AWS requires of every user: never dropped.
const REQUIRED: &[&str] = &["userName", "displayName", "name.givenName", "name.familyName"];

/// Where a mapped attribute lives in the AWS shape.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Text(String),
    NamePart(String),
    Enterprise(String),
    List(String),
}

impl Target {
    fn parse(key: &str) -> Option<Target> {
        if key == "userName" || USER_TEXT.contains(&key) {
            return Some(Target::Text(key.to_owned()));
        }
        if LIST_TARGETS.contains(&key) {
            return Some(Target::List(key.to_owned()));
        }
        if let Some(part) = key.strip_prefix("name.") {
            return NAME_PARTS.contains(&part).then(|| Target::NamePart(part.to_owned()));
        }
        if let Some(part) = key.strip_prefix("enterprise.") {
            return ENTERPRISE_TEXT.contains(&part).then(|| Target::Enterprise(part.to_owned()));
        }
        None
    }

    fn known() -> String {
        let mut all = vec!["userName".to_owned()];
        all.extend(USER_TEXT.iter().map(|s| (*s).to_owned()));
        all.extend(LIST_TARGETS.iter().map(|s| (*s).to_owned()));
        all.extend(NAME_PARTS.iter().map(|p| format!("name.{p}")));
        all.extend(ENTERPRISE_TEXT.iter().map(|p| format!("enterprise.{p}")));
        all.join(", ")
    }

    fn remove(&self, attrs: &mut AwsAttributes) {
        match self {
            Target::Text(k) | Target::List(k) => {
                attrs.remove(k);
            }
            Target::NamePart(p) => {
                if let Some(Value::Object(name)) = attrs.get_mut("name") {
                    name.remove(p);
                }
            }
            Target::Enterprise(p) => {
                let ext = attrs.get_mut("extensions").and_then(|e| e.as_object_mut());
                if let Some(Value::Object(ent)) = ext.and_then(|e| e.get_mut(ENTERPRISE_EXTENSION))
                {
                    ent.remove(p);
                    if ent.is_empty() {
                        attrs.remove("extensions");
                    }
                }
            }
        }
    }

    fn set(&self, attrs: &mut AwsAttributes, value: Value) {
        match self {
            Target::Text(k) | Target::List(k) => {
                attrs.insert(k.clone(), value);
            }
            Target::NamePart(p) => {
                let name = attrs.entry("name").or_insert_with(|| json!({}));
                if let Some(name) = name.as_object_mut() {
                    name.insert(p.clone(), value);
                }
            }
            Target::Enterprise(p) => {
                let ext = attrs.entry("extensions").or_insert_with(|| json!({}));
                if let Some(ext) = ext.as_object_mut() {
                    let ent = ext.entry(ENTERPRISE_EXTENSION).or_insert_with(|| json!({}));
                    if let Some(ent) = ent.as_object_mut() {
                        ent.insert(p.clone(), value);
                    }
                }
            }
        }
    }
}

/// A compiled expression and the config key it came from (for errors).
struct Expression {
    key: String,
    program: cel::Program,
}

/// The compiled `[sync.filter]` and `[mapping]`.
pub struct Rules {
    env: Arc<cel::Env>,
    user_filter: Option<Expression>,
    group_filter: Option<Expression>,
    drops: Vec<Target>,
    sets: Vec<(Target, Expression)>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("user_filter", &self.user_filter.as_ref().map(|e| &e.key))
            .field("group_filter", &self.group_filter.as_ref().map(|e| &e.key))
            .field("drops", &self.drops)
            .field("sets", &self.sets.iter().map(|(t, _)| t).collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            env: Arc::new(environment()),
            user_filter: None,
            group_filter: None,
            drops: Vec::new(),
            sets: Vec::new(),
        }
    }
}

/// CEL's standard library plus the strings extension (`lowerAscii`, `split`, `replace`, …).
fn environment() -> cel::Env {
    let mut env = cel::Env::stdlib();
    // Registering a built-in extension fails only on a clash with another declaration.
    let _ = env.add_extension(cel::extensions::strings);
    env
}

/// Whether a filter selects the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Selected,
    NotSelected,
    /// The expression failed for this resource: it is skipped (neither synced nor deleted).
    Failed(String),
}

impl Rules {
    /// Compiles `[sync.filter]` (`users`, `groups`) and `[mapping]`; errors name the key.
    pub fn compile(
        filter: &BTreeMap<String, String>,
        mapping: &MappingSettings,
    ) -> anyhow::Result<Rules> {
        let mut rules = Rules::default();
        for (key, source) in filter {
            let variable = match key.as_str() {
                "users" => "user",
                "groups" => "group",
                other => anyhow::bail!("config: unknown key `sync.filter.{other}` (users, groups)"),
            };
            let expr = rules.expression(&format!("sync.filter.{key}"), source, variable)?;
            rules.check_on_samples(&expr, variable, |value| match value {
                Value::Bool(_) => None,
                other => Some(format!("must give true or false, but gives {}", described(other))),
            })?;
            if key == "users" {
                rules.user_filter = Some(expr);
            } else {
                rules.group_filter = Some(expr);
            }
        }
        for key in &mapping.drop_user_attributes {
            let target = Target::parse(key).ok_or_else(|| {
                anyhow::anyhow!(
                    "config: mapping.drop_user_attributes: unknown attribute `{key}` (one of {})",
                    Target::known()
                )
            })?;
            if REQUIRED.contains(&key.as_str()) {
                anyhow::bail!(
                    "config: mapping.drop_user_attributes: `{key}` cannot be dropped: the Identity Store requires it (set it with mapping.user_set instead)"
                );
            }
            rules.drops.push(target);
        }
        for (key, source) in &mapping.user_set {
            let target = Target::parse(key).ok_or_else(|| {
                anyhow::anyhow!(
                    "config: mapping.user_set: unknown attribute `{key}` (one of {})",
                    Target::known()
                )
            })?;
            let expr = rules.expression(&format!("mapping.user_set.{key}"), source, "user")?;
            rules.check_on_samples(&expr, "user", |value| target.type_problem(value))?;
            rules.sets.push((target, expr));
        }
        Ok(rules)
    }

    /// Compiles one expression and tries it on an empty resource, so a reference to anything
    /// but `variable` is an error now rather than on every user.
    fn expression(&self, key: &str, source: &str, variable: &str) -> anyhow::Result<Expression> {
        if source.len() > MAX_EXPRESSION {
            anyhow::bail!(
                "config: {key}: the expression is longer than {MAX_EXPRESSION} characters"
            );
        }
        let program = self
            .env
            .compile(source)
            .map_err(|e| anyhow::anyhow!("config: {key}: not a valid CEL expression: {e}"))?;
        let mut context = cel::Context::with_env(self.env.clone());
        context
            .add_variable(variable, json!({}))
            .map_err(|e| anyhow::anyhow!("config: {key}: {e}"))?;
        if let Err(cel::ExecutionError::UndeclaredReference(name)) = program.execute(&context) {
            anyhow::bail!(
                "config: {key}: unknown name `{name}` (the expression sees only `{variable}`)"
            );
        }
        Ok(Expression { key: key.to_owned(), program })
    }

    /// The type check the `cel` crate lacks (it has no checker): the expression runs on a
    /// sample resource with every attribute of the schema, then on one with almost none. A
    /// result of the wrong type, or an operation on a value of the wrong type, is a config
    /// error naming the key; an error that depends on the data (a missing attribute, an index
    /// out of range) is left to the run, where it fails that principal.
    fn check_on_samples(
        &self,
        expr: &Expression,
        variable: &str,
        problem: impl Fn(&Value) -> Option<String>,
    ) -> anyhow::Result<()> {
        for (what, sample) in samples(variable) {
            let mut context = cel::Context::with_env(self.env.clone());
            context.add_variable(variable, &sample).map_err(|e| anyhow::anyhow!("{e}"))?;
            let found = match expr.program.execute(&context) {
                Ok(value) => match value.json() {
                    Ok(json) => problem(&json),
                    Err(e) => Some(format!("gives a value that is not JSON ({e})")),
                },
                Err(e) if is_type_error(&e) => Some(format!("is not well-typed: {e}")),
                Err(_) => None,
            };
            if let Some(p) = found {
                anyhow::bail!("config: {}: {p} (for {what})", expr.key);
            }
        }
        Ok(())
    }

    pub fn has_user_filter(&self) -> bool {
        self.user_filter.is_some()
    }

    pub fn has_group_filter(&self) -> bool {
        self.group_filter.is_some()
    }

    pub fn select_user(&self, doc: &Value) -> Selection {
        self.select(self.user_filter.as_ref(), "user", doc)
    }

    pub fn select_group(&self, doc: &Value) -> Selection {
        self.select(self.group_filter.as_ref(), "group", doc)
    }

    fn select(&self, filter: Option<&Expression>, variable: &str, doc: &Value) -> Selection {
        let Some(expr) = filter else { return Selection::Selected };
        match self.evaluate(expr, variable, doc) {
            Ok(Value::Bool(true)) => Selection::Selected,
            Ok(Value::Bool(false)) => Selection::NotSelected,
            Ok(other) => {
                Selection::Failed(format!("{}: gave {other}, not true or false", expr.key))
            }
            Err(e) => Selection::Failed(e.0),
        }
    }

    /// Applies the drops, then the sets, to a user the built-in profile shaped.
    pub fn map_user(&self, doc: &Value, attrs: &mut AwsAttributes) -> Result<(), ShapeError> {
        if self.drops.is_empty() && self.sets.is_empty() {
            return Ok(());
        }
        for target in &self.drops {
            target.remove(attrs);
        }
        for (target, expr) in &self.sets {
            let value = self.evaluate(expr, "user", doc)?;
            match shaped(target, value).map_err(|e| ShapeError(format!("{}: {e}", expr.key)))? {
                Some(v) => target.set(attrs, v),
                None => target.remove(attrs),
            }
        }
        check_required(attrs)
    }

    fn evaluate(
        &self,
        expr: &Expression,
        variable: &str,
        doc: &Value,
    ) -> Result<Value, ShapeError> {
        let mut context = cel::Context::with_env(self.env.clone());
        context
            .add_variable(variable, doc)
            .map_err(|e| ShapeError(format!("{}: cannot read the {variable}: {e}", expr.key)))?;
        let value =
            expr.program.execute(&context).map_err(|e| ShapeError(format!("{}: {e}", expr.key)))?;
        value.json().map_err(|e| ShapeError(format!("{}: {e}", expr.key)))
    }
}

impl Target {
    /// Why a `user_set` result cannot be this attribute's value, judged by its type alone
    /// (what [`shaped`] also refuses at run time).
    fn type_problem(&self, value: &Value) -> Option<String> {
        let fits = matches!(
            (self, value),
            (_, Value::Null | Value::String(_) | Value::Number(_) | Value::Bool(_))
                | (Target::List(_), Value::Object(_))
        );
        let wanted = match self {
            Target::List(_) => "a string or a map",
            _ => "a string",
        };
        (!fits).then(|| format!("must give {wanted}, but gives {}", described(value)))
    }
}

/// A result for an error message: its type, and the value when short.
fn described(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    };
    let text = value.to_string();
    if text.chars().count() <= 60 { format!("{kind} ({text})") } else { kind.to_owned() }
}

/// Errors that say an operation met a value of a type it does not take: on a sample shaped as
/// the SCIM schema says, the expression is wrong whatever the IdP sends.
fn is_type_error(e: &cel::ExecutionError) -> bool {
    use cel::ExecutionError as E;
    matches!(
        e,
        E::NoSuchOverload(_)
            | E::UnsupportedTargetType { .. }
            | E::NotSupportedAsMethod { .. }
            | E::UnexpectedType { .. }
            | E::ValuesNotComparable(..)
            | E::UnsupportedBinaryOperator(..)
            | E::InvalidArgumentCount { .. }
    )
}

/// The sample resources an expression over `variable` is tried on: one with every attribute
/// of the SCIM schema (core and enterprise user; group), the same with every flag false (a
/// deactivated user), and one with only what is required.
pub fn samples(variable: &str) -> Vec<(&'static str, Value)> {
    if variable == "group" {
        let full = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "00g1emaKYZTWRYYRRTSK",
            "displayName": "AWS - Tour Guides",
            "members": [{
                "value": "2819c223-7f76-453a-919d-413861904646",
                "display": "bjensen@example.com",
                "type": "User",
                "$ref": "https://scim.example.com/scim/v2/Users/2819c223-7f76-453a-919d-413861904646"
            }],
            "meta": {"resourceType": "Group", "created": "2026-01-23T04:56:22Z",
                     "lastModified": "2026-05-13T04:42:34Z", "version": "W/\"3\""}
        });
        return vec![
            ("a sample group with every attribute", full),
            ("a sample group with only a displayName", json!({"displayName": "Staff"})),
        ];
    }
    let mut full = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_EXTENSION],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "00u1esetg4aBCDEFG357",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen",
                 "givenName": "Barbara", "middleName": "Jane",
                 "honorificPrefix": "Ms.", "honorificSuffix": "III"},
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true,
                    "display": "bjensen@example.com"},
                   {"value": "babs@jensen.org", "type": "home", "primary": false}],
        "phoneNumbers": [{"value": "+1 555 555 5555", "type": "work", "primary": true}],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "photos": [{"value": "https://photos.example.com/profilephoto.jpg", "type": "photo"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza",
                       "locality": "Hollywood", "region": "CA", "postalCode": "91608",
                       "country": "US", "primary": true,
                       "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA"}],
        "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
                    "display": "Tour Guides", "type": "direct"}],
        "entitlements": [{"value": "tour-booking", "type": "app"}],
        "roles": [{"value": "guide", "type": "job", "primary": true}],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
        "meta": {"resourceType": "User", "created": "2026-01-23T04:56:22Z",
                 "lastModified": "2026-05-13T04:42:34Z", "version": "W/\"a330bc54f0671c9\""}
    });
    full[ENTERPRISE_EXTENSION] = json!({
        "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
        "division": "Theme Park", "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
    });
    let mut inactive = full.clone();
    inactive["active"] = json!(false);
    for list in ["emails", "phoneNumbers", "addresses", "roles"] {
        if let Some(items) = inactive[list].as_array_mut() {
            for item in items {
                item["primary"] = json!(false);
            }
        }
    }
    vec![
        ("a sample user with every attribute", full),
        ("a sample user with every attribute, not active", inactive),
        ("a sample user with only a userName", json!({"userName": "ajensen@example.com"})),
    ]
}

/// An expression's result as the attribute's AWS value; None leaves the attribute out.
fn shaped(target: &Target, value: Value) -> Result<Option<Value>, String> {
    let text = |v: Value| -> Result<Option<String>, String> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => {
                let s = s.trim();
                if s.chars().count() > 1024 {
                    return Err("longer than 1,024 characters, the Identity Store's limit".into());
                }
                Ok((!s.is_empty()).then(|| s.to_owned()))
            }
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            other => Err(format!("gave {other}, not a string")),
        }
    };
    match target {
        Target::Text(k) if k == "userName" => match text(value)? {
            Some(name) => {
                check_user_name(&name).map_err(|e| e.0)?;
                Ok(Some(json!(name)))
            }
            None => Err("gave an empty userName".into()),
        },
        Target::Text(_) | Target::NamePart(_) | Target::Enterprise(_) => {
            Ok(text(value)?.map(Value::String))
        }
        Target::List(k) => match value {
            Value::Object(map) => Ok(Some(json!([clean(map)]))),
            other => {
                let key = if k == "addresses" { "formatted" } else { "value" };
                Ok(text(other)?.map(|s| json!([{ key: s }])))
            }
        },
    }
}

/// A map result as one collapsed value: empty strings and nulls left out.
fn clean(map: Map<String, Value>) -> Value {
    Value::Object(
        map.into_iter()
            .filter(|(_, v)| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()))
            .collect(),
    )
}

/// The names the Identity Store requires, after the mapping.
fn check_required(attrs: &AwsAttributes) -> Result<(), ShapeError> {
    let present = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    if !present(attrs.get("displayName")) {
        return Err(ShapeError(
            "mapping left no displayName, which the Identity Store requires".into(),
        ));
    }
    let name = attrs.get("name");
    for part in ["givenName", "familyName"] {
        if !present(name.and_then(|n| n.get(part))) {
            return Err(ShapeError(format!(
                "mapping left no name.{part}, which the Identity Store requires"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::aws_profile::shape_user;

    fn rules(
        filter: &[(&str, &str)],
        drop: &[&str],
        set: &[(&str, &str)],
    ) -> anyhow::Result<Rules> {
        Rules::compile(
            &filter.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            &MappingSettings {
                drop_user_attributes: drop.iter().map(|s| (*s).to_owned()).collect(),
                user_set: set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            },
        )
    }

    fn barbara() -> Value {
        json!({
            "userName": "bjensen@example.com",
            "active": true,
            "title": "Tour Guide",
            "name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"},
            "emails": [{"value": "b@home.example", "type": "home"},
                       {"value": "b@work.example", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"department": "Tours", "costCenter": "4130"}
        })
    }

    fn mapped(r: &Rules, doc: &Value) -> Result<AwsAttributes, ShapeError> {
        let mut attrs = shape_user(doc)?.attributes;
        r.map_user(doc, &mut attrs)?;
        Ok(attrs)
    }

    #[test]
    fn sets_from_expressions_and_drops_in_order() {
        let r = rules(
            &[],
            &["title", "enterprise.costCenter", "name.middleName"],
            &[
                ("displayName", r#"user.name.familyName + ", " + user.name.givenName"#),
                ("emails", r#"user.emails.filter(e, has(e.primary) && e.primary)[0].value"#),
                ("enterprise.division", r#""Travel""#),
                ("title", r#"user.title.upperAscii()"#),
            ],
        )
        .unwrap();
        let attrs = mapped(&r, &barbara()).unwrap();
        assert_eq!(attrs["displayName"], "Jensen, Barbara");
        assert_eq!(attrs["emails"], json!([{"value": "b@work.example"}]));
        // Set after drop: the set wins.
        assert_eq!(attrs["title"], "TOUR GUIDE");
        assert_eq!(attrs["name"].get("middleName"), None);
        assert_eq!(
            attrs["extensions"][ENTERPRISE_EXTENSION],
            json!({"department": "Tours", "division": "Travel"})
        );
    }

    #[test]
    fn a_failing_expression_skips_the_user_with_the_key() {
        let r = rules(&[], &[], &[("nickName", "user.nickName")]).unwrap();
        let err = mapped(&r, &barbara()).unwrap_err();
        assert!(err.0.starts_with("mapping.user_set.nickName:"), "{err}");
        let r = rules(&[], &[], &[("displayName", r#""""#)]).unwrap();
        assert!(mapped(&r, &barbara()).unwrap_err().0.contains("displayName"));
        let r = rules(&[], &[], &[("userName", r#""has space""#)]).unwrap();
        assert!(mapped(&r, &barbara()).unwrap_err().0.contains("whitespace"));
        // A type only some users' data gives: the run skips them with the key.
        let r = rules(&[], &[], &[("title", "user.custom")]).unwrap();
        let custom = json!({"userName": "b@x", "name": {"givenName": "B", "familyName": "J"},
                            "custom": [1, 2]});
        assert!(mapped(&r, &custom).unwrap_err().0.contains("not a string"));
    }

    #[test]
    fn filters_select_and_report_failures() {
        let r = rules(
            &[("users", "user.active"), ("groups", r#"group.displayName.startsWith("AWS - ")"#)],
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(r.select_user(&barbara()), Selection::Selected);
        assert_eq!(r.select_user(&json!({"active": false})), Selection::NotSelected);
        assert!(matches!(r.select_user(&json!({"userName": "x"})), Selection::Failed(_)));
        assert_eq!(r.select_group(&json!({"displayName": "AWS - Admins"})), Selection::Selected);
        assert_eq!(r.select_group(&json!({"displayName": "Staff"})), Selection::NotSelected);
        // Not a bool for this user's data only (the load-time samples have no `custom`).
        let r = rules(&[("users", r#"user.custom"#)], &[], &[]).unwrap();
        assert!(
            matches!(r.select_user(&json!({"custom": "yes"})), Selection::Failed(m) if m.contains("not true or false"))
        );
        assert_eq!(Rules::default().select_user(&json!({})), Selection::Selected);
    }

    #[test]
    fn results_of_the_wrong_type_are_config_errors_naming_the_key() {
        let err = |r: anyhow::Result<Rules>| r.unwrap_err().to_string();
        let e = err(rules(&[("users", "user.userName")], &[], &[]));
        assert!(e.contains("sync.filter.users") && e.contains("gives a string"), "{e}");
        let e = err(rules(&[("groups", "group.displayName")], &[], &[]));
        assert!(e.contains("sync.filter.groups") && e.contains("gives a string"), "{e}");
        // Only for some users: the second sample (not active) shows it.
        let e = err(rules(&[("users", "user.active || user.title")], &[], &[]));
        assert!(e.contains("sync.filter.users") && e.contains("not active"), "{e}");
        let e = err(rules(&[("users", "user.emails.map(e, e.value)")], &[], &[]));
        assert!(e.contains("gives a list"), "{e}");
        // Operations on the wrong type are refused too.
        let e = err(rules(&[("users", "user.name.givenName > 3")], &[], &[]));
        assert!(e.contains("sync.filter.users") && e.contains("not well-typed"), "{e}");
        let e = err(rules(&[], &[], &[("title", "user.emails")]));
        assert!(e.contains("mapping.user_set.title") && e.contains("must give a string"), "{e}");
        let e = err(rules(&[], &[], &[("emails", "user.emails")]));
        assert!(e.contains("mapping.user_set.emails") && e.contains("a string or a map"), "{e}");
        // What depends on the data is the run's to judge: custom attributes, optional ones.
        rules(&[("users", r#"user["urn:example:custom"].level > 3"#)], &[], &[]).unwrap();
        rules(&[("users", "user.active")], &[], &[]).unwrap();
        rules(&[("users", "!has(user.active) || user.active")], &[], &[]).unwrap();
        rules(&[("groups", r#"group.displayName.startsWith("AWS - ")"#)], &[], &[]).unwrap();
        rules(&[("users", r#"user.emails.exists(e, e.value.endsWith("@example.com"))"#)], &[], &[])
            .unwrap();
        rules(&[], &[], &[("emails", r#"{"value": user.userName, "type": "work"}"#)]).unwrap();
        rules(&[], &[], &[("title", "user.title.upperAscii()"), ("nickName", "1")]).unwrap();
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = |r: anyhow::Result<Rules>| r.unwrap_err().to_string();
        assert!(err(rules(&[("users", "user.active &&")], &[], &[])).contains("sync.filter.users"));
        assert!(
            err(rules(&[("users", "person.active")], &[], &[])).contains("unknown name `person`")
        );
        assert!(err(rules(&[("roles", "true")], &[], &[])).contains("sync.filter.roles"));
        assert!(err(rules(&[], &["userName"], &[])).contains("requires it"));
        assert!(err(rules(&[], &["shoeSize"], &[])).contains("unknown attribute `shoeSize`"));
        assert!(err(rules(&[], &[], &[("photos", "1")])).contains("mapping.user_set"));
        assert!(
            err(rules(&[], &[], &[("title", "user.title +")])).contains("mapping.user_set.title")
        );
        let long = "1 + ".repeat(2000) + "1";
        assert!(err(rules(&[], &[], &[("title", &long)])).contains("longer than"));
    }
}
