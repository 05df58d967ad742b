//! Translates a SCIM filter (and `sortBy`) into SQL for PostgreSQL or SQLite, so that lists are
//! filtered, counted and paged by the database — never by loading rows into memory.
//!
//! The resource table is aliased `r`. Indexed attributes (`id`, `userName`, `externalId`,
//! group `displayName`, `active`, `meta.*`) map to columns; every other attribute is read from
//! the JSON document; `members` / `groups` become subqueries over `group_members`.
//! Placeholders are `$n` on both backends (sqlx's SQLite driver maps `$n` to argument n).

use super::types::{Timestamp, format_timestamp, parse_timestamp};
use scim_schema::ScimError;
use scim_schema::filter::{AttrPath, CompValue, CompareOp, Filter};
use scim_schema::schema::{AttrType, AttributeDef, ResourceKind};
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

/// What an attribute path refers to in SQL.
enum Target {
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
enum ColType {
    /// Already lower-cased by the server: compare with the lower-cased value.
    LowerText,
    Text,
    Bool,
    Time,
    Id,
    Version,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Relation {
    GroupMembers,
    UserGroups,
}

/// Where a JSON array lives: the top-level document or an extension object.
struct ArraySource {
    extension: Option<&'static str>,
    name: &'static str,
}

struct Translator {
    backend: Backend,
    kind: ResourceKind,
    binds: Vec<Bind>,
    first_param: usize,
}

/// A comparison to render: `{lhs} op value`, where lhs is a SQL expression.
struct Leaf<'a> {
    lhs: String,
    ty: LeafType,
    case_exact: bool,
    op: CompareOp,
    value: &'a CompValue,
    attr_name: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LeafType {
    Text,
    /// Text already lower-cased in storage.
    LowerText,
    Bool,
    Number,
    /// A timestamp column (native on PostgreSQL, canonical text on SQLite).
    TimeColumn,
    /// A dateTime inside JSON (RFC 3339 text as sent).
    JsonTime,
    Id,
    Version,
}

impl Translator {
    fn fold_sql(&self, expr: &str) -> String {
        fold_sql(self.backend, expr)
    }

    fn param(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.first_param + self.binds.len() - 1)
    }

