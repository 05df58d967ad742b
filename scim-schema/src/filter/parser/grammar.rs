//! The grammar of filters (RFC 7644 §3.4.2.2, Figure 1) and PATCH paths (§3.5.2, Figure 7):
//! precedence, grouping, `not`, value paths and comparisons.

use nom::Parser;
use nom::bytes::complete::tag_no_case;
use nom::character::complete::{char, multispace1};

use super::attr_path::{attr_path, sub_attr_name};
use super::errors::{PErr, PResult, Problem, fail, failure};
use super::values::comp_value;
use super::{Ctx, MAX_DEPTH, Scope, at_delimiter, is_path_char, skip_ws};
use crate::filter::ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};

/// `and_expr *("or" and_expr)`, folded to the left. A loop, not recursion: a long chain costs
/// no stack.
pub(super) fn or_expr<'a>(
    ctx: &Ctx,
    depth: usize,
    scope: Scope,
    i: &'a str,
) -> PResult<'a, Filter> {
    let (mut i, mut left) = and_expr(ctx, depth, scope, i)?;
    while let Some(rest) = logical_op(i, "or") {
        let (rest, right) = and_expr(ctx, depth, scope, rest)?;
        left = Filter::Or(Box::new(left), Box::new(right));
        i = rest;
    }
    Ok((i, left))
}

/// `unary *("and" unary)`, folded to the left.
fn and_expr<'a>(ctx: &Ctx, depth: usize, scope: Scope, i: &'a str) -> PResult<'a, Filter> {
    let (mut i, mut left) = unary(ctx, depth, scope, i)?;
    while let Some(rest) = logical_op(i, "and") {
        let (rest, right) = unary(ctx, depth, scope, rest)?;
        left = Filter::And(Box::new(left), Box::new(right));
        i = rest;
    }
    Ok((i, left))
}

/// Whitespace, the keyword `kw` (any case) not followed by a name character, whitespace;
/// returns the input after it. `None` (no match) ends an `and`/`or` chain.
fn logical_op<'a>(i: &'a str, kw: &'static str) -> Option<&'a str> {
    let (rest, _) = tag_no_case::<_, _, PErr>(kw).parse(skip_ws(i)).ok()?;
    if rest.starts_with(is_path_char) {
        // `andrew pr` is an attribute, not `and`.
        return None;
    }
    Some(skip_ws(rest))
}

/// `not "(" FILTER ")"` / `"(" FILTER ")"` / attribute expression / value path.
fn unary<'a>(ctx: &Ctx, depth: usize, scope: Scope, i: &'a str) -> PResult<'a, Filter> {
    if let Some(open) = not_paren(i) {
        let inner_depth = ctx.enter(depth, i)?;
        let (rest, inner) = group(ctx, inner_depth, scope, open)?;
        return Ok((rest, Filter::Not(Box::new(inner))));
    }
    if i.starts_with('(') {
        let inner_depth = ctx.enter(depth, i)?;
        return group(ctx, inner_depth, scope, i);
    }
    if !i.starts_with(is_path_char) {
        return fail(i, Problem::Expected("an attribute name, '(' or 'not ('"));
    }
    attr_exp(ctx, depth, scope, i)
}

/// `not` (any case), optional whitespace, then `(`: returns the input at the `(`.
fn not_paren(i: &str) -> Option<&str> {
    let (rest, _) = tag_no_case::<_, _, PErr>("not").parse(i).ok()?;
    let rest = skip_ws(rest);
    rest.starts_with('(').then_some(rest)
}

/// `"(" FILTER ")"`, `open` starting at the `(`; `depth` is already the inner depth.
fn group<'a>(ctx: &Ctx, depth: usize, scope: Scope, open: &'a str) -> PResult<'a, Filter> {
    let (rest, _) = char('(').parse(open)?;
    let (rest, inner) = or_expr(ctx, depth, scope, skip_ws(rest))?;
    let (rest, _) = closing(skip_ws(rest), open, ')')?;
    Ok((rest, inner))
}

