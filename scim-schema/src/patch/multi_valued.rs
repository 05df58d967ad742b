//! add/replace/remove on a multi-valued attribute as a whole (`emails`), what makes two of its
//! elements the same value, and the one-primary rule.

use serde_json::Value;

use super::coerce::coerce_values;
use super::engine::{remove_with_value_error, required};
use super::object::{field, put_array, set_ci, take_array};
use super::selected::selected_op;
use super::targets::AttrTarget;
use super::{Object, PatchOpKind};
use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::filter::eval::{get_ci, is_present};
use crate::schema::AttributeDef;

pub(super) fn multi_op(
    obj: &mut Object,
    target: &AttrTarget<'_>,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    let mut items = take_array(obj, target.attr.name);
    let result = if target.filter.is_none() && target.sub.is_none() {
        whole_set_op(&mut items, target.attr, op, value, tol)
    } else {
        selected_op(&mut items, target, op, value, tol)
    };
    put_array(obj, target.attr.name, items);
    result
}

/// `emails` without a filter: add appends, replace replaces the set, remove removes all.
fn whole_set_op(
    items: &mut Vec<Value>,
    attr: &AttributeDef,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    match op {
        PatchOpKind::Add => {
            let mut touched = Vec::new();
            for new in coerce_values(attr, required(value, op)?, tol)? {
                if is_present(&new) {
                    touched.push(add_element(items, attr, new));
                }
            }
            settle_primary(items, &touched);
        }
        PatchOpKind::Replace => {
            let new = coerce_values(attr, required(value, op)?, tol)?;
            *items = new.into_iter().filter(is_present).collect();
        }
        PatchOpKind::Remove => match value {
            None | Some(Value::Null) => items.clear(),
            Some(listed) if tol.remove_member_values => {
                for wanted in coerce_values(attr, listed, tol)? {
                    items.retain(|el| !same_value(el, &wanted, attr));
                }
            }
            Some(_) => return Err(remove_with_value_error(attr.name)),
        },
    }
    Ok(())
}

/// Append `new` unless the same value is present, in which case it is merged into that
/// element. Returns the element's index.
fn add_element(items: &mut Vec<Value>, attr: &AttributeDef, new: Value) -> usize {
    let existing = items.iter().position(|el| duplicate_of(el, &new, attr));
    match (existing, new) {
        (Some(i), Value::Object(fields)) => {
            if let Some(el) = items[i].as_object_mut() {
                for (key, v) in fields {
                    // Keep the stored spelling of what matched (`BABS@jensen.org` vs
                    // `babs@jensen.org`); only genuinely new sub-values are written.
                    if !field(el, &key).is_some_and(|old| strings_equal(old, &v, false)) {
                        set_ci(el, &key, v);
                    }
                }
            }
            i
        }
        (Some(i), _) => i,
        (None, new) => {
            items.push(new);
            items.len() - 1
        }
    }
}

/// Whether `new` is a value already in `el`: the same `value` (and `type`, when `new` has one);
/// for elements without `value`, every given sub-attribute equal.
fn duplicate_of(el: &Value, new: &Value, attr: &AttributeDef) -> bool {
    let Some(new_obj) = new.as_object() else { return el == new };
    if field(new_obj, "value").is_none() {
        return new_obj.iter().all(|(k, v)| get_ci(el, k) == Some(v));
    }
    let same_type = match (field(new_obj, "type"), get_ci(el, "type")) {
        (None, _) => true,
        (Some(a), Some(b)) => strings_equal(a, b, false),
        (Some(_), None) => false,
    };
    same_type && same_value(el, new, attr)
}