    fn filter(&mut self, f: &Filter) -> Result<String, ScimError> {
        Ok(match f {
            Filter::And(a, b) => format!("({} AND {})", self.filter(a)?, self.filter(b)?),
            Filter::Or(a, b) => format!("({} OR {})", self.filter(a)?, self.filter(b)?),
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

    fn resolve(&self, path: &AttrPath) -> Result<Target, ScimError> {
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
        let container = self.container(resolved.extension);
        if attr.multi_valued {
            return Ok(Target::JsonArray {
                array: ArraySource { extension: resolved.extension, name: attr.name },
                attr,
                sub,
            });
        }
        Ok(match sub {
            Some(s) => Target::Json {
                expr: self.json_text(&container, &[attr.name, s.name]),
                ty: s.attr_type,
                case_exact: s.case_exact,
            },
            None if attr.attr_type == AttrType::Complex => {
                Target::JsonObject { expr: self.json_value(&container, &[attr.name]) }
            }
            None => Target::Json {
                expr: self.json_text(&container, &[attr.name]),
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

    // --- JSON access -----------------------------------------------------------------------

    /// The JSON object holding an attribute: the document, or an extension object inside it.
    fn container(&self, extension: Option<&str>) -> String {
        match (self.backend, extension) {
            (_, None) => "r.doc".to_owned(),
            (Backend::Postgres, Some(urn)) => format!("r.doc->{}", pg_key(urn)),
            // SQLite paths are built by json_path(); keep the URN for it.
            (Backend::Sqlite, Some(urn)) => format!("r.doc\u{0}{urn}"),
        }
    }

    /// `container.keys…` as text (SQL NULL when absent).
    fn json_text(&self, container: &str, keys: &[&str]) -> String {
        match self.backend {
            Backend::Postgres => {
                let mut s = container.to_owned();
                for (i, k) in keys.iter().enumerate() {
                    s.push_str(if i + 1 == keys.len() { "->>" } else { "->" });
                    s.push_str(&pg_key(k));
                }
                format!("({s})")
            }
            Backend::Sqlite => {
                let (base, path) = sqlite_path(container, keys);
                format!("json_extract({base}, '{path}')")
            }
        }
    }

    /// `container.keys…` as a JSON value (for presence tests).
    fn json_value(&self, container: &str, keys: &[&str]) -> String {
        match self.backend {
            Backend::Postgres => {
                let mut s = container.to_owned();
                for k in keys {
                    s.push_str("->");
                    s.push_str(&pg_key(k));
                }
                format!("({s})")
            }
            Backend::Sqlite => {
                let (base, path) = sqlite_path(container, keys);
                format!("json_extract({base}, '{path}')")
            }
        }
    }

    /// `FROM …` over the elements of a JSON array, with the element alias `e`.
    fn array_from(&self, array: &ArraySource) -> String {
        let container = self.container(array.extension);
        match self.backend {
            Backend::Postgres => format!(
                "jsonb_array_elements(CASE WHEN jsonb_typeof({c}) = 'array' THEN {c} ELSE '[]'::jsonb END) AS e(v)",
                c = self.json_value(&container, &[array.name])
            ),
            Backend::Sqlite => {
                let (base, path) = sqlite_path(&container, &[array.name]);
                format!("json_each({base}, '{path}') AS e")
            }
        }
    }

    /// A sub-attribute of the current array element as text.
    fn element_text(&self, sub: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("(e.v->>{})", pg_key(sub)),
            Backend::Sqlite => format!("json_extract(e.value, '$.\"{sub}\"')"),
        }
    }

    /// The current array element itself, for arrays of simple values.
    fn element_self(&self) -> String {
        match self.backend {
            Backend::Postgres => "(e.v #>> '{}')".to_owned(),
            Backend::Sqlite => "e.value".to_owned(),
        }
    }

    // --- predicates ------------------------------------------------------------------------

    fn present(&mut self, target: Target) -> String {
        match target {
            Target::Column { expr, nullable, .. } => {
                if nullable {
                    format!("({expr} IS NOT NULL AND {expr} <> '')")
                } else {
                    "TRUE".into()
                }
            }
            Target::Json { expr, ty, .. } => {
                if ty == AttrType::String || ty == AttrType::Reference {
                    format!("({expr} IS NOT NULL AND {expr} <> '')")
                } else {
                    format!("({expr} IS NOT NULL)")
                }
            }
            Target::JsonObject { expr } => format!("({expr} IS NOT NULL)"),
            Target::JsonArray { array, sub, .. } => {
                let cond = match sub {
                    Some(s) => format!("{} IS NOT NULL", self.element_text(s.name)),
                    None => "TRUE".to_owned(),
                };
                format!("EXISTS (SELECT 1 FROM {} WHERE {cond})", self.array_from(&array))
            }
            Target::Relation { rel, .. } => {
                format!("EXISTS (SELECT 1 {} )", self.relation_from(rel))
            }
            Target::Constant(_) => "TRUE".to_owned(),
        }
    }

    fn compare(
        &mut self,
        target: Target,
        op: CompareOp,
        value: &CompValue,
        name: &str,
    ) -> Result<String, ScimError> {
        match target {
            Target::Column { expr, ty, .. } => {
                let ty = match ty {
                    ColType::LowerText => LeafType::LowerText,
                    ColType::Text => LeafType::Text,
                    ColType::Bool => LeafType::Bool,
                    ColType::Time => LeafType::TimeColumn,
                    ColType::Id => LeafType::Id,
                    ColType::Version => LeafType::Version,
                };
                let case_exact = ty != LeafType::LowerText;
                self.leaf(Leaf { lhs: expr, ty, case_exact, op, value, attr_name: name })
            }
            Target::Json { expr, ty, case_exact } => {
                let ty = leaf_type_of(ty, name)?;
                self.leaf(Leaf { lhs: expr, ty, case_exact, op, value, attr_name: name })
            }
            Target::JsonObject { .. } => Err(ScimError::invalid_filter(format!(
                "\"{name}\" is a complex attribute: compare one of its sub-attributes"
            ))),
            Target::JsonArray { array, attr, sub } => {
                // `emails co "x"` means `emails.value co "x"` (RFC 7644 §3.4.2.2).
                let (lhs, ty, case_exact) = match (sub, attr.attr_type) {
                    (Some(s), _) => (self.element_text(s.name), s.attr_type, s.case_exact),
                    (None, AttrType::Complex) => {
                        let v = attr.sub_attribute("value").ok_or_else(|| {
                            ScimError::invalid_filter(format!("\"{name}\" has no value to compare"))
                        })?;
                        (self.element_text(v.name), v.attr_type, v.case_exact)
                    }
                    (None, t) => (self.element_self(), t, attr.case_exact),
                };
                let ty = leaf_type_of(ty, name)?;
                let from = self.array_from(&array);
                let some = format!("{lhs} IS NOT NULL");
                let cond = self.leaf(Leaf { lhs, ty, case_exact, op, value, attr_name: name })?;
                // As in the evaluator, `emails.type` holds the types that are there: with none it
                // is null, so `ne "x"` and `eq null` match (as `title ne "x"` matches a user
                // without a title); otherwise an element without a type does not count.
                let null = matches!(value, CompValue::Null);
                if (op == CompareOp::Ne && !null) || (op == CompareOp::Eq && null) {
                    return Ok(format!(
                        "(NOT EXISTS (SELECT 1 FROM {from} WHERE {some}) \
                         OR EXISTS (SELECT 1 FROM {from} WHERE {some} AND {cond}))"
                    ));
                }
                Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE {cond})"))
            }
            Target::Relation { rel, sub } => {
                let cond =
                    self.relation_leaf(rel, sub.as_deref().unwrap_or("value"), op, value, name)?;
                Ok(format!("EXISTS (SELECT 1 {} AND {cond})", self.relation_from(rel)))
            }
            Target::Constant(c) => {
                let ty = LeafType::Text;
                let lit = self.param(Bind::Text(c));
                self.leaf(Leaf { lhs: lit, ty, case_exact: false, op, value, attr_name: name })
            }
        }
    }

    /// `attr[inner]`: one EXISTS over the elements, with the inner filter's paths relative to
    /// each element.
    fn value_path(&mut self, path: &AttrPath, inner: &Filter) -> Result<String, ScimError> {
        let target = self.resolve(path)?;
        match target {
            Target::JsonArray { array, attr, sub: None } => {
                let from = self.array_from(&array);
                let cond = self.element_filter(inner, attr)?;
                Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE {cond})"))
            }
            Target::Relation { rel, sub: None } => {
                let cond = self.relation_filter(rel, inner)?;
                Ok(format!("EXISTS (SELECT 1 {} AND {cond})", self.relation_from(rel)))
            }
            // `name[givenName eq "x"]` on a single complex attribute: the same as name.givenName.
            Target::JsonObject { .. } => {
                let prefixed = prefix_paths(inner, path);
                self.filter(&prefixed)
            }
            _ => Err(ScimError::invalid_filter(format!(
                "\"{}\" is not a multi-valued complex attribute: it cannot take a [filter]",
                path_text(path)
            ))),
        }
    }

    fn element_filter(
        &mut self,
        f: &Filter,
        attr: &'static AttributeDef,
    ) -> Result<String, ScimError> {
        Ok(match f {
            Filter::And(a, b) => {
                format!("({} AND {})", self.element_filter(a, attr)?, self.element_filter(b, attr)?)
            }
            Filter::Or(a, b) => {
                format!("({} OR {})", self.element_filter(a, attr)?, self.element_filter(b, attr)?)
            }
            Filter::Not(a) => format!("(NOT COALESCE({}, FALSE))", self.element_filter(a, attr)?),
            Filter::ValuePath(p, _) => {
                return Err(ScimError::invalid_filter(format!(
                    "nested value filter on \"{}\" is not allowed",
                    path_text(p)
                )));
            }
            Filter::Present(p) => {
                let sub = element_sub(attr, p)?;
                format!("({} IS NOT NULL)", self.element_text(sub.name))
            }
            Filter::Compare(p, op, value) => {
                let sub = element_sub(attr, p)?;
                let name = format!("{}.{}", attr.name, sub.name);
                let ty = leaf_type_of(sub.attr_type, &name)?;
                let lhs = self.element_text(sub.name);
                self.leaf(Leaf {
                    lhs,
                    ty,
                    case_exact: sub.case_exact,
                    op: *op,
                    value,
                    attr_name: &name,
                })?
            }
        })
    }

    // --- memberships -----------------------------------------------------------------------

    /// `FROM … WHERE <correlation>` for a membership subquery, alias `m` (and `gg` for groups).
    fn relation_from(&self, rel: Relation) -> String {
        match rel {
            Relation::GroupMembers => "FROM group_members m WHERE m.group_id = r.id".to_owned(),
            Relation::UserGroups => {
                "FROM group_members m JOIN groups gg ON gg.id = m.group_id WHERE m.member_id = r.id"
                    .to_owned()
            }
        }
    }

    fn relation_filter(&mut self, rel: Relation, f: &Filter) -> Result<String, ScimError> {
        Ok(match f {
            Filter::And(a, b) => {
                format!("({} AND {})", self.relation_filter(rel, a)?, self.relation_filter(rel, b)?)
            }
            Filter::Or(a, b) => {
                format!("({} OR {})", self.relation_filter(rel, a)?, self.relation_filter(rel, b)?)
            }
            Filter::Not(a) => format!("(NOT COALESCE({}, FALSE))", self.relation_filter(rel, a)?),
            Filter::Present(p) => {
                let _ = self.relation_column(rel, &p.name)?;
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

    /// The SQL for one sub-attribute of a membership (`value`, `type`, `display`, `$ref`).
    fn relation_column(
        &self,
        rel: Relation,
        sub: &str,
    ) -> Result<(String, LeafType, bool), ScimError> {
        let sub = sub.to_ascii_lowercase();
        Ok(match (rel, sub.as_str()) {
            (Relation::GroupMembers, "value") => ("m.member_id".into(), LeafType::Id, true),
            (Relation::GroupMembers, "type") => ("m.member_type".into(), LeafType::Text, false),
            (Relation::GroupMembers, "display") => (
                "(SELECT COALESCE(u2.display_name, u2.user_name) FROM users u2 WHERE u2.id = m.member_id \
                 UNION ALL SELECT g2.display_name FROM groups g2 WHERE g2.id = m.member_id)"
                    .into(),
                LeafType::Text,
                false,
            ),
            (Relation::UserGroups, "value") => ("m.group_id".into(), LeafType::Id, true),
            (Relation::UserGroups, "display") => ("gg.display_name".into(), LeafType::Text, false),
            (Relation::UserGroups, "type") => ("'direct'".into(), LeafType::Text, false),
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "unknown attribute \"{sub}\" in a membership filter"
                )));
            }
        })
    }

    fn relation_leaf(
        &mut self,
        rel: Relation,
        sub: &str,
        op: CompareOp,
        value: &CompValue,
        name: &str,
    ) -> Result<String, ScimError> {
        let (lhs, ty, case_exact) = self.relation_column(rel, sub)?;
        self.leaf(Leaf { lhs, ty, case_exact, op, value, attr_name: name })
    }

    // --- the comparison itself -------------------------------------------------------------

    fn leaf(&mut self, l: Leaf<'_>) -> Result<String, ScimError> {
        if matches!(l.value, CompValue::Null) {
            return match l.op {
                CompareOp::Eq => Ok(format!("({} IS NULL)", l.lhs)),
                CompareOp::Ne => Ok(format!("({} IS NOT NULL)", l.lhs)),
                _ => Err(ScimError::invalid_filter(format!(
                    "operator \"{}\" cannot compare \"{}\" with null",
                    l.op, l.attr_name
                ))),
            };
        }
        let sql = match l.ty {
            LeafType::Bool => self.bool_leaf(&l)?,
            LeafType::Number => self.number_leaf(&l)?,
            LeafType::TimeColumn | LeafType::JsonTime => self.time_leaf(&l)?,
            LeafType::Id => self.id_leaf(&l)?,
            LeafType::Version => self.version_leaf(&l)?,
            LeafType::Text | LeafType::LowerText => self.text_leaf(&l)?,
        };
        // A comparison with an absent value is NULL in SQL. AND and OR treat NULL like false
        // for our purposes; only NOT needs it made false first (see `filter`), so leaves stay
        // plain comparisons that can use an index.
        Ok(sql)
    }

    fn text_leaf(&mut self, l: &Leaf<'_>) -> Result<String, ScimError> {
        let raw = value_as_text(l.value);
        // Pre-lowered columns were folded by the server (`names::fold`), so the value is folded
        // the same way; anything else is folded on both sides in SQL (`fold_sql`), so that a
        // stored value always matches itself. All three fold alike (scim_schema::fold).
        let stored_lower = l.ty == LeafType::LowerText;
        let sql_fold = !l.case_exact && !stored_lower;
        // Names are stored folded: an `eq`/`ne` value is folded the same way (NFC, trimmed, lower
        // case); a fragment (`sw`, `co`, `ew`) keeps its spaces.
        let value = match (stored_lower, l.op) {
            (false, _) => raw,
            (true, CompareOp::Eq | CompareOp::Ne) => crate::names::fold(&raw),
            (true, _) => crate::names::fold_fragment(&raw),
        };
        let lhs = if sql_fold { self.fold_sql(&l.lhs) } else { l.lhs.clone() };
        let backend = self.backend;
        let fold = |p: String| if sql_fold { fold_sql(backend, &p) } else { p };
        Ok(match l.op {
            CompareOp::Eq => {
                let p = fold(self.param(Bind::Text(value)));
                format!("{lhs} = {p}")
            }
            CompareOp::Ne => {
                let p = fold(self.param(Bind::Text(value)));
                format!("({lhs} IS NULL OR {lhs} <> {p})")
            }
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                self.pattern(&lhs, l.op, &value, sql_fold || stored_lower, sql_fold)
            }
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                let p = fold(self.param(Bind::Text(value)));
                let lhs = match self.backend {
                    // Lexicographic order (RFC 7644 §3.4.2.2), not the database's locale.
                    Backend::Postgres => format!("{lhs} COLLATE \"C\""),
                    Backend::Sqlite => lhs,
                };
                format!("{lhs} {} {p}", sql_op(l.op))
            }
        })
    }

    /// co / sw / ew. PostgreSQL's LIKE is case-sensitive; SQLite's folds ASCII, so on SQLite a
    /// case-exact match uses instr/substr instead. `lower_pattern` folds the pattern in SQL.
    fn pattern(
        &mut self,
        lhs: &str,
        op: CompareOp,
        value: &str,
        folded: bool,
        lower_pattern: bool,
    ) -> String {
        if self.backend == Backend::Sqlite && !folded {
            let p = self.param(Bind::Text(value.to_owned()));
            return match op {
                CompareOp::Co => format!("instr({lhs}, {p}) > 0"),
                CompareOp::Sw => format!("substr({lhs}, 1, length({p})) = {p}"),
                _ => {
                    format!("(length({lhs}) >= length({p}) AND substr({lhs}, -length({p})) = {p})")
                }
            };
        }
        let escaped = escape_like(value);
        let pattern = match op {
            CompareOp::Co => format!("%{escaped}%"),
            CompareOp::Sw => format!("{escaped}%"),
            _ => format!("%{escaped}"),
        };
        let p = self.param(Bind::Text(pattern));
        let p = if lower_pattern { self.fold_sql(&p) } else { p };
        format!("{lhs} LIKE {p} ESCAPE '\\'")
    }

    fn bool_leaf(&mut self, l: &Leaf<'_>) -> Result<String, ScimError> {
        let b = match l.value {
            CompValue::Bool(b) => *b,
            CompValue::String(s) if s.eq_ignore_ascii_case("true") => true,
            CompValue::String(s) if s.eq_ignore_ascii_case("false") => false,
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "\"{}\" is a boolean: compare it with true or false",
                    l.attr_name
                )));
            }
        };
        let lhs = match (self.backend, l.lhs.starts_with("r.")) {
            (Backend::Postgres, false) => format!("({})::boolean", l.lhs),
            _ => l.lhs.clone(),
        };
        let p = self.param(Bind::Bool(b));
        match l.op {
            CompareOp::Eq => Ok(format!("{lhs} = {p}")),
            CompareOp::Ne => Ok(format!("({lhs} IS NULL OR {lhs} <> {p})")),
            _ => Err(ScimError::invalid_filter(format!(
                "operator \"{}\" is not defined for boolean \"{}\"",
                l.op, l.attr_name
            ))),
        }
    }

    fn number_leaf(&mut self, l: &Leaf<'_>) -> Result<String, ScimError> {
        let n = match l.value {
            CompValue::Number(n) => n.clone(),
            CompValue::String(s) => s.parse::<serde_json::Number>().map_err(|_| {
                ScimError::invalid_filter(format!("\"{}\" is a number", l.attr_name))
            })?,
            _ => return Err(ScimError::invalid_filter(format!("\"{}\" is a number", l.attr_name))),
        };
        let bind = match n.as_i64() {
            Some(i) => Bind::Int(i),
            None => Bind::Float(n.as_f64().unwrap_or_default()),
        };
        let lhs = match self.backend {
            Backend::Postgres => format!("({})::numeric", l.lhs),
            Backend::Sqlite => l.lhs.clone(),
        };
        let p = self.param(bind);
        ordered_or_equal(l, &lhs, &p)
    }

    fn time_leaf(&mut self, l: &Leaf<'_>) -> Result<String, ScimError> {
        let text = value_as_text(l.value);
        let t = parse_timestamp(&text).ok_or_else(|| {
            ScimError::invalid_filter(format!(
                "\"{}\" is a dateTime: \"{text}\" is not an RFC 3339 timestamp",
                l.attr_name
            ))
        })?;
        let (lhs, bind) = match (self.backend, l.ty) {
            (Backend::Postgres, LeafType::TimeColumn) => (l.lhs.clone(), Bind::Time(t)),
            (Backend::Postgres, _) => (format!("({})::timestamptz", l.lhs), Bind::Time(t)),
            // SQLite columns hold the canonical text form, so text order is time order.
            (Backend::Sqlite, LeafType::TimeColumn) => {
                (l.lhs.clone(), Bind::Text(format_timestamp(&t)))
            }
            (Backend::Sqlite, _) => (format!("julianday({})", l.lhs), Bind::Float(julian_day(&t))),
        };
        if matches!(l.op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
            return Err(ScimError::invalid_filter(format!(
                "operator \"{}\" is not defined for dateTime \"{}\"",
                l.op, l.attr_name
            )));
        }
        let p = self.param(bind);
        ordered_or_equal(l, &lhs, &p)
    }

    fn id_leaf(&mut self, l: &Leaf<'_>) -> Result<String, ScimError> {
        let text = value_as_text(l.value);
        match l.op {
            CompareOp::Eq | CompareOp::Ne => {
                // A value that is no UUID names no resource (Entra's connection test sends
                // random ids; a non-UUID must not be a database error).
                let Ok(id) = uuid::Uuid::parse_str(&text) else {
                    return Ok(if l.op == CompareOp::Eq { "FALSE".into() } else { "TRUE".into() });
                };
                let p = self.param(Bind::Id(id));
                Ok(format!("{} {} {p}", l.lhs, sql_op(l.op)))
            }
            _ => {
                let lhs = match self.backend {
                    Backend::Postgres => format!("({})::text", l.lhs),
                    Backend::Sqlite => l.lhs.clone(),
                };
                let value = CompValue::String(text.to_lowercase());
                self.text_leaf(&Leaf { lhs, ty: LeafType::LowerText, value: &value, ..*l })
            }
        }
    }

    fn version_leaf(&mut self, l: &Leaf<'_>) -> Result<String, ScimError> {
        let text = value_as_text(l.value);
        let digits = text.trim_start_matches("W/").trim_matches('"');
        let Ok(v) = digits.parse::<i64>() else {
            return Ok("FALSE".into());
        };
        let p = self.param(Bind::Int(v));
        ordered_or_equal(l, &l.lhs, &p)
    }

    // --- sorting ---------------------------------------------------------------------------

    fn sort_expr(&self, path: &AttrPath) -> Result<String, ScimError> {
        let bad = || {
            ScimError::bad_request(
                scim_schema::ScimType::InvalidValue,
                format!("cannot sort by \"{}\"", path_text(path)),
            )
        };
        let target = self.resolve(path).map_err(|_| bad())?;
        Ok(match target {
            Target::Column { expr, .. } => expr,
            Target::Json { expr, case_exact, .. } => {
                if case_exact {
                    expr
                } else {
                    self.fold_sql(&expr)
                }
            }
            Target::JsonArray { array, attr, sub } => {
                let value = match (sub, attr.attr_type) {
                    (Some(s), _) => s.name,
                    (None, AttrType::Complex) => "value",
                    (None, _) => return Err(bad()),
                };
                let from = self.array_from(&array);
                let (v, primary, position) = match self.backend {
                    Backend::Postgres => (
                        format!("lower(e.v->>{})", pg_key(value)),
                        "COALESCE((e.v->>'primary')::boolean, FALSE)".to_owned(),
                        "e.n".to_owned(),
                    ),
                    Backend::Sqlite => (
                        fold_sql(self.backend, &format!("json_extract(e.value, '$.\"{value}\"')")),
                        "COALESCE(json_extract(e.value, '$.primary'), 0)".to_owned(),
                        "e.key".to_owned(),
                    ),
                };
                let from = match self.backend {
                    Backend::Postgres => from.replace(") AS e(v)", ") WITH ORDINALITY AS e(v, n)"),
                    Backend::Sqlite => from,
                };
                format!("(SELECT {v} FROM {from} ORDER BY {primary} DESC, {position} LIMIT 1)")
            }
            Target::Constant(_) => "r.seq".to_owned(),
            Target::JsonObject { .. } | Target::Relation { .. } => return Err(bad()),
        })
    }
}

