//! The fingerprint of the rules a run plans with (issue 14): a SHA-256 over a canonical JSON
//! form of what decides the plan — `[sync.filter]`, the protected users and groups,
//! `on_deactivate`, `[mapping]`, `[[permission_sets]]`, `[assignments]` and the sources'
//! adoption settings. Not the schedule, the guard, addresses, secrets or logging: two configs
//! that plan alike have the same fingerprint, however their TOML is laid out.

use crate::config::Settings;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Hex digits shown in messages (the full 64 are recorded).
const SHOWN: usize = 12;

/// What the fingerprint covers, borrowed from the settings.
#[derive(Serialize)]
struct Covered<'a> {
    filter: &'a BTreeMap<String, String>,
    protected_users: Vec<&'a str>,
    protected_groups: Vec<&'a str>,
    on_deactivate: crate::config::OnDeactivate,
    mapping: &'a crate::mapping::rules::MappingSettings,
    permission_sets: Vec<Value>,
    assignments: &'a crate::sync::access::rules::AssignmentSettings,
    adoption: BTreeMap<&'a str, Adoption<'a>>,
}

#[derive(Serialize)]
struct Adoption<'a> {
    adopt_from: Vec<&'a str>,
    adopt_existing: bool,
}

/// The fingerprint of `settings`' rules: 64 hex digits.
pub fn of(settings: &Settings) -> String {
    let sync = &settings.sync;
    let covered = Covered {
        filter: &sync.filter,
        // Lists that are sets: their order decides nothing.
        protected_users: sorted(&sync.protected_users),
        protected_groups: sorted(&sync.protected_groups),
        on_deactivate: sync.on_deactivate,
        mapping: &settings.mapping,
        // The policy document itself, not the file it was read from.
        permission_sets: settings
            .permission_sets
            .iter()
            .map(|p| {
                let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.remove("inline_policy_file");
                }
                v
            })
            .collect(),
        assignments: &settings.assignments,
        adoption: settings
            .sources
            .iter()
            .map(|(name, s)| {
                let adoption = Adoption {
                    adopt_from: sorted(&s.adopt_from),
                    adopt_existing: s.adopt_existing,
                };
                (name.as_str(), adoption)
            })
            .filter(|(_, a)| a.adopt_existing || !a.adopt_from.is_empty())
            .collect(),
    };
    let value = serde_json::to_value(&covered).unwrap_or(Value::Null);
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    hex(&Sha256::digest(canonical.as_bytes()))
}

/// A list that is a set, in one order.
fn sorted(v: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = v.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// How a fingerprint is shown in messages: its first 12 hex digits.
pub fn short(fingerprint: &str) -> &str {
    fingerprint.get(..SHOWN).unwrap_or(fingerprint)
}

/// JSON with every object's keys sorted (serde_json keeps insertion order here, and an inline
/// policy document's key order is the file's).
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn load(toml: &str) -> Settings {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("scimbridge.toml");
        std::fs::write(&path, toml).expect("write config");
        Settings::load(Some(&path), &Overrides::default()).expect("config loads")
    }

    const RULES: &str = r#"
[log]
level = "info"

[sources.entra]
adopt_from = ["okta"]

[sync]
protected_users = ["breakglass@example.com", "root@example.com"]
on_deactivate = "delete"

[sync.filter]
users = "user.active"
groups = 'group.displayName.startsWith("AWS - ")'

[mapping]
drop_user_attributes = ["title"]
"#;

    #[test]
    fn the_same_rules_in_another_order_have_the_same_fingerprint() {
        let reordered = r#"
[mapping]
drop_user_attributes = ["title"]

[sync.filter]
groups = 'group.displayName.startsWith("AWS - ")'
users = "user.active"

[sync]
on_deactivate = "delete"
protected_users = ["root@example.com", "breakglass@example.com"]

[sources.entra]
adopt_from = ["okta"]
"#;
        let fp = of(&load(RULES));
        assert_eq!(fp.len(), 64);
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit()), "{fp}");
        assert_eq!(fp, of(&load(reordered)));
        assert_eq!(short(&fp).len(), 12);
        assert!(fp.starts_with(short(&fp)));
    }

    #[test]
    fn a_changed_rule_changes_the_fingerprint() {
        let fp = of(&load(RULES));
        for (what, changed) in [
            ("filter", RULES.replace("user.active", "user.active && true")),
            ("protected users", RULES.replace("\"root@example.com\"", "\"admin@example.com\"")),
            ("on_deactivate", RULES.replace("\"delete\"", "\"ignore\"")),
            ("mapping", RULES.replace("[\"title\"]", "[\"title\", \"nickName\"]")),
            (
                "adoption",
                RULES.replace("[sources.entra]", "[sources.entra]\nadopt_existing = true"),
            ),
        ] {
            assert_ne!(of(&load(&changed)), fp, "{what}");
        }
    }

    #[test]
    fn what_decides_no_plan_is_left_out() {
        let fp = of(&load(RULES));
        let other = RULES.replace("level = \"info\"", "level = \"debug\"\nformat = \"json\"")
            + "\n[server]\nlisten = \"0.0.0.0:9999\"\n[aws]\nregion = \"eu-west-1\"\n\
               [sources.okta]\ncompat = \"okta\"\n";
        let mut settings = load(&other);
        settings.sync.schedule = "0 */5 * * * *".into();
        settings.sync.max_delete_fraction = 0.5;
        settings.database.url = "postgres://u:secret@db/scim".into();
        assert_eq!(of(&settings), fp);
    }
}
