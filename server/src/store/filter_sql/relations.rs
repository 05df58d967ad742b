//! Filters over memberships: a group's `members` and a user's `groups` are rows of
//! `group_members`, not part of the document, so they become correlated subqueries.

use super::leaves::{Leaf, LeafType};
use super::{Translator, path_text};
use scim_schema::ScimError;
use scim_schema::filter::{CompValue, CompareOp, Filter};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Relation {
    /// A group's `members`.
    GroupMembers,
    /// A user's `groups`.
    UserGroups,
}

impl Relation {
    /// `FROM … WHERE <correlation>` for a membership subquery, alias `m` (and `gg` for groups).
    pub(super) fn rows_clause(self) -> &'static str {
        match self {
            Relation::GroupMembers => "FROM group_members m WHERE m.group_id = r.id",
            Relation::UserGroups => {
                "FROM group_members m JOIN groups gg ON gg.id = m.group_id WHERE m.member_id = r.id"
            }
        }
    }

    /// The SQL for one sub-attribute of a membership (`value`, `type`, `display`), its type and
    /// whether it compares case-exactly.
    fn column(self, sub: &str) -> Result<(&'static str, LeafType, bool), ScimError> {
        let sub = sub.to_ascii_lowercase();
        Ok(match (self, sub.as_str()) {
            (Relation::GroupMembers, "value") => ("m.member_id", LeafType::Id, true),
            (Relation::GroupMembers, "type") => ("m.member_type", LeafType::Text, false),
            (Relation::GroupMembers, "display") => (
                "(SELECT COALESCE(u2.display_name, u2.user_name) FROM users u2 WHERE u2.id = m.member_id \
                 UNION ALL SELECT g2.display_name FROM groups g2 WHERE g2.id = m.member_id)",
                LeafType::Text,
                false,
            ),
            (Relation::UserGroups, "value") => ("m.group_id", LeafType::Id, true),
            (Relation::UserGroups, "display") => ("gg.display_name", LeafType::Text, false),
            (Relation::UserGroups, "type") => ("'direct'", LeafType::Text, false),
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "unknown attribute \"{sub}\" in a membership filter"
                )));
            }
        })
    }
}

impl Translator {
    /// A filter over one membership row (`members[type eq "Group"]`, a PATCH member filter).
    pub(super) fn relation_filter(
        &mut self,
        rel: Relation,
        f: &Filter,
    ) -> Result<String, ScimError> {
        Ok(match f {
            Filter::And(a, b) => {
                format!("({} AND {})", self.relation_filter(rel, a)?, self.relation_filter(rel, b)?)
            }
            Filter::Or(a, b) => {
                format!("({} OR {})", self.relation_filter(rel, a)?, self.relation_filter(rel, b)?)
            }
            Filter::Not(a) => format!("(NOT COALESCE({}, FALSE))", self.relation_filter(rel, a)?),
            Filter::Present(p) => {
                rel.column(&p.name)?;
                "TRUE".to_owned()
            }
            Filter::Compare(p, op, value) => {
                if p.sub_attr.is_some() {
                    return Err(ScimError::invalid_filter(format!(
                        "unknown attribute \"{}\" in a member filter",
                        path_text(p)
                    )));
                }
                self.relation_leaf(rel, &p.name, *op, value, &p.name)?
            }
            Filter::ValuePath(p, _) => {
                return Err(ScimError::invalid_filter(format!(
                    "nested value filter on \"{}\" is not allowed",
                    path_text(p)
                )));
            }
        })
    }

    pub(super) fn relation_leaf(
        &mut self,
        rel: Relation,
        sub: &str,
        op: CompareOp,
        value: &CompValue,
        name: &str,
    ) -> Result<String, ScimError> {
        let (lhs, ty, case_exact) = rel.column(sub)?;
        self.leaf(Leaf { lhs: lhs.to_owned(), ty, case_exact, op, value, attr_name: name })
    }
}
