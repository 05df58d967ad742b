//! Presence (`pr`), comparisons and value filters (`emails[type eq "work"]`) over whatever an
//! attribute path resolved to; the comparison itself is in [`super::leaves`].

use super::leaves::{Leaf, LeafType, leaf_type_of};
use super::target::{ColType, Target};
use super::{Bind, Translator, path_text};
use scim_schema::ScimError;
use scim_schema::filter::{AttrPath, CompValue, CompareOp, Filter};
use scim_schema::schema::{AttrType, AttributeDef};

impl Translator {
    pub(super) fn present(&mut self, target: Target) -> String {
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
                format!("EXISTS (SELECT 1 FROM {} WHERE {cond})", self.array_from(&array.keys()))
            }
            Target::Relation { rel, .. } => {
                format!("EXISTS (SELECT 1 {} )", rel.rows_clause())
            }
            Target::Constant(_) => "TRUE".to_owned(),
        }
    }

    pub(super) fn compare(
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
                let from = self.array_from(&array.keys());
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
                Ok(format!("EXISTS (SELECT 1 {} AND {cond})", rel.rows_clause()))
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
    pub(super) fn value_path(
        &mut self,
        path: &AttrPath,
        inner: &Filter,
    ) -> Result<String, ScimError> {
        let target = self.resolve(path)?;
        match target {
            Target::JsonArray { array, attr, sub: None } => {
                let from = self.array_from(&array.keys());
                let cond = self.element_filter(inner, attr)?;
                Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE {cond})"))
            }
            Target::Relation { rel, sub: None } => {
                let cond = self.relation_filter(rel, inner)?;
                Ok(format!("EXISTS (SELECT 1 {} AND {cond})", rel.rows_clause()))
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

    /// The filter inside `attr[…]`, over the array element `e`.
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
