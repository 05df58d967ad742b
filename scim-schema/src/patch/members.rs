//! Operations on a Group's `members`. They never touch the document: each becomes a
//! [`MemberChange`] that the server's store applies in SQL, so a large group is never loaded.

use serde_json::Value;

use super::engine::{remove_with_value_error, required};
use super::targets::path_label;
use super::{MemberChange, PatchOpKind};
use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::filter::ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::filter::eval::get_ci;
use crate::resource::{MemberRef, MemberType};
use crate::schema::AttributeDef;

/// The membership change an operation on a Group's `members` asks for; `None` when it changes
/// nothing (an empty list to add or remove).
pub(super) fn member_change(
    op: PatchOpKind,
    path: &PatchPath,
    attr: &AttributeDef,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<Option<MemberChange>, ScimError> {
    if path.attr.sub_attr.is_some() || path.filter_sub_attr.is_some() {
        return Err(ScimError::invalid_path(
            "members can only be added, removed or replaced as a whole, not by sub-attribute",
        ));
    }
    let change = match (&path.filter, op) {
        (Some(filter), PatchOpKind::Remove) => member_filter_removal(filter, attr)?,
        (Some(_), _) => {
            return Err(ScimError::invalid_path(
                "a filtered members path is only supported with \"remove\"",
            ));
        }
        (None, PatchOpKind::Add) => {
            let refs = parse_members(required(value, op)?, tol)?;
            if refs.is_empty() {
                return Ok(None);
            }
            MemberChange::Add(refs)
        }
        (None, PatchOpKind::Replace) => {
            MemberChange::ReplaceAll(parse_members(required(value, op)?, tol)?)
        }
        (None, PatchOpKind::Remove) => match value {
            None | Some(Value::Null) => MemberChange::RemoveAll,
            Some(listed) if tol.remove_member_values => {
                let ids: Vec<String> =
                    parse_members(listed, tol)?.into_iter().map(|m| m.value).collect();
                if ids.is_empty() {
                    return Ok(None);
                }
                MemberChange::Remove(ids)
            }
            Some(_) => return Err(remove_with_value_error("members")),
        },
    };
    Ok(Some(change))
}

/// `remove members[value eq "a" or value eq "b"]` → `Remove(["a","b"])`; any other filter over
/// the members' sub-attributes → `RemoveWhere`.
fn member_filter_removal(filter: &Filter, attr: &AttributeDef) -> Result<MemberChange, ScimError> {
    check_member_filter(filter, attr)?;
    let mut ids = Vec::new();
    Ok(if value_eq_ids(filter, &mut ids) {
        MemberChange::Remove(ids)
    } else {
        MemberChange::RemoveWhere(filter.clone())
    })
}

/// Every attribute in a members filter must be a sub-attribute of `members`, since the store
/// translates it into SQL over the membership table.
fn check_member_filter(filter: &Filter, attr: &AttributeDef) -> Result<(), ScimError> {
    let check_path = |path: &AttrPath| {
        if path.urn.is_none() && path.sub_attr.is_none() && attr.sub_attribute(&path.name).is_some()
        {
            Ok(())
        } else {
            Err(ScimError::invalid_path(format!(
                "members filters may only use value, type, display and $ref, not {}",
                path_label(path)
            )))
        }
    };
    match filter {
        Filter::Present(path) | Filter::Compare(path, _, _) => check_path(path),
        Filter::ValuePath(path, _) => Err(ScimError::invalid_path(format!(
            "members filters cannot nest a value path ({})",
            path_label(path)
        ))),
        Filter::Not(inner) => check_member_filter(inner, attr),
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_member_filter(a, attr)?;
            check_member_filter(b, attr)
        }
    }
}

