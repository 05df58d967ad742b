//! Builders and assertions shared by the parser tests.

use super::{MAX_FILTER_LEN, parse_filter, parse_patch_path};
use crate::compat::Tolerances;
use crate::error::ScimType;
use crate::filter::ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};

pub(super) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

pub(super) fn strict() -> Tolerances {
    Tolerances::strict()
}

pub(super) fn lenient() -> Tolerances {
    Tolerances::lenient()
}

/// Parses in strict mode, panicking with the error.
pub(super) fn p(input: &str) -> Filter {
    parse_filter(input, &strict()).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

/// Parses in lenient mode, panicking with the error.
pub(super) fn pl(input: &str) -> Filter {
    parse_filter(input, &lenient()).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

/// The strict-mode error, which must be a 400 invalidFilter.
pub(super) fn err(input: &str) -> String {
    let e = parse_filter(input, &strict()).expect_err(input);
    assert_eq!(e.status, 400, "{input:?}");
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{input:?}");
    e.detail
}

/// The lenient-mode error, which must be a 400 invalidFilter.
pub(super) fn errl(input: &str) -> String {
    let e = parse_filter(input, &lenient()).expect_err(input);
    assert_eq!(e.status, 400, "{input:?}");
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{input:?}");
    e.detail
}

pub(super) fn path_ok(input: &str) -> PatchPath {
    parse_patch_path(input, &strict()).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

pub(super) fn path_err(input: &str) -> String {
    let e = parse_patch_path(input, &strict()).expect_err(input);
    assert_eq!(e.status, 400, "{input:?}");
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{input:?}");
    e.detail
}

pub(super) fn attr(name: &str) -> AttrPath {
    AttrPath::new(name)
}

pub(super) fn sub(name: &str, sub: &str) -> AttrPath {
    AttrPath::with_sub(name, sub)
}

pub(super) fn urn_attr(urn: &str, name: &str, sub: Option<&str>) -> AttrPath {
    AttrPath { urn: Some(urn.to_owned()), name: name.to_owned(), sub_attr: sub.map(Into::into) }
}

pub(super) fn s(v: &str) -> CompValue {
    CompValue::String(v.to_owned())
}

pub(super) fn n(v: i64) -> CompValue {
    CompValue::Number(v.into())
}

pub(super) fn eq(name: &str, v: CompValue) -> Filter {
    Filter::Compare(attr(name), CompareOp::Eq, v)
}

pub(super) fn cmp(path: AttrPath, op: CompareOp, v: CompValue) -> Filter {
    Filter::Compare(path, op, v)
}

pub(super) fn pr(name: &str) -> Filter {
    Filter::Present(attr(name))
}

pub(super) fn and(a: Filter, b: Filter) -> Filter {
    Filter::And(Box::new(a), Box::new(b))
}

pub(super) fn or(a: Filter, b: Filter) -> Filter {
    Filter::Or(Box::new(a), Box::new(b))
}

pub(super) fn not(a: Filter) -> Filter {
    Filter::Not(Box::new(a))
}

pub(super) fn vp(name: &str, inner: Filter) -> Filter {
    Filter::ValuePath(attr(name), Box::new(inner))
}

/// `parse(display(parse(x))) == parse(x)`, in the same mode.
pub(super) fn assert_round_trip(input: &str, tol: &Tolerances) {
    let Ok(first) = parse_filter(input, tol) else { return };
    let text = first.to_string();
    let second = parse_filter(&text, tol)
        .unwrap_or_else(|e| panic!("{input:?} displayed as {text:?}, which fails: {e}"));
    assert_eq!(first, second, "{input:?} displayed as {text:?}");
    // The canonical text never needs a tolerance.
    if text.len() <= MAX_FILTER_LEN {
        assert_eq!(parse_filter(&text, &strict()).as_ref(), Ok(&first), "{text:?}");
    }
}
