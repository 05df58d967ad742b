//! What an attribute path of a filter refers to in SQL: a column of the resource table, a value
//! or an array inside the JSON document, or a membership relation.

use super::relations::Relation;
use super::{Translator, path_text};
use scim_schema::ScimError;
use scim_schema::filter::AttrPath;
use scim_schema::schema::{AttrType, AttributeDef, ResourceKind};

/// What an attribute path refers to in SQL.
pub(super) enum Target {
    /// A column of the resource table (or, in a membership subquery, of `group_members`).
    Column { expr: String, ty: ColType, nullable: bool },
    /// A single value inside the JSON document; `expr` yields it as text.
    Json { expr: String, ty: AttrType, case_exact: bool },
    /// A multi-valued attribute of the JSON document, optionally narrowed to a sub-attribute.
    JsonArray {
        array: ArraySource,
        attr: &'static AttributeDef,
        sub: Option<&'static AttributeDef>,
    },
    /// A single-valued complex attribute addressed as a whole (`name pr`).
    JsonObject { expr: String },
    /// A group's `members` or a user's `groups`, optionally narrowed to a sub-attribute.
    Relation { rel: Relation, sub: Option<String> },
    /// `meta.resourceType`: the same for every row.
    Constant(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ColType {
    /// Already lower-cased by the server: compare with the lower-cased value.
    LowerText,
    Text,
    Bool,
    Time,
    Id,
    Version,
}

/// Where a JSON array lives: the top-level document or an extension object.
pub(super) struct ArraySource {
    extension: Option<&'static str>,
    name: &'static str,
}

impl ArraySource {
    /// The array's keys in the document.
    pub(super) fn keys(&self) -> Vec<&'static str> {
        doc_keys(self.extension, &[self.name])
    }
}

/// The keys of an attribute in the document: an extension attribute lives in the object named
/// by the extension's URN.
fn doc_keys<'k>(extension: Option<&'k str>, keys: &[&'k str]) -> Vec<&'k str> {
    extension.into_iter().chain(keys.iter().copied()).collect()
}

impl Translator {
    pub(super) fn resolve(&self, path: &AttrPath) -> Result<Target, ScimError> {
        let resolved = self.kind.resolve(path).ok_or_else(|| {
            ScimError::invalid_filter(format!("unknown attribute \"{}\"", path_text(path)))
        })?;
        let attr = resolved.attr;
        let sub = resolved.sub;
        if resolved.extension.is_none()
            && let Some(t) = self.special_attribute(attr.name, sub.map(|s| s.name))?
        {
            return Ok(t);
        }
        if attr.multi_valued {
            return Ok(Target::JsonArray {
                array: ArraySource { extension: resolved.extension, name: attr.name },
                attr,
                sub,
            });
        }
        let ext = resolved.extension;
        Ok(match sub {
            Some(s) => Target::Json {
                expr: self.json_text(&doc_keys(ext, &[attr.name, s.name])),
                ty: s.attr_type,
                case_exact: s.case_exact,
            },
            None if attr.attr_type == AttrType::Complex => {
                Target::JsonObject { expr: self.json_value(&doc_keys(ext, &[attr.name])) }
            }
            None => Target::Json {
                expr: self.json_text(&doc_keys(ext, &[attr.name])),
                ty: attr.attr_type,
                case_exact: attr.case_exact,
            },
        })
    }

    /// Attributes that live in columns or relations rather than in the document.
    fn special_attribute(
        &self,
        name: &str,
        sub: Option<&str>,
    ) -> Result<Option<Target>, ScimError> {
        let col = |expr: &str, ty, nullable| Target::Column { expr: expr.to_owned(), ty, nullable };
        Ok(Some(match (self.kind, name, sub) {
            (_, "id", _) => col("r.id", ColType::Id, false),
            (_, "externalId", _) => col("r.external_id", ColType::Text, true),
            (ResourceKind::User, "userName", _) => {
                col("r.user_name_lower", ColType::LowerText, false)
            }
            (ResourceKind::User, "active", _) => col("r.active", ColType::Bool, false),
            (ResourceKind::Group, "displayName", _) => {
                col("r.display_name_lower", ColType::LowerText, false)
            }
            (_, "meta", Some("created")) => col("r.created_at", ColType::Time, false),
            (_, "meta", Some("lastModified")) => col("r.modified_at", ColType::Time, false),
            (_, "meta", Some("version")) => col("r.version", ColType::Version, false),
            (_, "meta", Some("resourceType")) => Target::Constant(self.kind.name().to_owned()),
            (_, "meta", _) => {
                return Err(ScimError::invalid_filter(format!(
                    "filtering on meta.{} is not supported",
                    sub.unwrap_or("")
                )));
            }
            (ResourceKind::Group, "members", _) => {
                Target::Relation { rel: Relation::GroupMembers, sub: sub.map(str::to_owned) }
            }
            (ResourceKind::User, "groups", _) => {
                Target::Relation { rel: Relation::UserGroups, sub: sub.map(str::to_owned) }
            }
            _ => return Ok(None),
        }))
    }
}