/// Whether the filter is `value eq "x"` or an `or` of such; collects the ids.
fn value_eq_ids(filter: &Filter, ids: &mut Vec<String>) -> bool {
    match filter {
        Filter::Compare(path, CompareOp::Eq, comp) if path.name.eq_ignore_ascii_case("value") => {
            match comp {
                CompValue::String(s) => ids.push(s.clone()),
                // An unquoted numeric id (`value eq 42`) parses as a number.
                CompValue::Number(n) => ids.push(n.to_string()),
                CompValue::Bool(_) | CompValue::Null => return false,
            }
            true
        }
        Filter::Or(a, b) => value_eq_ids(a, ids) && value_eq_ids(b, ids),
        _ => false,
    }
}

/// Member objects: `value` (a string) is required; `type` is optional (`User`/`Group`, any
/// case; Okta sends none); `$ref` (may be null) and `display` are ignored.
fn parse_members(value: &Value, tol: &Tolerances) -> Result<Vec<MemberRef>, ScimError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(parse_member).collect(),
        Value::Object(_) if tol.single_value_as_array => Ok(vec![parse_member(value)?]),
        _ => Err(ScimError::invalid_value("members must be an array of {\"value\": id} objects")),
    }
}

fn parse_member(value: &Value) -> Result<MemberRef, ScimError> {
    let id = match get_ci(value, "value") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(ScimError::invalid_value("each member needs a string \"value\" (its id)")),
    };
    let member_type = match get_ci(value, "type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("user") => Some(MemberType::User),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("group") => Some(MemberType::Group),
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "member type must be \"User\" or \"Group\", not {other}"
            )));
        }
    };
    Ok(MemberRef { value: id, member_type })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::filter::parser::parse_patch_path;
    use crate::patch::test_support::{err, group, lenient, member, ok, scim_type, strict, user};
    use crate::schema::ResourceKind;
    use serde_json::json;

    #[test]
    fn okta_membership_patch_removes_by_filter_and_adds_by_value_array() {
        let ops = json!([
            {"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
            {"op": "add", "path": "members", "value": [
                {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}
            ]}
        ]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(doc, group());
        assert!(!outcome.doc_changed);
        assert_eq!(
            outcome.member_changes,
            vec![
                MemberChange::Remove(vec!["89bb1940-b905-4575-9e7f-6f887cfb368e".to_owned()]),
                MemberChange::Add(vec![member("23a35c27-23d3-4c03-b4c5-6443c09e7173")]),
            ]
        );
    }

    #[test]
    fn okta_push_now_on_an_empty_group_replaces_members_with_nothing() {
        let ops = json!([{"op": "replace", "path": "members", "value": []}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(outcome.member_changes, vec![MemberChange::ReplaceAll(vec![])]);
        let ops = json!([{"op": "replace", "path": "members", "value": [{"value": "u1"}, {"value": "u2", "type": "User"}]}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(
            outcome.member_changes,
            vec![MemberChange::ReplaceAll(vec![
                member("u1"),
                MemberRef { value: "u2".to_owned(), member_type: Some(MemberType::User) },
            ])]
        );
    }

    #[test]
    fn entra_default_group_patches() {
        let ops = json!([
            {"op": "Replace", "path": "displayName", "value": "Sales"},
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u1091"}]}
        ]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, lenient());
        assert_eq!(doc["displayName"], json!("Sales"));
        assert_eq!(
            outcome.member_changes,
            vec![
                MemberChange::Add(vec![member("f648")]),
                MemberChange::Remove(vec!["u1091".to_owned()])
            ]
        );
    }

    #[test]
    fn remove_members_with_a_value_is_refused_when_strict() {
        // Strictly the value is ignored and ALL members would be removed
        // (MicrosoftDocs/azure-docs#30826): refuse rather than lose memberships.
        let ops = json!([{"op": "remove", "path": "members", "value": [{"value": "u1091"}]}]);
        let e = err(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn entra_flagged_removes_a_member_by_filter() {
        let ops = json!([{"op": "remove", "path": "members[value eq \"7f4b\"]"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(outcome.member_changes, vec![MemberChange::Remove(vec!["7f4b".to_owned()])]);
    }

    #[test]
    fn authentik_patches_one_operation_per_user() {
        let ops = json!([
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "add", "path": "members", "value": [{"value": "u2"}]},
            {"op": "remove", "path": "members", "value": [{"value": "u3"}]}
        ]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, lenient());
        assert_eq!(
            outcome.member_changes,
            vec![
                MemberChange::Add(vec![member("u1")]),
                MemberChange::Add(vec![member("u2")]),
                MemberChange::Remove(vec!["u3".to_owned()]),
            ]
        );
    }

    #[test]
    fn remove_members_without_value_removes_all() {
        let ops = json!([{"op": "remove", "path": "members"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(outcome.member_changes, vec![MemberChange::RemoveAll]);
    }

    #[test]
    fn remove_members_by_other_filters() {
        let ops = json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\" or value eq \"c\"]"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(
            outcome.member_changes,
            vec![MemberChange::Remove(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])]
        );
        let ops = json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        let expected =
            parse_patch_path("members[type eq \"Group\"]", &strict()).unwrap().filter.unwrap();
        assert_eq!(outcome.member_changes, vec![MemberChange::RemoveWhere(expected)]);
        let ops = json!([{"op": "remove", "path": "members[value eq \"a\" and type eq \"User\"]"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert!(matches!(outcome.member_changes[..], [MemberChange::RemoveWhere(_)]));
    }

    #[test]
    fn members_filters_on_unknown_attributes_are_invalid_path() {
        let ops = json!([{"op": "remove", "path": "members[userName eq \"a\"]"}]);
        let e = err(ResourceKind::Group, &group(), ops, lenient());
        assert_eq!(scim_type(&e), ScimType::InvalidPath);
    }

    #[test]
    fn unsupported_member_paths_are_invalid_path() {
        for (op, path) in [
            ("replace", "members[value eq \"a\"]"),
            ("add", "members[value eq \"a\"]"),
            ("replace", "members.value"),
            ("remove", "members[value eq \"a\"].display"),
        ] {
            let ops = json!([{"op": op, "path": path, "value": [{"value": "b"}]}]);
            let e = err(ResourceKind::Group, &group(), ops, lenient());
            assert_eq!(scim_type(&e), ScimType::InvalidPath, "{op} {path}");
        }
    }

    #[test]
    fn no_path_members_key_adds_or_replaces() {
        let ops = json!([{"op": "add", "value": {"members": [{"value": "u1", "type": "user"}]}}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(
            outcome.member_changes,
            vec![MemberChange::Add(vec![MemberRef {
                value: "u1".to_owned(),
                member_type: Some(MemberType::User)
            }])]
        );
        let ops = json!([{"op": "replace", "value": {"displayName": "X", "members": [{"value": "g2", "type": "GROUP"}]}}]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(doc["displayName"], json!("X"));
        assert_eq!(
            outcome.member_changes,
            vec![MemberChange::ReplaceAll(vec![MemberRef {
                value: "g2".to_owned(),
                member_type: Some(MemberType::Group)
            }])]
        );
    }

    #[test]
    fn invalid_members_are_invalid_value() {
        for value in [
            json!([{"display": "no value"}]),
            json!([{"value": 42}]),
            json!([{"value": ""}]),
            json!([{"value": "u1", "type": "Robot"}]),
            json!("u1"),
        ] {
            let ops = json!([{"op": "add", "path": "members", "value": value}]);
            let e = err(ResourceKind::Group, &group(), ops, lenient());
            assert_eq!(scim_type(&e), ScimType::InvalidValue, "{value}");
        }
    }

    #[test]
    fn a_single_member_object_is_one_member_when_lenient() {
        let ops = json!([{"op": "add", "path": "members", "value": {"value": "u1"}}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops.clone(), lenient());
        assert_eq!(outcome.member_changes, vec![MemberChange::Add(vec![member("u1")])]);
        let e = err(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn users_have_no_members() {
        let ops = json!([{"op": "add", "path": "members", "value": [{"value": "u1"}]}]);
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidPath);
    }
}