/// `expr` case-folded in SQL, as [`scim_schema::fold::lower`] folds: PostgreSQL's `lower()` does
/// under a UTF-8 ctype (C.UTF-8, en_US.UTF-8; the filter differential e2e test checks it);
/// SQLite's folds ASCII only, so there it is `scim_lower()`, registered on every connection by
/// the `sqlite-fold` crate.
fn fold_sql(backend: Backend, expr: &str) -> String {
    match backend {
        Backend::Postgres => format!("lower({expr})"),
        Backend::Sqlite => format!("{}({expr})", sqlite_fold::FUNCTION_NAME),
    }
}

fn ordered_or_equal(l: &Leaf<'_>, lhs: &str, p: &str) -> Result<String, ScimError> {
    match l.op {
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => Err(ScimError::invalid_filter(format!(
            "operator \"{}\" is not defined for \"{}\"",
            l.op, l.attr_name
        ))),
        CompareOp::Ne => Ok(format!("({lhs} IS NULL OR {lhs} <> {p})")),
        op => Ok(format!("{lhs} {} {p}", sql_op(op))),
    }
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        _ => "=",
    }
}

fn leaf_type_of(t: AttrType, name: &str) -> Result<LeafType, ScimError> {
    Ok(match t {
        AttrType::String | AttrType::Reference => LeafType::Text,
        AttrType::Boolean => LeafType::Bool,
        AttrType::Integer | AttrType::Decimal => LeafType::Number,
        AttrType::DateTime => LeafType::JsonTime,
        AttrType::Binary => LeafType::Text,
        AttrType::Complex => {
            return Err(ScimError::invalid_filter(format!(
                "\"{name}\" is a complex attribute: compare one of its sub-attributes"
            )));
        }
    })
}