/// `"[" valFilter "]"`, `open` starting at the `[`; `depth` is already the inner depth.
fn brackets<'a>(ctx: &Ctx, depth: usize, open: &'a str) -> PResult<'a, Filter> {
    let (rest, _) = char('[').parse(open)?;
    let (rest, inner) = or_expr(ctx, depth, Scope::ValueFilter, skip_ws(rest))?;
    let (rest, _) = closing(skip_ws(rest), open, ']')?;
    Ok((rest, inner))
}

/// The closing `)` or `]` of the bracket at `opener`.
fn closing<'a>(i: &'a str, opener: &'a str, close: char) -> PResult<'a, char> {
    char::<_, PErr>(close).parse(i).map_err(|_| failure(i, Problem::Unclosed { opener, close }))
}

/// `attrPath SP "pr"`, `attrPath SP op SP value`, `attrPath "[" valFilter "]"` or Entra's
/// `attrPath "[" valFilter "]" "." subAttr SP (pr / op SP value)`.
fn attr_exp<'a>(ctx: &Ctx, depth: usize, scope: Scope, i: &'a str) -> PResult<'a, Filter> {
    let (rest, path) = attr_path(i)?;
    if rest.starts_with('[') {
        return value_path(ctx, depth, scope, i, path, rest);
    }
    comparison(ctx, rest, path, i)
}

/// A value path in a filter. `start` is where its attribute begins, `open` its `[`.
fn value_path<'a>(
    ctx: &Ctx,
    depth: usize,
    scope: Scope,
    start: &'a str,
    attr: AttrPath,
    open: &'a str,
) -> PResult<'a, Filter> {
    if scope == Scope::ValueFilter {
        return fail(open, Problem::Invalid("value paths cannot be nested"));
    }
    if attr.sub_attr.is_some() {
        return fail(
            start,
            Problem::Invalid("a value path's attribute cannot have a sub-attribute"),
        );
    }
    let inner_depth = ctx.enter(depth, open)?;
    // Measure how deep the bracket's content goes, for the Entra form below.
    let outer_deepest = ctx.deepest.replace(inner_depth);
    let parsed = brackets(ctx, inner_depth, open);
    let deepest_inside = ctx.deepest.get();
    ctx.deepest.set(outer_deepest.max(deepest_inside));
    let (rest, inner) = parsed?;

    let Some(after_dot) = rest.strip_prefix('.') else {
        return Ok((rest, Filter::ValuePath(attr, Box::new(inner))));
    };
    // Entra: `emails[type eq "work"].value eq "x"` means
    // `emails[type eq "work" and value eq "x"]`.
    if !ctx.value_path_sub_attr {
        let msg = "a value path ends at ']' (RFC 7644 Figure 1): write \
                   emails[type eq \"work\" and value eq \"x\"] instead of \
                   emails[type eq \"work\"].value eq \"x\"";
        return fail(rest, Problem::Invalid(msg));
    }
    let (rest, sub) = sub_attr_name(after_dot)?;
    let (rest, sub_exp) = comparison(ctx, rest, AttrPath::new(sub), after_dot)?;
    // The canonical text of an `or` on the left of that `and` needs parentheses, one level
    // deeper than the input: refuse what would then be too deep, so that every accepted
    // filter's Display is accepted too.
    if matches!(inner, Filter::Or(..)) && deepest_inside >= MAX_DEPTH {
        return fail(open, Problem::TooDeep);
    }
    let both = Filter::And(Box::new(inner), Box::new(sub_exp));
    Ok((rest, Filter::ValuePath(attr, Box::new(both))))
}

