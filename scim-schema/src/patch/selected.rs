//! Operations on the elements of a multi-valued attribute that a path selects: by a filter
//! (`emails[type eq "work"]`), a sub-attribute (`emails.value`) or both, including the element
//! created when none matches.

use serde_json::Value;

use super::coerce::coerce;
use super::engine::required;
use super::multi_valued::settle_primary;
use super::object::{assign, remove_ci, set_ci};
use super::targets::AttrTarget;
use super::{Object, PatchOpKind};
use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::filter::ast::{CompValue, CompareOp, Filter};
use crate::filter::eval::{element_matches, is_present};
use crate::schema::{AttrType, AttributeDef, Mutability};

/// `emails[type eq "work"]`, `emails[type eq "work"].value` and `emails.value`.
pub(super) fn selected_op(
    items: &mut Vec<Value>,
    target: &AttrTarget<'_>,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    let attr = target.attr;
    let matched: Vec<usize> = (0..items.len())
        .filter(|&i| target.filter.is_none_or(|f| element_matches(f, &items[i], attr)))
        .collect();
    if matched.is_empty() {
        return create_or_fail(items, target, op, value, tol);
    }
    let new = match op {
        PatchOpKind::Remove => Value::Null,
        _ => selected_value(target, required(value, op)?, tol)?,
    };
    match (op, target.sub) {
        (PatchOpKind::Add, _) if new.is_null() => {}
        (PatchOpKind::Remove | PatchOpKind::Replace, None) if new.is_null() => {
            remove_indices(items, &matched);
        }
        (PatchOpKind::Remove | PatchOpKind::Replace, Some(sub)) if new.is_null() => {
            for &i in &matched {
                if let Some(el) = items[i].as_object_mut() {
                    remove_ci(el, sub.name);
                }
            }
            items.retain(is_present);
        }
        (_, sub) => {
            for &i in &matched {
                update_element(&mut items[i], sub, op, &new);
            }
            settle_primary(items, &matched);
        }
    }
    Ok(())
}

/// The value for the selected elements (or their sub-attribute), coerced.
fn selected_value(
    target: &AttrTarget<'_>,
    value: &Value,
    tol: &Tolerances,
) -> Result<Value, ScimError> {
    if let Some(sub) = target.sub {
        return Ok(coerce(sub, value, tol));
    }
    let attr = target.attr;
    let single = match value {
        Value::Array(items) if items.len() == 1 && tol.single_value_as_array => &items[0],
        Value::Array(_) => {
            return Err(ScimError::invalid_value(format!(
                "a filtered {} path selects single values: the value must not be an array",
                attr.name
            )));
        }
        v => v,
    };
    let coerced = coerce(attr, single, tol);
    if attr.attr_type == AttrType::Complex && !(coerced.is_object() || coerced.is_null()) {
        return Err(ScimError::invalid_value(format!(
            "the elements of {} are complex: the value must be an object",
            attr.name
        )));
    }
    Ok(coerced)
}

fn update_element(el: &mut Value, sub: Option<&AttributeDef>, op: PatchOpKind, new: &Value) {
    match (sub, el.as_object_mut(), new) {
        (Some(sub), Some(obj), _) => set_ci(obj, sub.name, new.clone()),
        (None, Some(obj), Value::Object(fields)) if op == PatchOpKind::Add => {
            for (key, v) in fields {
                assign(obj, key, op, v.clone());
            }
        }
        // A sub-attribute of a simple value cannot be set; nothing to do.
        (Some(_), None, _) => {}
        _ => *el = new.clone(),
    }
}

/// No element matched. A filtered path answers `noTarget` unless `filtered_path_creates`, in
/// which case add/replace create an element from the filter's `eq` terms plus the value (Entra,
/// reference §2.2), so that successive adds on `addresses[type eq "work"].locality` and
/// `.region` build one element. Without a filter (`emails.value` on no emails) add/replace
/// create the element in every mode (RFC 7644 §3.5.2.3: replacing a missing target adds it).
fn create_or_fail(
    items: &mut Vec<Value>,
    target: &AttrTarget<'_>,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    let attr = target.attr;
    if target.filter.is_some() && !tol.filtered_path_creates {
        return Err(ScimError::no_target(format!("no value of {} matches the filter", attr.name)));
    }
    if op == PatchOpKind::Remove {
        return Ok(());
    }
    let new = selected_value(target, required(value, op)?, tol)?;
    if new.is_null() {
        return Ok(());
    }
    if attr.sub_attributes.is_empty() {
        items.push(new);
    } else {
        let mut element = target.filter.map(|f| seed_from_filter(f, attr, tol)).unwrap_or_default();
        match (target.sub, new) {
            (Some(sub), v) => set_ci(&mut element, sub.name, v),
            (None, Value::Object(fields)) => {
                for (key, v) in fields {
                    assign(&mut element, &key, PatchOpKind::Add, v);
                }
            }
            (None, _) => {}
        }
        items.push(Value::Object(element));
    }
    let created = items.len() - 1;
    settle_primary(items, &[created]);
    Ok(())
}

/// The sub-attribute values a filter pins with `eq` (through `and` only: an `or` or `not` does
/// not say what the element holds).
fn seed_from_filter(filter: &Filter, attr: &AttributeDef, tol: &Tolerances) -> Object {
    let mut seed = Object::new();
    collect_eq_terms(filter, attr, tol, &mut seed);
    seed
}