/// The sub-attribute a path inside `attr[…]` names.
fn element_sub(
    attr: &'static AttributeDef,
    p: &AttrPath,
) -> Result<&'static AttributeDef, ScimError> {
    if p.urn.is_some() || p.sub_attr.is_some() {
        return Err(ScimError::invalid_filter(format!(
            "\"{}\" is not a sub-attribute of \"{}\"",
            path_text(p),
            attr.name
        )));
    }
    attr.sub_attribute(&p.name).ok_or_else(|| {
        ScimError::invalid_filter(format!("\"{}\" has no sub-attribute \"{}\"", attr.name, p.name))
    })
}

/// `name[givenName eq "x"]` → `name.givenName eq "x"`.
fn prefix_paths(f: &Filter, parent: &AttrPath) -> Filter {
    let fix = |p: &AttrPath| AttrPath {
        urn: parent.urn.clone(),
        name: parent.name.clone(),
        sub_attr: Some(p.name.clone()),
    };
    match f {
        Filter::And(a, b) => {
            Filter::And(Box::new(prefix_paths(a, parent)), Box::new(prefix_paths(b, parent)))
        }
        Filter::Or(a, b) => {
            Filter::Or(Box::new(prefix_paths(a, parent)), Box::new(prefix_paths(b, parent)))
        }
        Filter::Not(a) => Filter::Not(Box::new(prefix_paths(a, parent))),
        Filter::Present(p) => Filter::Present(fix(p)),
        Filter::Compare(p, op, v) => Filter::Compare(fix(p), *op, v.clone()),
        Filter::ValuePath(p, inner) => Filter::ValuePath(p.clone(), inner.clone()),
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

/// A PostgreSQL string literal for a JSON key. Keys come from the static schema, never from
/// the request, but are quoted properly anyway.
fn pg_key(k: &str) -> String {
    format!("'{}'", k.replace('\'', "''"))
}

/// Splits the SQLite container marker produced by `container()` into the column and a JSON path.
fn sqlite_path(container: &str, keys: &[&str]) -> (String, String) {
    let (base, ext) = match container.split_once('\u{0}') {
        Some((b, urn)) => (b.to_owned(), Some(urn)),
        None => (container.to_owned(), None),
    };
    let mut path = String::from("$");
    for k in ext.into_iter().chain(keys.iter().copied()) {
        let _ = write!(path, ".\"{}\"", k.replace('\'', "''").replace('"', "\\\""));
    }
    (base, path)
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Julian day number SQLite's julianday() returns for this instant.
fn julian_day(t: &Timestamp) -> f64 {
    t.timestamp_micros() as f64 / 86_400_000_000.0 + 2_440_587.5
}