/// What follows an attribute path outside brackets: `SP "pr"` or `SP op SP value`. `start`
/// is where the expression began (for the term count and messages).
fn comparison<'a>(ctx: &Ctx, i: &'a str, path: AttrPath, start: &'a str) -> PResult<'a, Filter> {
    // The operator must be separated from the path by whitespace.
    let op_at = skip_ws(i);
    let found = if op_at.len() < i.len() { operator(op_at) } else { None };
    let Some((rest, op)) = found else {
        if is_bare_not(&path) {
            let msg = "'not' must be followed by a parenthesised filter: not (…)";
            return fail(start, Problem::Invalid(msg));
        }
        let what = "a comparison operator (eq, ne, co, sw, ew, gt, lt, ge, le) or 'pr'";
        return fail(op_at, Problem::Expected(what));
    };
    ctx.count_term(start)?;
    let Some(op) = op else {
        return Ok((rest, Filter::Present(path)));
    };
    let Ok((value_at, _)) = multispace1::<_, PErr>(rest) else {
        return fail(rest, Problem::Expected("a space and a comparison value"));
    };
    let (rest, comp) = comp_value(ctx, value_at)?;
    let ordering = matches!(op, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le);
    if ordering && matches!(comp, CompValue::Bool(_) | CompValue::Null) {
        // RFC 7644 §3.4.2.2: gt/ge/lt/le on a boolean is an invalidFilter.
        return fail(
            value_at,
            Problem::Invalid("gt, ge, lt and le cannot compare true, false or null"),
        );
    }
    Ok((rest, Filter::Compare(path, op, comp)))
}

fn is_bare_not(path: &AttrPath) -> bool {
    path.urn.is_none() && path.sub_attr.is_none() && path.name.eq_ignore_ascii_case("not")
}

/// A comparison operator, or `pr` (`None`), followed by a delimiter.
fn operator(i: &str) -> Option<(&str, Option<CompareOp>)> {
    const OPERATORS: [(&str, Option<CompareOp>); 10] = [
        ("eq", Some(CompareOp::Eq)),
        ("ne", Some(CompareOp::Ne)),
        ("co", Some(CompareOp::Co)),
        ("sw", Some(CompareOp::Sw)),
        ("ew", Some(CompareOp::Ew)),
        ("gt", Some(CompareOp::Gt)),
        ("lt", Some(CompareOp::Lt)),
        ("ge", Some(CompareOp::Ge)),
        ("le", Some(CompareOp::Le)),
        ("pr", None),
    ];
    OPERATORS.iter().find_map(|&(kw, op)| {
        let (rest, _) = tag_no_case::<_, _, PErr>(kw).parse(i).ok()?;
        at_delimiter(rest).then_some((rest, op))
    })
}

/// `attrPath / valuePath ["." subAttr]` (RFC 7644 §3.5.2 Figure 7).
pub(super) fn patch_path<'a>(ctx: &Ctx, i: &'a str) -> PResult<'a, PatchPath> {
    let (rest, attr) = attr_path(i)?;
    if !rest.starts_with('[') {
        return Ok((rest, PatchPath { attr, filter: None, filter_sub_attr: None }));
    }
    if attr.sub_attr.is_some() {
        return fail(i, Problem::Invalid("a value path's attribute cannot have a sub-attribute"));
    }
    let depth = ctx.enter(0, rest)?;
    let (rest, filter) = brackets(ctx, depth, rest)?;
    let (rest, filter_sub_attr) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let (rest, sub) = sub_attr_name(after_dot)?;
            (rest, Some(sub))
        }
        None => (rest, None),
    };
    Ok((rest, PatchPath { attr, filter: Some(filter), filter_sub_attr }))
}

#[cfg(test)]
mod tests {
    use super::super::parse_patch_path;
    use crate::filter::ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
    use crate::filter::parser::test_support::{
        ENTERPRISE, and, assert_round_trip, attr, cmp, eq, err, errl, lenient, n, not, or, p,
        path_err, path_ok, pl, pr, s, strict, sub, urn_attr, vp,
    };

    // --- operators and keywords -----------------------------------------------------------

