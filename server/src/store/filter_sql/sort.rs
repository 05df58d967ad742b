//! `sortBy` (RFC 7644 §3.4.2.3) as an ORDER BY expression: a multi-valued attribute sorts by its
//! primary value, else its first.

use super::dialect::{fold_sql, pg_key};
use super::target::Target;
use super::{Backend, Translator, path_text};
use scim_schema::ScimError;
use scim_schema::filter::AttrPath;
use scim_schema::schema::AttrType;

impl Translator {
    pub(super) fn sort_expr(&self, path: &AttrPath) -> Result<String, ScimError> {
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
                let from = self.array_from(&array.keys());
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
