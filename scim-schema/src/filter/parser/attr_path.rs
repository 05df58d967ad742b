//! Attribute paths (`[URN ":"] name ["." subAttr]`, RFC 7644 §3.10) and the names in them.

use nom::Parser;
use nom::bytes::complete::take_while;

use super::errors::{PErr, PResult, Problem, fail};
use super::{is_name_char, is_path_char};
use crate::filter::ast::AttrPath;

/// `[URN ":"] ATTRNAME ["." subAttr]`. The URN ends at the *last* `:` (so the `.0` of
/// `…:enterprise:2.0:User:manager` is not a sub-attribute).
pub(super) fn attr_path(i: &str) -> PResult<'_, AttrPath> {
    let (rest, token) = take_while::<_, _, PErr>(is_path_char).parse(i)?;
    match split_attr_path(token) {
        Ok(path) => Ok((rest, path)),
        Err((offset, problem)) => fail(i.get(offset..).unwrap_or(i), problem),
    }
}

/// Splits and checks an attribute-path token; errors carry the byte offset in `token`.
fn split_attr_path(token: &str) -> Result<AttrPath, (usize, Problem<'static>)> {
    let (urn, name_start) = match token.rfind(':') {
        Some(colon) => {
            let urn = &token[..colon];
            check_urn(urn)?;
            (Some(urn.to_owned()), colon + 1)
        }
        None => (None, 0),
    };
    let rest = &token[name_start..];
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    check_name(name).map_err(|(at, p)| (name_start + at, p))?;
    let sub_start = name_start + name.len() + 1;
    if let Some(sub) = sub {
        if let Some(dot) = sub.find('.') {
            let p = Problem::Invalid("an attribute path has at most one sub-attribute");
            return Err((sub_start + dot, p));
        }
        check_name(sub).map_err(|(at, p)| (sub_start + at, p))?;
    }
    Ok(AttrPath { urn, name: name.to_owned(), sub_attr: sub.map(str::to_owned) })
}

/// `urn:` (any case) then non-empty `:`-separated segments of letters, digits, `.`, `-`, `_`.
fn check_urn(urn: &str) -> Result<(), (usize, Problem<'static>)> {
    const NOT_URN: Problem<'static> =
        Problem::Invalid("an attribute can only be qualified by a schema URN (urn:…:attribute)");
    let prefix_ok = urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    if !prefix_ok || urn.len() == 4 {
        return Err((0, NOT_URN));
    }
    let mut offset = 4;
    for segment in urn[4..].split(':') {
        if segment.is_empty() {
            return Err((offset, Problem::Invalid("empty segment in a schema URN")));
        }
        if let Some(bad) = segment.find(|c: char| !(is_name_char(c) || c == '.')) {
            return Err((offset + bad, Problem::Invalid("invalid character in a schema URN")));
        }
        offset += segment.len() + 1;
    }
    Ok(())
}

/// `ATTRNAME = ALPHA *(nameChar)`, optionally after `$` (`$ref`, RFC 7643 §2.1).
fn check_name(name: &str) -> Result<(), (usize, Problem<'static>)> {
    let (skip, bare) = match name.strip_prefix('$') {
        Some(bare) => (1, bare),
        None => (0, name),
    };
    if bare.is_empty() {
        return Err((skip, Problem::Expected("an attribute name")));
    }
    if !bare.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err((skip, Problem::Invalid("an attribute name must start with a letter")));
    }
    if let Some(bad) = bare.find(|c: char| !is_name_char(c)) {
        return Err((skip + bad, Problem::Invalid("invalid character in an attribute name")));
    }
    Ok(())
}