fn collect_eq_terms(filter: &Filter, attr: &AttributeDef, tol: &Tolerances, seed: &mut Object) {
    match filter {
        Filter::And(a, b) => {
            collect_eq_terms(a, attr, tol, seed);
            collect_eq_terms(b, attr, tol, seed);
        }
        Filter::Compare(path, CompareOp::Eq, comp)
            if path.urn.is_none() && path.sub_attr.is_none() =>
        {
            let Some(sub) = attr.sub_attribute(&path.name) else { return };
            if sub.mutability == Mutability::ReadOnly {
                return;
            }
            let value = match comp {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return,
            };
            set_ci(seed, sub.name, coerce(sub, &value, tol));
        }
        _ => {}
    }
}

fn remove_indices(items: &mut Vec<Value>, indices: &[usize]) {
    let mut i = 0;
    items.retain(|_| {
        let keep = !indices.contains(&i);
        i += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use crate::error::ScimType;
    use crate::patch::test_support::{bare_user, err, lenient, ok, scim_type, strict, user};
    use crate::schema::ResourceKind;
    use serde_json::json;

    #[test]
    fn filtered_replace_replaces_the_matching_elements() {
        let ops = json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "b@home.org", "type": "home"}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"][1], json!({"value": "b@home.org", "type": "home"}));
        assert_eq!(doc["emails"][0]["value"], json!("bjensen@example.com"));
    }

    #[test]
    fn filtered_add_merges_into_the_matching_elements() {
        let ops = json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"display": "Home"}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(
            doc["emails"][1],
            json!({"value": "babs@jensen.org", "type": "home", "display": "Home"})
        );
    }

    #[test]
    fn remove_by_filter_removes_matching_values_only() {
        let ops = json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(
            doc["emails"],
            json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
        );
        let ops = json!([{"op": "remove", "path": "emails[value ew \"example.com\" or type eq \"home\"]"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc.get("emails").is_none(), "no values left: unassigned");
    }

    #[test]
    fn remove_of_a_sub_attribute_in_matching_values() {
        let ops = json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"][0], json!({"value": "bjensen@example.com", "type": "work"}));
    }

    #[test]
    fn filtered_remove_without_a_match_is_a_no_op_when_lenient() {
        let ops = json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(doc, user());
        assert!(!outcome.doc_changed);
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::NoTarget);
    }

    #[test]
    fn sub_attribute_of_a_multi_valued_attribute_without_filter_addresses_every_value() {
        let ops = json!([{"op": "replace", "path": "phoneNumbers.type", "value": "mobile"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["phoneNumbers"], json!([{"value": "555-555-8377", "type": "mobile"}]));
        let ops = json!([{"op": "add", "path": "phoneNumbers.value", "value": "555-0100"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, strict());
        assert_eq!(doc["phoneNumbers"], json!([{"value": "555-0100"}]));
    }

    #[test]
    fn filtered_adds_on_a_missing_element_create_one_element() {
        // Entra (SCIM-SDK#680): several sub-attribute adds with one filter build one address.
        let ops = json!([
            {"op": "Add", "path": "addresses[type eq \"work\"].formatted", "value": "1 Main St\nSpringfield"},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"},
            {"op": "Add", "path": "addresses[type eq \"work\"].region", "value": "IL"}
        ]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops.clone(), lenient());
        assert_eq!(
            doc["addresses"],
            json!([{"type": "work", "formatted": "1 Main St\nSpringfield", "locality": "Springfield", "region": "IL"}])
        );
        let strict_ops = json!([{"op": "add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"}]);
        let e = err(ResourceKind::User, &bare_user(), strict_ops, strict());
        assert_eq!(scim_type(&e), ScimType::NoTarget);
    }

    #[test]
    fn filtered_value_add_on_a_user_without_emails_creates_the_email() {
        // SCIM-SDK#416.
        let ops = json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "alice@example.com"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, lenient());
        assert_eq!(doc["emails"], json!([{"type": "work", "value": "alice@example.com"}]));
    }

    #[test]
    fn filtered_replace_without_a_match_creates_when_lenient_and_is_no_target_when_strict() {
        let ops = json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555-0100"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(
            doc["phoneNumbers"],
            json!([{"value": "555-555-8377", "type": "work"}, {"type": "mobile", "value": "555-0100"}])
        );
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::NoTarget);
    }

    #[test]
    fn created_element_only_takes_eq_terms_joined_by_and() {
        let ops = json!([{"op": "add", "path": "emails[type eq \"other\" and display eq \"Alt\" or value co \"x\"].value", "value": "o@x.org"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, lenient());
        assert_eq!(doc["emails"], json!([{"value": "o@x.org"}]), "an `or` pins nothing");
        let ops = json!([{"op": "add", "path": "emails[type eq \"other\" and display eq \"Alt\"].value", "value": "o@x.org"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, lenient());
        assert_eq!(doc["emails"], json!([{"type": "other", "display": "Alt", "value": "o@x.org"}]));
    }

    #[test]
    fn validator_patches_display_and_primary_of_the_work_email() {
        let ops = json!([
            {"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"},
            {"op": "replace", "path": "emails[type eq \"home\"].display", "value": "Home mail"}
        ]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(
            doc["emails"],
            json!([
                {"value": "bjensen@example.com", "type": "work", "primary": false},
                {"value": "babs@jensen.org", "type": "home", "primary": true, "display": "Home mail"}
            ]),
            "one primary at most (RFC 7643 §2.4)"
        );
    }
}