    #[test]
    fn every_comparison_operator() {
        let ops = [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("lt", CompareOp::Lt),
            ("ge", CompareOp::Ge),
            ("le", CompareOp::Le),
        ];
        for (kw, op) in ops {
            let expected = cmp(attr("userName"), op, s("x"));
            assert_eq!(p(&format!("userName {kw} \"x\"")), expected, "{kw}");
            assert_eq!(p(&format!("userName {} \"x\"", kw.to_uppercase())), expected, "{kw}");
        }
        assert_eq!(p("title pr"), pr("title"));
        assert_eq!(p("title PR"), pr("title"));
        assert_eq!(p("title Pr"), pr("title"));
    }

    #[test]
    fn operators_and_keywords_in_any_case() {
        assert_eq!(p(r#"userName Eq "x""#), eq("userName", s("x")));
        assert_eq!(p(r#"USERNAME EQ "x""#), eq("USERNAME", s("x")), "names kept as written");
        assert_eq!(
            p(r#"username eq "x" AND active eq true"#),
            and(eq("username", s("x")), eq("active", CompValue::Bool(true)))
        );
        assert_eq!(p("a pr Or b pr"), or(pr("a"), pr("b")));
        assert_eq!(p("NOT (a pr)"), not(pr("a")));
        assert_eq!(p("Not(a pr)"), not(pr("a")));
        assert_eq!(p("a eq TRUE"), eq("a", CompValue::Bool(true)));
        assert_eq!(p("a eq False"), eq("a", CompValue::Bool(false)));
        assert_eq!(p("a eq NULL"), eq("a", CompValue::Null));
    }

    #[test]
    fn operator_needs_a_delimiter() {
        assert!(err(r#"userName eqx "x""#).contains("expected a comparison operator"));
        assert!(err(r#"userName equals "x""#).contains("expected a comparison operator"));
        assert!(err("title prx").contains("expected a comparison operator"));
        assert!(err(r#"userName eq"x""#).contains("expected a comparison operator"));
        assert!(err(r#"userName="x""#).contains("expected a comparison operator"));
        assert!(err(r#"userName  "x""#).contains("expected a comparison operator"));
    }

    // --- precedence, grouping, not ----------------------------------------------------------

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(
            p("a eq 1 or b eq 2 and c eq 3"),
            or(eq("a", n(1)), and(eq("b", n(2)), eq("c", n(3))))
        );
        assert_eq!(
            p("a eq 1 and b eq 2 or c eq 3"),
            or(and(eq("a", n(1)), eq("b", n(2))), eq("c", n(3)))
        );
        assert_eq!(
            p("a pr and b pr or c pr and d pr"),
            or(and(pr("a"), pr("b")), and(pr("c"), pr("d")))
        );
    }

    #[test]
    fn and_or_are_left_associative() {
        assert_eq!(p("a pr and b pr and c pr"), and(and(pr("a"), pr("b")), pr("c")));
        assert_eq!(p("a pr or b pr or c pr"), or(or(pr("a"), pr("b")), pr("c")));
        assert_eq!(p("a pr and (b pr and c pr)"), and(pr("a"), and(pr("b"), pr("c"))));
    }

    #[test]
    fn grouping() {
        assert_eq!(p("(a pr or b pr) and c pr"), and(or(pr("a"), pr("b")), pr("c")));
        assert_eq!(p("a pr and (b pr or c pr)"), and(pr("a"), or(pr("b"), pr("c"))));
        assert_eq!(p("((a pr))"), pr("a"));
        assert_eq!(p("( a pr )"), pr("a"));
        assert_eq!(p("(a pr)and(b pr)"), and(pr("a"), pr("b")));
        assert_eq!(p("(a pr)or (b pr)"), or(pr("a"), pr("b")));
    }

    #[test]
    fn not_binds_tighter_than_and() {
        assert_eq!(p("not (a pr) and b pr"), and(not(pr("a")), pr("b")));
        assert_eq!(p("b pr or not (a pr or c pr)"), or(pr("b"), not(or(pr("a"), pr("c")))));
        assert_eq!(p("not (not (a pr))"), not(not(pr("a"))));
        assert_eq!(p("not   (a pr)"), not(pr("a")));
        assert_eq!(p("not(a pr)"), not(pr("a")));
    }

    #[test]
    fn not_requires_parentheses() {
        let e = err("not a pr");
        assert!(e.contains("'not' must be followed by a parenthesised filter"), "{e}");
        assert!(e.contains("position 0"), "{e}");
        assert!(err("a pr and not").contains("'not' must be followed"));
        // An attribute that happens to be called `not` still works.
        assert_eq!(p(r#"not eq "x""#), eq("not", s("x")));
        assert_eq!(p("not pr"), pr("not"));
    }

    #[test]
    fn keyword_prefixes_are_attribute_names() {
        assert_eq!(p("andrew pr"), pr("andrew"));
        assert_eq!(p("a pr and oregon pr"), and(pr("a"), pr("oregon")));
        assert_eq!(p("notes pr"), pr("notes"));
        assert!(err("a pr andrew pr").contains("expected 'and', 'or' or the end of the filter"));
    }

    // --- RFC 7644 §3.4.2.2 examples -------------------------------------------------------

    #[test]
    fn rfc_7644_example_filters() {
        let examples = [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r#"title pr"#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            // §3.4.2.2 on case: these two are equivalent.
            r#"userName Eq "john""#,
            r#"Username eq "john""#,
        ];
        for example in examples {
            p(example);
            assert_round_trip(example, &strict());
        }
        assert_eq!(
            p(r#"name.familyName co "O'Malley""#),
            cmp(sub("name", "familyName"), CompareOp::Co, s("O'Malley"))
        );
        assert_eq!(
            p(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#),
            cmp(
                urn_attr("urn:ietf:params:scim:schemas:core:2.0:User", "userName", None),
                CompareOp::Sw,
                s("J")
            )
        );
        let emails = || {
            or(
                cmp(attr("emails"), CompareOp::Co, s("example.com")),
                cmp(sub("emails", "value"), CompareOp::Co, s("example.org")),
            )
        };
        assert_eq!(
            p(
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#
            ),
            and(cmp(attr("userType"), CompareOp::Ne, s("Employee")), not(emails()))
        );
        assert_eq!(
            p(
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#
            ),
            or(
                vp(
                    "emails",
                    and(
                        eq("type", s("work")),
                        cmp(attr("value"), CompareOp::Co, s("@example.com"))
                    )
                ),
                vp(
                    "ims",
                    and(eq("type", s("xmpp")), cmp(attr("value"), CompareOp::Co, s("@foo.com")))
                ),
            )
        );
    }

    // --- value paths ----------------------------------------------------------------------

    #[test]
    fn value_paths() {
        assert_eq!(
            p(r#"emails[type eq "work" and value co "@example.com"]"#),
            vp(
                "emails",
                and(eq("type", s("work")), cmp(attr("value"), CompareOp::Co, s("@example.com")))
            )
        );
        assert_eq!(p(r#"emails[not (type eq "work")]"#), vp("emails", not(eq("type", s("work")))));
        assert_eq!(p(r#"emails[(type eq "work")]"#), vp("emails", eq("type", s("work"))));
        assert_eq!(p(r#"emails[ type eq "work" ]"#), vp("emails", eq("type", s("work"))));
        assert_eq!(
            p(r#"emails[type eq "work"] and userName eq "x""#),
            and(vp("emails", eq("type", s("work"))), eq("userName", s("x")))
        );
        assert_eq!(
            p(r#"userName eq "x" or emails[primary eq true]"#),
            or(eq("userName", s("x")), vp("emails", eq("primary", CompValue::Bool(true))))
        );
        assert_eq!(p(r#"not (emails[type eq "work"])"#), not(vp("emails", eq("type", s("work")))));
        assert_eq!(
            p(&format!(r#"{ENTERPRISE}:manager[value eq "x"]"#)),
            Filter::ValuePath(urn_attr(ENTERPRISE, "manager", None), Box::new(eq("value", s("x"))))
        );
    }

    #[test]
    fn value_path_errors() {
        assert!(err(r#"emails[value[type pr]]"#).contains("value paths cannot be nested"));
        assert!(err(r#"emails[type eq "work"][value pr]"#).contains("expected 'and', 'or'"));
        assert!(err(r#"emails.value[type eq "work"]"#).contains("cannot have a sub-attribute"));
        let e = err(r#"emails[type eq "work""#);
        assert!(e.contains("expected ']' to close the '[' at position 6"), "{e}");
        assert!(err(r#"emails[]"#).contains("expected an attribute name"));
        assert!(err(r#"emails type eq "work"]"#).contains("expected a comparison operator"));
        assert!(err(r#"emails [type eq "work"]"#).contains("expected a comparison operator"));
        assert!(err(r#"emails[type eq "work")"#).contains("expected ']'"));
    }

    #[test]
    fn entra_value_path_with_sub_attribute() {
        assert!(err(r#"emails[type eq "work"].value eq "a@b.c""#).contains("value path ends"));
        assert_eq!(
            pl(r#"emails[type eq "work"].value eq "a@b.c""#),
            vp("emails", and(eq("type", s("work")), eq("value", s("a@b.c"))))
        );
        assert_eq!(
            pl(r#"emails[type eq "work"].value pr"#),
            vp("emails", and(eq("type", s("work")), pr("value")))
        );
        assert_eq!(
            pl(r#"emails[type eq "work"].value eq "a@b.c" and active eq true"#),
            and(
                vp("emails", and(eq("type", s("work")), eq("value", s("a@b.c")))),
                eq("active", CompValue::Bool(true))
            )
        );
        assert_eq!(
            pl(r#"emails[type eq "work" or type eq "home"].value co "x""#),
            vp(
                "emails",
                and(
                    or(eq("type", s("work")), eq("type", s("home"))),
                    cmp(attr("value"), CompareOp::Co, s("x"))
                )
            )
        );
        assert_eq!(
            pl(r#"emails[type eq work].value eq a@b.c"#),
            vp("emails", and(eq("type", s("work")), eq("value", s("a@b.c"))))
        );
        assert!(errl(r#"emails[type eq "work"].value"#).contains("expected a comparison operator"));
        assert!(errl(r#"emails[type eq "work"]."#).contains("expected an attribute name"));
        assert!(
            errl(r#"emails[type eq "work"].value.x eq 1"#)
                .contains("expected a comparison operator")
        );
        assert!(err(r#"x[emails[type eq "work"].value eq 1]"#).contains("cannot be nested"));
    }

    // --- PATCH paths ----------------------------------------------------------------------

    #[test]
    fn patch_paths() {
        let plain = |a: AttrPath| PatchPath { attr: a, filter: None, filter_sub_attr: None };
        assert_eq!(path_ok("members"), plain(attr("members")));
        assert_eq!(path_ok("Members"), plain(attr("Members")));
        assert_eq!(path_ok("name.familyName"), plain(sub("name", "familyName")));
        assert_eq!(path_ok(" userName "), plain(attr("userName")));
        assert_eq!(
            path_ok(r#"members[value eq "2819c223"]"#),
            PatchPath {
                attr: attr("members"),
                filter: Some(eq("value", s("2819c223"))),
                filter_sub_attr: None
            }
        );
        assert_eq!(
            path_ok(r#"emails[type eq "work"].value"#),
            PatchPath {
                attr: attr("emails"),
                filter: Some(eq("type", s("work"))),
                filter_sub_attr: Some("value".into())
            }
        );
        assert_eq!(
            path_ok(r#"addresses[type eq "work" and primary eq true].formatted"#)
                .filter_sub_attr
                .as_deref(),
            Some("formatted")
        );
        assert_eq!(
            path_ok(&format!("{ENTERPRISE}:manager")),
            plain(urn_attr(ENTERPRISE, "manager", None))
        );
        assert_eq!(
            path_ok(&format!("{ENTERPRISE}:manager.value")),
            plain(urn_attr(ENTERPRISE, "manager", Some("value")))
        );
        assert_eq!(
            path_ok(&format!("{ENTERPRISE}:employeeNumber")),
            plain(urn_attr(ENTERPRISE, "employeeNumber", None))
        );
        // A bare extension URN splits at its last colon; the PATCH engine recognises it.
        assert_eq!(
            path_ok(ENTERPRISE),
            plain(urn_attr("urn:ietf:params:scim:schemas:extension:enterprise:2.0", "User", None))
        );
        assert_eq!(path_ok("members.$ref"), plain(sub("members", "$ref")));
        assert_eq!(
            path_ok(r#"members[not (value eq "x")]"#).filter,
            Some(not(eq("value", s("x"))))
        );
    }

    #[test]
    fn patch_path_values_follow_the_tolerance() {
        let tolerant = parse_patch_path("members[value eq abc]", &lenient());
        assert_eq!(tolerant.map(|p| p.filter), Ok(Some(eq("value", s("abc")))));
        assert!(path_err("members[value eq abc]").contains("expected a comparison value"));
    }

    #[test]
    fn malformed_patch_paths() {
        let cases = [
            ("", "the path is empty"),
            ("emails[", "expected an attribute name, '(' or 'not ('"),
            (r#"emails[type eq "work""#, "expected ']' to close the '[' at position 6"),
            (r#"emails[type eq "work"]."#, "expected an attribute name"),
            (r#"emails[type eq "work"].value.display"#, "expected the end of the path"),
            (r#"emails[type eq "work"]x"#, "expected the end of the path"),
            (r#"emails[type eq "work"] x"#, "expected the end of the path"),
            (r#"emails[type eq "work"].value eq "x""#, "expected the end of the path"),
            (r#"emails.value[type eq "work"]"#, "cannot have a sub-attribute"),
            (r#"emails[value[type pr]]"#, "value paths cannot be nested"),
            ("name.", "expected an attribute name"),
            (".name", "expected an attribute name"),
            ("name.a.b", "at most one sub-attribute"),
            ("a b", "expected the end of the path"),
            ("a]", "unbalanced ']'"),
            ("1a", "must start with a letter"),
            ("foo:bar", "qualified by a schema URN"),
            ("emails[type gt true]", "cannot compare true, false or null"),
        ];
        for (input, want) in cases {
            let e = path_err(input);
            assert!(e.contains(want), "{input:?}: {e}");
            assert!(e.starts_with("invalid path at position") || !e.contains("position"), "{e}");
        }
        let e = path_err(r#"emails[type eq "work"]x"#);
        assert!(e.starts_with(r#"invalid path at position 22 (near "x"):"#), "{e}");
    }

    // --- what the identity providers send (reference §1.2 corpus) ------------------------

    #[test]
    fn idp_corpus() {
        assert_eq!(
            p(r#"userName eq "test.user@okta.local""#),
            eq("userName", s("test.user@okta.local"))
        );
        // Entra
        assert_eq!(pl("externalId eq jyoung"), eq("externalId", s("jyoung")));
        assert_eq!(
            pl(r#"emails[type eq "work"].value eq "a@b.c""#),
            vp("emails", and(eq("type", s("work")), eq("value", s("a@b.c"))))
        );
        assert_eq!(p(r#"displayName eq "Group One""#), eq("displayName", s("Group One")));
        assert_eq!(
            p(r#"id eq "9f2c4b1e-8a3d-4c7f-b6e2-1d5a9c0e7f34""#),
            eq("id", s("9f2c4b1e-8a3d-4c7f-b6e2-1d5a9c0e7f34"))
        );
        assert_eq!(p(r#"userName eq "alice@contoso.com""#), eq("userName", s("alice@contoso.com")));
        // authentik
        assert_eq!(pl("userName eq x@y"), eq("userName", s("x@y")));
        // PingOne
        assert_eq!(p(r#"userName Eq "a@b""#), eq("userName", s("a@b")));
        assert_eq!(p(r#"username Eq "a@b""#), eq("username", s("a@b")));
        assert_eq!(p(r#"email Co "x""#), cmp(attr("email"), CompareOp::Co, s("x")));
    }
}
