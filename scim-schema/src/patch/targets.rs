//! Resolving an operation's path against the resource type's schemas: the attribute (with its
//! extension, sub-attribute and filter) it designates, a whole extension, a Group's `members`,
//! or nothing, for attributes that are skipped rather than refused.

use super::engine::Engine;
use crate::error::ScimError;
use crate::filter::ast::{AttrPath, Filter, PatchPath};
use crate::schema::{AttributeDef, Mutability, ResourceKind};

/// Where an operation came from: its `path`, or a key of a no-path (or whole-extension) value.
/// A readOnly attribute is an error in a path but skipped in a value, where clients echo
/// server-assigned attributes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Path,
    ValueKey,
}

/// What a path designates.
pub(super) enum Target<'p> {
    /// Nothing to do (unknown attribute tolerated, `password`, readOnly inside a value).
    Skip,
    /// A Group's `members`.
    Members(&'static AttributeDef),
    /// A whole extension object (`urn:…:enterprise:2.0:User`).
    Extension(&'static str),
    Attr(AttrTarget<'p>),
}

pub(super) struct AttrTarget<'p> {
    /// The extension URN the attribute lives under; `None` for the core schema.
    pub(super) extension: Option<&'static str>,
    pub(super) attr: &'static AttributeDef,
    /// `name.givenName`, `emails.value` or the `value` of `emails[type eq "work"].value`.
    pub(super) sub: Option<&'static AttributeDef>,
    pub(super) filter: Option<&'p Filter>,
}

impl Engine {
    /// What `path` designates, or why it is skipped (`Target::Skip`) or refused.
    pub(super) fn target<'p>(
        &mut self,
        path: &'p PatchPath,
        origin: Origin,
    ) -> Result<Target<'p>, ScimError> {
        let label = path_label(&path.attr);
        if let Some(urn) = self.whole_extension(&path.attr) {
            if path.filter.is_some() || path.filter_sub_attr.is_some() {
                return Err(ScimError::invalid_path(format!("{label} is not multi-valued")));
            }
            return Ok(Target::Extension(urn));
        }
        let Some(resolved) = self.kind.resolve(&path.attr) else {
            return self.unknown(label);
        };
        let filter_sub = match &path.filter_sub_attr {
            None => None,
            Some(name) => match resolved.attr.sub_attribute(name) {
                Some(sub) => Some(sub),
                None => return self.unknown(format!("{label}.{name}")),
            },
        };
        if self.kind == ResourceKind::Group
            && resolved.extension.is_none()
            && resolved.attr.name == "members"
        {
            return Ok(Target::Members(resolved.attr));
        }
        let sub = resolved.sub.or(filter_sub);
        let mutability =
            |m: Mutability| resolved.attr.mutability == m || sub.is_some_and(|s| s.mutability == m);
        if mutability(Mutability::WriteOnly) {
            // `password`: accepted, never stored.
            self.ignored.push(label);
            return Ok(Target::Skip);
        }
        if mutability(Mutability::ReadOnly) {
            return match origin {
                Origin::Path => Err(ScimError::mutability(format!("{label} is readOnly"))),
                Origin::ValueKey => {
                    if !resolved.attr.name.eq_ignore_ascii_case("id")
                        && !resolved.attr.name.eq_ignore_ascii_case("meta")
                    {
                        self.ignored.push(label);
                    }
                    Ok(Target::Skip)
                }
            };
        }
        Ok(Target::Attr(AttrTarget {
            extension: resolved.extension,
            attr: resolved.attr,
            sub,
            filter: path.filter.as_ref(),
        }))
    }

    /// The extension a path names as a whole. The parser splits a URN at its last `:`, so
    /// `urn:…:enterprise:2.0:User` arrives as urn `urn:…:enterprise:2.0`, name `User`.
    fn whole_extension(&self, path: &AttrPath) -> Option<&'static str> {
        let urn = path.urn.as_deref()?;
        if path.sub_attr.is_some() {
            return None;
        }
        self.kind.extension(&format!("{urn}:{}", path.name)).map(|ext| ext.id)
    }

    fn unknown<'p>(&mut self, label: String) -> Result<Target<'p>, ScimError> {
        if self.tol.ignore_unknown {
            self.ignored.push(label);
            Ok(Target::Skip)
        } else {
            Err(ScimError::invalid_path(format!("unknown attribute \"{label}\"")))
        }
    }
}

