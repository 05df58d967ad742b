//! The SQL that differs between PostgreSQL and SQLite: reading the JSON document, folding case,
//! and time arithmetic. Everything else in the translator is written once.

use super::{Backend, Translator};
use crate::store::Timestamp;
use std::fmt::Write as _;

/// The resource document column.
const DOC: &str = "r.doc";

impl Translator {
    /// The value at `keys` in the document as text (SQL NULL when absent). An extension
    /// attribute's keys start with the extension's URN.
    pub(super) fn json_text(&self, keys: &[&str]) -> String {
        match self.backend {
            Backend::Postgres => {
                let mut s = DOC.to_owned();
                for (i, k) in keys.iter().enumerate() {
                    s.push_str(if i + 1 == keys.len() { "->>" } else { "->" });
                    s.push_str(&pg_key(k));
                }
                format!("({s})")
            }
            Backend::Sqlite => format!("json_extract({DOC}, '{}')", sqlite_path(keys)),
        }
    }

    /// The value at `keys` in the document as JSON (for presence tests and arrays).
    pub(super) fn json_value(&self, keys: &[&str]) -> String {
        match self.backend {
            Backend::Postgres => {
                let mut s = DOC.to_owned();
                for k in keys {
                    s.push_str("->");
                    s.push_str(&pg_key(k));
                }
                format!("({s})")
            }
            Backend::Sqlite => format!("json_extract({DOC}, '{}')", sqlite_path(keys)),
        }
    }

    /// `FROM …` over the elements of the JSON array at `keys`, with the element alias `e`
    /// (a non-array value has no elements).
    pub(super) fn array_from(&self, keys: &[&str]) -> String {
        match self.backend {
            Backend::Postgres => format!(
                "jsonb_array_elements(CASE WHEN jsonb_typeof({c}) = 'array' THEN {c} ELSE '[]'::jsonb END) AS e(v)",
                c = self.json_value(keys)
            ),
            Backend::Sqlite => format!("json_each({DOC}, '{}') AS e", sqlite_path(keys)),
        }
    }

    /// A sub-attribute of the current array element as text.
    pub(super) fn element_text(&self, sub: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("(e.v->>{})", pg_key(sub)),
            Backend::Sqlite => format!("json_extract(e.value, '{}')", sqlite_path(&[sub])),
        }
    }

    /// The current array element itself, for arrays of simple values.
    pub(super) fn element_self(&self) -> String {
        match self.backend {
            Backend::Postgres => "(e.v #>> '{}')".to_owned(),
            Backend::Sqlite => "e.value".to_owned(),
        }
    }

    pub(super) fn fold_sql(&self, expr: &str) -> String {
        fold_sql(self.backend, expr)
    }
}

/// `expr` case-folded in SQL, as [`scim_schema::fold::lower`] folds: PostgreSQL's `lower()` does
/// under a UTF-8 ctype (C.UTF-8, en_US.UTF-8; the filter differential e2e test checks it);
/// SQLite's folds ASCII only, so there it is `scim_lower()`, registered on every connection by
/// the `sqlite-fold` crate.
pub(super) fn fold_sql(backend: Backend, expr: &str) -> String {
    match backend {
        Backend::Postgres => format!("lower({expr})"),
        Backend::Sqlite => format!("{}({expr})", sqlite_fold::FUNCTION_NAME),
    }
}

/// A PostgreSQL string literal for a JSON key. Keys come from the static schema, never from
/// the request, but are quoted properly anyway.
pub(super) fn pg_key(k: &str) -> String {
    format!("'{}'", k.replace('\'', "''"))
}

/// A SQLite JSON path (`$."a"."b"`) for `keys`, safe inside a single-quoted SQL literal.
fn sqlite_path(keys: &[&str]) -> String {
    let mut path = String::from("$");
    for k in keys {
        let _ = write!(path, ".\"{}\"", k.replace('\'', "''").replace('"', "\\\""));
    }
    path
}

/// The Julian day number SQLite's julianday() returns for this instant.
pub(super) fn julian_day(t: &Timestamp) -> f64 {
    t.timestamp_micros() as f64 / 86_400_000_000.0 + 2_440_587.5
}