/// Whether `el` holds the value `wanted` names: by the `value` sub-attribute (honouring its
/// caseExact) when `wanted` has one or is a bare string, else by equality of what `wanted` gives.
fn same_value(el: &Value, wanted: &Value, attr: &AttributeDef) -> bool {
    let case_exact = attr.sub_attribute("value").map_or(attr.case_exact, |d| d.case_exact);
    let wanted_value = match wanted {
        Value::Object(obj) => field(obj, "value"),
        scalar => Some(scalar),
    };
    match (wanted_value, el) {
        (Some(w), Value::Object(_)) => {
            get_ci(el, "value").is_some_and(|v| strings_equal(v, w, case_exact))
        }
        (Some(w), scalar) => strings_equal(scalar, w, case_exact),
        (None, _) => {
            wanted.as_object().is_some_and(|o| o.iter().all(|(k, v)| get_ci(el, k) == Some(v)))
        }
    }
}

fn strings_equal(a: &Value, b: &Value, case_exact: bool) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) if !case_exact => {
            crate::fold::lower(a) == crate::fold::lower(b)
        }
        _ => a == b,
    }
}

/// RFC 7643 §2.4: `primary: true` appears at most once. When the elements just written include
/// a primary one, the others lose the flag.
pub(super) fn settle_primary(items: &mut [Value], touched: &[usize]) {
    if !touched.iter().any(|&i| items.get(i).is_some_and(is_primary)) {
        return;
    }
    for (i, el) in items.iter_mut().enumerate() {
        if !touched.contains(&i)
            && is_primary(el)
            && let Some(obj) = el.as_object_mut()
        {
            set_ci(obj, "primary", Value::Bool(false));
        }
    }
}

fn is_primary(el: &Value) -> bool {
    get_ci(el, "primary") == Some(&Value::Bool(true))
}

#[cfg(test)]
mod tests {
    use crate::error::ScimType;
    use crate::patch::test_support::{err, lenient, ok, scim_type, strict, user};
    use crate::schema::ResourceKind;
    use serde_json::json;

    #[test]
    fn add_appends_to_a_multi_valued_attribute_and_skips_present_values() {
        let ops = json!([{"op": "add", "path": "emails", "value": [
            {"value": "babs@jensen.org", "type": "home"},
            {"value": "barbara@other.org", "type": "other"}
        ]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        let emails = doc["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 3);
        assert_eq!(emails[2], json!({"value": "barbara@other.org", "type": "other"}));
        // RFC 7644 §3.5.2.1: adding a value already present changes nothing.
        let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "BABS@jensen.org", "type": "home"}]}]);
        let (same, outcome) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(same, user());
        assert!(!outcome.doc_changed);
    }

    #[test]
    fn adding_a_primary_value_clears_the_other_primary() {
        let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": true}]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"][0]["primary"], json!(false));
        assert_eq!(doc["emails"][2]["primary"], json!(true));
        // Re-adding an existing email as primary merges into it instead of duplicating it.
        let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org", "primary": true}]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(
            doc["emails"],
            json!([
                {"value": "bjensen@example.com", "type": "work", "primary": false},
                {"value": "babs@jensen.org", "type": "home", "primary": true}
            ])
        );
    }

    #[test]
    fn replace_replaces_the_whole_set_of_a_multi_valued_attribute() {
        let ops = json!([{"op": "replace", "path": "emails", "value": [{"value": "only@example.com", "type": "work"}]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"], json!([{"value": "only@example.com", "type": "work"}]));
        let ops = json!([{"op": "replace", "path": "emails", "value": []}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc.get("emails").is_none());
    }

    #[test]
    fn remove_without_filter_removes_all_values() {
        let ops =
            json!([{"op": "remove", "path": "emails"}, {"op": "remove", "path": "displayName"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc.get("emails").is_none());
        assert!(doc.get("displayName").is_none());
    }

    #[test]
    fn remove_with_a_value_removes_only_listed_values_when_lenient() {
        let ops =
            json!([{"op": "remove", "path": "emails", "value": [{"value": "BABS@jensen.org"}]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(
            doc["emails"],
            json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
        );
        // Strictly the value is ignored and ALL emails would go: refused instead.
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }
}
