//! One comparison (`lhs op value`), rendered by the type of what is compared: names stored
//! folded, text folded in SQL, booleans, numbers, timestamps, resource ids and versions.

use super::dialect::{fold_sql, julian_day};
use super::{Backend, Bind, Translator, value_as_text};
use crate::store::{format_timestamp, parse_timestamp};
use scim_schema::ScimError;
use scim_schema::filter::{CompValue, CompareOp};
use scim_schema::schema::AttrType;

/// A comparison to render: `{lhs} op value`, where lhs is a SQL expression.
pub(super) struct Leaf<'a> {
    pub(super) lhs: String,
    pub(super) ty: LeafType,
    pub(super) case_exact: bool,
    pub(super) op: CompareOp,
    pub(super) value: &'a CompValue,
    pub(super) attr_name: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LeafType {
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

/// The comparison type of a schema attribute type.
pub(super) fn leaf_type_of(t: AttrType, name: &str) -> Result<LeafType, ScimError> {
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

impl Translator {
    pub(super) fn leaf(&mut self, l: Leaf<'_>) -> Result<String, ScimError> {
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
        match l.ty {
            LeafType::Bool => self.bool_leaf(&l),
            LeafType::Number => self.number_leaf(&l),
            LeafType::TimeColumn | LeafType::JsonTime => self.time_leaf(&l),
            LeafType::Id => self.id_leaf(&l),
            LeafType::Version => self.version_leaf(&l),
            LeafType::Text | LeafType::LowerText => self.text_leaf(&l),
        }
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
        // A boolean inside the JSON document is text to PostgreSQL; a column is boolean.
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

/// `s` with LIKE's wildcards escaped (the queries say `ESCAPE '\'`).
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
