//! The checks on the patched document as a whole, once every operation has run: what a
//! sequence of operations does to a required or immutable attribute only shows at the end.

use serde_json::Value;

use super::Object;
use super::object::field;
use crate::error::ScimError;
use crate::filter::eval::{get_ci, is_present};
use crate::schema::{AttributeDef, Mutability, ResourceKind};

/// RFC 7644 §3.5.2.2: a required attribute that is removed or becomes unassigned is
/// `mutability`.
pub(super) fn check_required_kept(
    kind: ResourceKind,
    before: &Value,
    after: &Object,
) -> Result<(), ScimError> {
    for (extension, attr) in schema_attributes(kind) {
        if !attr.required {
            continue;
        }
        let had = lookup(before.as_object(), extension, attr.name).is_some_and(is_present);
        let has = lookup(Some(after), extension, attr.name).is_some_and(is_present);
        if had && !has {
            return Err(ScimError::mutability(format!(
                "{} is required and cannot be removed",
                attr.name
            )));
        }
    }
    Ok(())
}

/// RFC 7643 §2.2: an immutable attribute may be set when unassigned, never changed.
pub(super) fn check_immutable_kept(
    kind: ResourceKind,
    before: &Value,
    after: &Object,
) -> Result<(), ScimError> {
    for (extension, attr) in schema_attributes(kind) {
        let old = lookup(before.as_object(), extension, attr.name);
        let new = lookup(Some(after), extension, attr.name);
        let changed =
            |old: Option<&Value>, new: Option<&Value>| old.is_some_and(is_present) && old != new;
        if attr.mutability == Mutability::Immutable && changed(old, new) {
            return Err(ScimError::mutability(format!("{} is immutable", attr.name)));
        }
        if attr.multi_valued {
            continue;
        }
        for sub in attr.sub_attributes.iter().filter(|s| s.mutability == Mutability::Immutable) {
            let old_sub = old.and_then(|v| get_ci(v, sub.name));
            let new_sub = new.and_then(|v| get_ci(v, sub.name));
            if changed(old_sub, new_sub) {
                return Err(ScimError::mutability(format!(
                    "{}.{} is immutable",
                    attr.name, sub.name
                )));
            }
        }
    }
    Ok(())
}

/// Every top-level attribute of the resource type, with the extension it lives under.
fn schema_attributes(
    kind: ResourceKind,
) -> impl Iterator<Item = (Option<&'static str>, &'static AttributeDef)> {
    let core = kind.core_schema().attributes.iter().map(|a| (None, a));
    let extensions = kind
        .extensions()
        .iter()
        .flat_map(|ext| ext.attributes.iter().map(move |a| (Some(ext.id), a)));
    core.chain(extensions)
}

fn lookup<'a>(root: Option<&'a Object>, extension: Option<&str>, name: &str) -> Option<&'a Value> {
    let root = root?;
    match extension {
        None => field(root, name),
        Some(urn) => field(root, urn)?.as_object().and_then(|ext| field(ext, name)),
    }
}

#[cfg(test)]
mod tests {
    use crate::error::ScimType;
    use crate::patch::test_support::{err, group, lenient, scim_type, strict, user};
    use crate::schema::ResourceKind;
    use serde_json::json;

    #[test]
    fn removing_a_required_attribute_is_a_mutability_error() {
        // RFC 7644 §3.5.2.2.
        for ops in [
            json!([{"op": "remove", "path": "userName"}]),
            json!([{"op": "replace", "path": "userName", "value": null}]),
            json!([{"op": "replace", "value": {"userName": ""}}]),
        ] {
            let e = err(ResourceKind::User, &user(), ops, lenient());
            assert_eq!(scim_type(&e), ScimType::Mutability);
        }
        let e = err(
            ResourceKind::Group,
            &group(),
            json!([{"op": "remove", "path": "displayName"}]),
            strict(),
        );
        assert_eq!(scim_type(&e), ScimType::Mutability);
    }
}