/// The sub-attribute after `]` in `emails[…].value`: a single name.
pub(super) fn sub_attr_name(i: &str) -> PResult<'_, String> {
    let (rest, name) = take_while::<_, _, PErr>(|c: char| is_name_char(c) || c == '$').parse(i)?;
    match check_name(name) {
        Ok(()) => Ok((rest, name.to_owned())),
        Err((offset, problem)) => fail(i.get(offset..).unwrap_or(i), problem),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_attr_path;
    use crate::error::ScimType;
    use crate::filter::ast::{CompareOp, Filter};
    use crate::filter::parser::test_support::{
        ENTERPRISE, attr, cmp, eq, err, p, pr, s, sub, urn_attr, vp,
    };

    // --- attribute paths ------------------------------------------------------------------

    #[test]
    fn urn_qualified_names_end_at_the_last_colon() {
        assert_eq!(
            p(&format!(r#"{ENTERPRISE}:employeeNumber eq "42""#)),
            cmp(urn_attr(ENTERPRISE, "employeeNumber", None), CompareOp::Eq, s("42"))
        );
        assert_eq!(
            p(&format!(r#"{ENTERPRISE}:manager.value eq "x""#)),
            cmp(urn_attr(ENTERPRISE, "manager", Some("value")), CompareOp::Eq, s("x"))
        );
        assert_eq!(
            p(r#"URN:IETF:params:scim:schemas:core:2.0:User:name.givenName pr"#),
            Filter::Present(urn_attr(
                "URN:IETF:params:scim:schemas:core:2.0:User",
                "name",
                Some("givenName")
            ))
        );
    }

    #[test]
    fn urn_errors() {
        assert!(err("foo:bar pr").contains("qualified by a schema URN"));
        assert!(err("urn:name pr").contains("qualified by a schema URN"));
        assert!(err("urn:: pr").contains("qualified by a schema URN"));
        assert!(err("urn:a::b:name pr").contains("empty segment"));
        assert!(err("urn:a$b:name pr").contains("invalid character in a schema URN"));
        assert!(err(&format!("{ENTERPRISE}: pr")).contains("expected an attribute name"));
        assert!(err(&format!("{ENTERPRISE}:2x pr")).contains("must start with a letter"));
    }

    #[test]
    fn dollar_ref() {
        assert_eq!(p(r#"members[$ref eq "x"]"#), vp("members", eq("$ref", s("x"))));
        assert_eq!(p("$ref pr"), pr("$ref"));
        assert_eq!(p("members.$ref pr"), Filter::Present(sub("members", "$ref")));
        assert!(err("a$b pr").contains("invalid character in an attribute name"));
        assert!(err("$ pr").contains("expected an attribute name"));
        assert!(err("$$ref pr").contains("must start with a letter"));
    }

    #[test]
    fn attribute_name_errors() {
        assert!(err("1abc pr").contains("must start with a letter"));
        assert!(err("-abc pr").contains("must start with a letter"));
        assert!(err("name..x pr").contains("at most one sub-attribute"));
        assert!(err("name.a.b pr").contains("at most one sub-attribute"));
        assert!(err("name. pr").contains("expected an attribute name"));
        assert!(err(".name pr").contains("expected an attribute name"));
        assert_eq!(p("na_me-2 pr"), pr("na_me-2"));
    }

    // --- bare attribute paths -------------------------------------------------------------

    #[test]
    fn attribute_paths() {
        assert_eq!(parse_attr_path("userName"), Ok(attr("userName")));
        assert_eq!(parse_attr_path(" name.givenName "), Ok(sub("name", "givenName")));
        assert_eq!(parse_attr_path("meta.lastModified"), Ok(sub("meta", "lastModified")));
        assert_eq!(
            parse_attr_path(&format!("{ENTERPRISE}:employeeNumber")),
            Ok(urn_attr(ENTERPRISE, "employeeNumber", None))
        );
        for bad in ["", "a b", "emails[type eq \"x\"]", "1a", "name.", "a,b", "a.b.c"] {
            let e = parse_attr_path(bad).expect_err(bad);
            assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{bad}");
            assert!(
                e.detail.starts_with("invalid attribute path at position") || bad.is_empty(),
                "{e}"
            );
        }
    }
}
