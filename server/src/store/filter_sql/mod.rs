//! Translates a SCIM filter (and `sortBy`) into SQL for PostgreSQL or SQLite, so that lists are
//! filtered, counted and paged by the database — never by loading rows into memory.
//!
//! The resource table is aliased `r`. Indexed attributes (`id`, `userName`, `externalId`,
//! group `displayName`, `active`, `meta.*`) map to columns; every other attribute is read from
//! the JSON document; `members` / `groups` become subqueries over `group_members`.
//! Placeholders are `$n` on both backends (sqlx's SQLite driver maps `$n` to argument n).
//!
//! - [`target`] — what an attribute path refers to (a column, a JSON value, an array, a relation)
//! - [`predicates`] — presence, comparison and `attr[…]` filters over a target
//! - [`relations`] — filters over memberships (`members`, `groups`)
//! - [`leaves`] — one comparison, by value type
//! - [`sort`] — `sortBy`
//! - [`dialect`] — the SQL that differs between the two databases

mod dialect;
mod leaves;
mod predicates;
mod relations;
mod sort;
mod target;

use relations::Relation;
use scim_schema::ScimError;
use scim_schema::filter::{AttrPath, CompValue, Filter};
use scim_schema::schema::ResourceKind;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A value bound to a placeholder (defined with the backends that lower it).
pub use super::Bind;

/// A WHERE-clause fragment and the values for its placeholders, numbered from `first_param`.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlWhere {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// `filter` as a boolean SQL expression over alias `r`; placeholders start at `$first_param`.
pub fn translate(
    backend: Backend,
    kind: ResourceKind,
    filter: &Filter,
    first_param: usize,
) -> Result<SqlWhere, ScimError> {
    let mut t = Translator { backend, kind, binds: Vec::new(), first_param };
    let sql = t.filter(filter)?;
    Ok(SqlWhere { sql, binds: t.binds })
}

/// A member filter (the `[…]` of a PATCH path `members[…]`) as a condition over the
/// `group_members` row aliased `m`; its paths are `value`, `type` and `display`.
pub fn translate_members(
    backend: Backend,
    filter: &Filter,
    first_param: usize,
) -> Result<SqlWhere, ScimError> {
    let mut t = Translator { backend, kind: ResourceKind::Group, binds: Vec::new(), first_param };
    let sql = t.relation_filter(Relation::GroupMembers, filter)?;
    Ok(SqlWhere { sql, binds: t.binds })
}

/// An ORDER BY expression for `sortBy` (RFC 7644 §3.4.2.3): a multi-valued attribute sorts by
/// its primary value, else its first.
pub fn sort_expression(
    backend: Backend,
    kind: ResourceKind,
    path: &AttrPath,
) -> Result<String, ScimError> {
    let t = Translator { backend, kind, binds: Vec::new(), first_param: 1 };
    t.sort_expr(path)
}

/// One translation: the SQL text is returned by its methods, the values it binds collect in
/// `binds` (numbered from `first_param`), so a fragment can be spliced into a larger query.
struct Translator {
    backend: Backend,
    kind: ResourceKind,
    binds: Vec<Bind>,
    first_param: usize,
}

impl Translator {
    /// Adds a bound value and returns its placeholder.
    fn param(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.first_param + self.binds.len() - 1)
    }

    fn filter(&mut self, f: &Filter) -> Result<String, ScimError> {
        Ok(match f {
            Filter::And(a, b) => format!("({} AND {})", self.filter(a)?, self.filter(b)?),
            Filter::Or(a, b) => format!("({} OR {})", self.filter(a)?, self.filter(b)?),
            // A comparison with an absent value is NULL in SQL. AND and OR treat NULL like
            // false for our purposes; only NOT needs it made false first, so leaves stay plain
            // comparisons that can use an index.
            Filter::Not(a) => format!("(NOT COALESCE({}, FALSE))", self.filter(a)?),
            Filter::Present(path) => {
                let target = self.resolve(path)?;
                self.present(target)
            }
            Filter::Compare(path, op, value) => {
                let target = self.resolve(path)?;
                self.compare(target, *op, value, &path_text(path))?
            }
            Filter::ValuePath(path, inner) => self.value_path(path, inner)?,
        })
    }
}

fn value_as_text(v: &CompValue) -> String {
    match v {
        CompValue::String(s) => s.clone(),
        CompValue::Number(n) => n.to_string(),
        CompValue::Bool(b) => b.to_string(),
        CompValue::Null => String::new(),
    }
}

/// A path as the client wrote it, for error messages.
fn path_text(p: &AttrPath) -> String {
    let mut s = String::new();
    if let Some(urn) = &p.urn {
        let _ = write!(s, "{urn}:");
    }
    s.push_str(&p.name);
    if let Some(sub) = &p.sub_attr {
        let _ = write!(s, ".{sub}");
    }
    s
}

#[cfg(test)]
mod tests;
