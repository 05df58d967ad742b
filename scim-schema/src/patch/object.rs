//! Writing attributes into a JSON object. Attribute names are case-insensitive (RFC 7643
//! §2.1), so every access finds any spelling and every write leaves only the canonical one; an
//! empty complex or multi-valued attribute is unassigned (§2.5) and left out.

use serde_json::Value;

use super::{Object, PatchOpKind};

pub(super) fn field<'a>(obj: &'a Object, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Remove every spelling of `name`; returns the exact spelling's value if any, else another's.
pub(super) fn remove_ci(obj: &mut Object, name: &str) -> Option<Value> {
    let mut found = obj.shift_remove(name);
    let variants: Vec<String> =
        obj.keys().filter(|k| k.eq_ignore_ascii_case(name)).cloned().collect();
    for key in variants {
        let value = obj.shift_remove(&key);
        if found.is_none() {
            found = value;
        }
    }
    found
}

/// Set `name` (the canonical spelling), dropping other spellings.
pub(super) fn set_ci(obj: &mut Object, name: &str, value: Value) {
    let variants: Vec<String> =
        obj.keys().filter(|k| *k != name && k.eq_ignore_ascii_case(name)).cloned().collect();
    for key in variants {
        obj.shift_remove(&key);
    }
    obj.insert(name.to_owned(), value);
}

pub(super) fn take_object(obj: &mut Object, name: &str) -> Object {
    match remove_ci(obj, name) {
        Some(Value::Object(inner)) => inner,
        _ => Object::new(),
    }
}

/// Put a complex value back; an empty one is unassigned (RFC 7643 §2.5) and left out.
pub(super) fn put_object(obj: &mut Object, name: &str, inner: Object) {
    if !inner.is_empty() {
        obj.insert(name.to_owned(), Value::Object(inner));
    }
}

pub(super) fn take_array(obj: &mut Object, name: &str) -> Vec<Value> {
    match remove_ci(obj, name) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(single) => vec![single],
    }
}

pub(super) fn put_array(obj: &mut Object, name: &str, items: Vec<Value>) {
    if !items.is_empty() {
        obj.insert(name.to_owned(), Value::Array(items));
    }
}

/// Set a member, or for a null value: `replace` unsets, `add` adds nothing.
pub(super) fn assign(obj: &mut Object, name: &str, op: PatchOpKind, value: Value) {
    if !value.is_null() {
        set_ci(obj, name, value);
    } else if op == PatchOpKind::Replace {
        remove_ci(obj, name);
    }
}