/// An attribute path as named in error messages and in `PatchOutcome::ignored`.
pub(super) fn path_label(path: &AttrPath) -> String {
    let mut label = match &path.urn {
        Some(urn) => format!("{urn}:{}", path.name),
        None => path.name.clone(),
    };
    if let Some(sub) = &path.sub_attr {
        label.push('.');
        label.push_str(sub);
    }
    label
}

#[cfg(test)]
mod tests {
    use crate::error::ScimType;
    use crate::patch::test_support::{
        ENT, bare_user, err, group, lenient, ok, scim_type, strict, user,
    };
    use crate::schema::ResourceKind;
    use serde_json::json;

    #[test]
    fn manager_display_name_is_read_only() {
        let ops = json!([{"op": "replace", "path": "manager.displayName", "value": "Boss"}]);
        let e = err(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(scim_type(&e), ScimType::Mutability);
    }

    #[test]
    fn read_only_paths_are_mutability_errors() {
        for path in [
            "id",
            "meta",
            "meta.lastModified",
            "groups",
            "groups[value eq \"g1\"]",
            "manager.displayName",
        ] {
            let ops = json!([{"op": "replace", "path": path, "value": "x"}]);
            let e = err(ResourceKind::User, &user(), ops, lenient());
            assert_eq!(scim_type(&e), ScimType::Mutability, "{path}");
        }
        let e =
            err(ResourceKind::Group, &group(), json!([{"op": "remove", "path": "id"}]), lenient());
        assert_eq!(scim_type(&e), ScimType::Mutability);
    }

    #[test]
    fn read_only_keys_in_a_no_path_value_are_skipped() {
        let ops = json!([{"op": "replace", "value": {
            "id": "2819c223", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "meta": {"resourceType": "User"}, "groups": [], "displayName": "Babs"
        }}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["displayName"], json!("Babs"));
        assert!(
            doc.get("id").is_none() && doc.get("meta").is_none() && doc.get("groups").is_none()
        );
        assert_eq!(outcome.ignored, vec!["groups".to_owned()]);
    }

    #[test]
    fn password_is_accepted_and_never_stored() {
        let ops = json!([
            {"op": "replace", "path": "password", "value": "1mz050nq"},
            {"op": "replace", "value": {"password": "t1meMa$heen", "nickName": "Babs"}}
        ]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc.get("password").is_none());
        assert_eq!(doc["nickName"], json!("Babs"));
        assert_eq!(outcome.ignored, vec!["password".to_owned(), "password".to_owned()]);
    }

    #[test]
    fn unknown_attributes_are_ignored_when_lenient_and_invalid_path_when_strict() {
        for path in [
            "favoriteColor",
            "name.nickname",
            "emails[type eq \"work\"].color",
            "urn:example:ext:1.0:User:badge",
        ] {
            let ops = json!([{"op": "add", "path": path, "value": "x"},
                             {"op": "add", "path": "title", "value": "T"}]);
            let (doc, outcome) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
            assert_eq!(doc["title"], json!("T"));
            assert_eq!(outcome.ignored.len(), 1, "{path}: {:?}", outcome.ignored);
            let e = err(ResourceKind::User, &user(), ops, strict());
            assert_eq!(scim_type(&e), ScimType::InvalidPath, "{path}");
        }
        let ops = json!([{"op": "replace", "value": {"favoriteColor": "blue", "title": "T"}}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(
            (doc["title"].clone(), outcome.ignored),
            (json!("T"), vec!["favoriteColor".to_owned()])
        );
        assert_eq!(
            scim_type(&err(ResourceKind::User, &user(), ops, strict())),
            ScimType::InvalidPath
        );
    }

    #[test]
    fn paths_are_case_insensitive_and_stored_in_canonical_case() {
        let ops = json!([
            {"op": "replace", "path": "EMAILS[TYPE eq \"WORK\"].VALUE", "value": "b@example.com"},
            {"op": "add", "path": "NICKNAME", "value": "Babs"},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:COSTCENTER", "value": "4130"}
        ]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"][0]["value"], json!("b@example.com"), "type is caseExact:false");
        assert_eq!(doc["nickName"], json!("Babs"));
        assert_eq!(doc[ENT]["costCenter"], json!("4130"));
    }

    #[test]
    fn unqualified_extension_attribute_resolves() {
        let ops = json!([{"op": "replace", "path": "department", "value": "Sales"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, strict());
        assert_eq!(doc[ENT], json!({"department": "Sales"}));
    }
}
