//! What changed between what the bridge pushed for a principal and what it is to be: the
//! attribute changes an UpdateUser / UpdateGroup sends.

use crate::mapping::aws_profile::AwsAttributes;
use crate::sync::target::AttributeChange;
use serde_json::Value;

/// The top-level attributes that differ: a new value, or None where one is to be removed.
/// Extensions (`aws:identitystore:enterprise`) change key by key, under the paths UpdateUser
/// takes (`aws:identitystore:enterprise.department`).
pub fn diff(pushed: &Value, desired: &AwsAttributes) -> Vec<AttributeChange> {
    let empty = serde_json::Map::new();
    let before = pushed.as_object().unwrap_or(&empty);
    let mut changes = Vec::new();
    for key in union(before, desired) {
        let (old, new) = (before.get(key), desired.get(key));
        if old == new {
            continue;
        }
        if key == "extensions" {
            let (old, new) = (old.and_then(Value::as_object), new.and_then(Value::as_object));
            let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
            for ext in union(old, new) {
                let (o, n) = (
                    old.get(ext).and_then(Value::as_object),
                    new.get(ext).and_then(Value::as_object),
                );
                let (o, n) = (o.unwrap_or(&empty), n.unwrap_or(&empty));
                for k in union(o, n) {
                    if o.get(k) != n.get(k) {
                        changes.push((format!("{ext}.{k}"), n.get(k).cloned()));
                    }
                }
            }
        } else {
            changes.push((key.clone(), new.cloned()));
        }
    }
    changes
}

/// The keys of both objects: `b`'s in order, then those only `a` has.
fn union<'a>(
    a: &'a serde_json::Map<String, Value>,
    b: &'a serde_json::Map<String, Value>,
) -> Vec<&'a String> {
    let mut keys: Vec<&String> = b.keys().collect();
    keys.extend(a.keys().filter(|k| !b.contains_key(*k)));
    keys
}
