//! The filter and attribute-path parser: RFC 7644 §3.4.2.2 (Figure 1, filters), §3.5.2
//! (Figure 7, PATCH paths) and bare attribute paths (`sortBy`, `attributes=`).
//!
//! A recursive-descent parser built from nom 8 combinators. Precedence is grouping, then `not`,
//! then `and`, then `or`; `and`/`or` are left-associative. Keywords and operators are
//! case-insensitive (`tag_no_case`). Beyond Figure 1 it accepts, on purpose:
//! - `not(…)` with or without a space (Figure 1 has none), `and`/`or` right after `)` or `]`;
//! - `true`/`false`/`null` in any case, and `$ref` as an attribute name (RFC 7643 §2.1);
//! - Entra's `emails[type eq "work"].value eq "x"`, read as
//!   `emails[type eq "work" and value eq "x"]`;
//! - unquoted values (`externalId eq jyoung`) when [`Tolerances::unquoted_filter_values`] is on.
//!
//! Safety: the input length is capped before parsing; nesting depth ([`MAX_DEPTH`]) is checked
//! *before* each recursive descent and attribute expressions ([`MAX_TERMS`]) are counted as they
//! are read, so a hostile `((((…` fails after a few dozen bytes, without deep recursion. The
//! parser never panics: every slice it takes is at a position it has just matched.
//!
//! Errors name the character position (0-based, counted in characters) and what was expected:
//! `invalid filter at position 12 (near "xx \"y\""): expected a comparison operator …`.

use std::cell::Cell;

use nom::branch::alt;
use nom::bytes::complete::{
    escaped_transform, tag, tag_no_case, take_while, take_while_m_n, take_while1,
};
use nom::character::complete::{char, digit0, digit1, multispace1, one_of, satisfy};
use nom::combinator::{opt, value};
use nom::error::{ErrorKind, ParseError};
use nom::sequence::preceded;
use nom::{IResult, Parser};

use super::ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::compat::Tolerances;
use crate::error::ScimError;

/// The longest filter, PATCH path or attribute path accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// The deepest nesting of parentheses, `not (…)` and value-path brackets.
pub const MAX_DEPTH: usize = 32;
/// The most attribute expressions (`attrPath op value`, `attrPath pr`) in one filter or path.
pub const MAX_TERMS: usize = 256;

/// Parses a `filter` query parameter (or `/.search` body member). Errors are 400
/// `invalidFilter` and say where the input went wrong.
pub fn parse_filter(input: &str, tol: &Tolerances) -> Result<Filter, ScimError> {
    let ctx = Ctx::new(tol);
    run(input, Kind::Filter, |i| or_expr(&ctx, 0, Scope::Filter, i))
}

/// Parses a PATCH operation `path` (`attrPath / valuePath [subAttr]`). Errors are 400
/// `invalidPath`.
pub fn parse_patch_path(input: &str, tol: &Tolerances) -> Result<PatchPath, ScimError> {
    let ctx = Ctx::new(tol);
    run(input, Kind::Path, |i| patch_path(&ctx, i))
}

/// Parses one attribute path (`[URN ":"] name ["." subAttr]`), as found in `sortBy` and in the
/// comma-separated `attributes`/`excludedAttributes` lists. Errors are 400 `invalidPath`;
/// callers remap them where RFC 7644 wants another `scimType`.
pub fn parse_attr_path(input: &str) -> Result<AttrPath, ScimError> {
    run(input, Kind::AttrPath, attr_path)
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What went wrong at a position. Kept small and static: the message is built once, at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem<'a> {
    /// Rendered as "expected …".
    Expected(&'static str),
    /// Rendered as is.
    Invalid(&'static str),
    /// A bracket or quote opened at `opener` (a suffix of the input) was never closed.
    Unclosed {
        opener: &'a str,
        close: char,
    },
    TooDeep,
    TooManyTerms,
}

/// The nom error type: where (`at`, always a suffix of the input) and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PErr<'a> {
    at: &'a str,
    problem: Problem<'a>,
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(at: &'a str, _kind: ErrorKind) -> Self {
        // Only reached through combinators whose failures the callers below replace with a
        // precise message; this is the fallback.
        PErr { at, problem: Problem::Invalid("unexpected input") }
    }

    fn append(_at: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    /// Of two alternatives, report the one that got further.
    fn or(self, other: Self) -> Self {
        if other.at.len() < self.at.len() { other } else { self }
    }
}

type PResult<'a, T> = IResult<&'a str, T, PErr<'a>>;

/// A committed (non-backtracking) error: the grammar is decided by one token of look-ahead, so
/// any mismatch after that is final.
fn failure<'a>(at: &'a str, problem: Problem<'a>) -> nom::Err<PErr<'a>> {
    nom::Err::Failure(PErr { at, problem })
}

fn fail<'a, T>(at: &'a str, problem: Problem<'a>) -> PResult<'a, T> {
    Err(failure(at, problem))
}

/// Which entry point is running: it picks the error's `scimType` and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Filter,
    Path,
    AttrPath,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Path => "path",
            Kind::AttrPath => "attribute path",
        }
    }

    fn error(self, detail: String) -> ScimError {
        match self {
            Kind::Filter => ScimError::invalid_filter(detail),
            Kind::Path | Kind::AttrPath => ScimError::invalid_path(detail),
        }
    }

    /// What may follow a complete parse.
    fn trailing_problem(self, rest: &str) -> Problem<'static> {
        match (self, rest.chars().next()) {
            (_, Some(')')) => Problem::Invalid("unbalanced ')'"),
            (_, Some(']')) => Problem::Invalid("unbalanced ']'"),
            (Kind::Filter, _) => Problem::Expected("'and', 'or' or the end of the filter"),
            (Kind::Path, _) => Problem::Expected("the end of the path"),
            (Kind::AttrPath, _) => Problem::Expected("the end of the attribute path"),
        }
    }
}

/// Runs a parser over the whole input: length cap, surrounding whitespace, trailing input and
/// error rendering.
fn run<'a, T>(
    input: &'a str,
    kind: Kind,
    parser: impl FnOnce(&'a str) -> PResult<'a, T>,
) -> Result<T, ScimError> {
    let label = kind.label();
    if input.len() > MAX_FILTER_LEN {
        return Err(kind.error(format!("the {label} is longer than {MAX_FILTER_LEN} bytes")));
    }
    let start = input.trim_start_matches(is_ws);
    if start.is_empty() {
        return Err(kind.error(format!("the {label} is empty")));
    }
    let err = match parser(start) {
        Ok((rest, parsed)) => {
            let rest = rest.trim_start_matches(is_ws);
            if rest.is_empty() {
                return Ok(parsed);
            }
            PErr { at: rest, problem: kind.trailing_problem(rest) }
        }
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => e,
        // Only streaming parsers return Incomplete; every parser here is a complete one.
        Err(nom::Err::Incomplete(_)) => PErr { at: "", problem: Problem::Invalid("incomplete") },
    };
    Err(kind.error(render(input, label, err)))
}

/// `invalid filter at position 17 (near "…"): expected a comparison operator`.
fn render(input: &str, label: &str, err: PErr<'_>) -> String {
    let pos = position(input, err.at);
    let near = if err.at.is_empty() {
        "at end of input".to_owned()
    } else {
        let snippet: String = err.at.chars().take(20).collect();
        format!("near {snippet:?}")
    };
    let what = match err.problem {
        Problem::Expected(what) => format!("expected {what}"),
        Problem::Invalid(msg) => msg.to_owned(),
        Problem::Unclosed { opener, close } => {
            let open = opener.chars().next().unwrap_or(close);
            format!(
                "expected '{close}' to close the '{open}' at position {}",
                position(input, opener)
            )
        }
        Problem::TooDeep => {
            format!("nested deeper than {MAX_DEPTH} levels of parentheses, 'not' and value paths")
        }
        Problem::TooManyTerms => format!("more than {MAX_TERMS} attribute expressions"),
    };
    format!("invalid {label} at position {pos} ({near}): {what}")
}

/// The character index in `input` of `suffix`, a suffix of it.
fn position(input: &str, suffix: &str) -> usize {
    let offset = input.len().saturating_sub(suffix.len());
    input.get(..offset).map_or(0, |s| s.chars().count())
}

// ---------------------------------------------------------------------------------------------
// Parse state
// ---------------------------------------------------------------------------------------------

/// Per-parse state. Counters are `Cell`s because the parse functions share `&Ctx`.
struct Ctx {
    unquoted: bool,
    terms: Cell<usize>,
    /// The deepest nesting entered so far (see the Entra form in [`value_path`]).
    deepest: Cell<usize>,
}

impl Ctx {
    fn new(tol: &Tolerances) -> Self {
        Ctx { unquoted: tol.unquoted_filter_values, terms: Cell::new(0), deepest: Cell::new(0) }
    }

    /// Counts one attribute expression starting at `at`.
    fn count_term<'a>(&self, at: &'a str) -> Result<(), nom::Err<PErr<'a>>> {
        let n = self.terms.get() + 1;
        if n > MAX_TERMS {
            return Err(failure(at, Problem::TooManyTerms));
        }
        self.terms.set(n);
        Ok(())
    }

    /// The depth inside a `(`, `not (` or `[` at `at`. Called *before* descending, so the
    /// recursion itself can never go deeper than [`MAX_DEPTH`] levels.
    fn enter<'a>(&self, depth: usize, at: &'a str) -> Result<usize, nom::Err<PErr<'a>>> {
        if depth >= MAX_DEPTH {
            return Err(failure(at, Problem::TooDeep));
        }
        let inner = depth + 1;
        self.deepest.set(self.deepest.get().max(inner));
        Ok(inner)
    }
}

/// Inside `[…]` the paths are relative to the elements, and value paths cannot nest (a
/// sub-attribute is never complex, RFC 7643 §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Filter,
    ValueFilter,
}

// ---------------------------------------------------------------------------------------------
// Character classes
// ---------------------------------------------------------------------------------------------

/// Whitespace between tokens: SP, HTAB, CR, LF (what `multispace` accepts).
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `nameChar` of RFC 7644 Figure 1.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Characters of an attribute-path token: names, `$ref`, the URN's `:` and `.`, `.subAttr`.
fn is_path_char(c: char) -> bool {
    is_name_char(c) || matches!(c, '.' | ':' | '$')
}

/// Where a value or operator may end: whitespace, a closing bracket or the end of input.
fn at_delimiter(i: &str) -> bool {
    i.chars().next().is_none_or(|c| is_ws(c) || c == ')' || c == ']')
}

fn skip_ws(i: &str) -> &str {
    i.trim_start_matches(is_ws)
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

/// `and_expr *("or" and_expr)`, folded to the left. A loop, not recursion: a long chain costs
/// no stack.
fn or_expr<'a>(ctx: &Ctx, depth: usize, scope: Scope, i: &'a str) -> PResult<'a, Filter> {
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

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

const VALUE: &str = "a comparison value (a double-quoted string, a number, true, false or null)";

/// `compValue`, followed by a delimiter.
fn comp_value<'a>(ctx: &Ctx, i: &'a str) -> PResult<'a, CompValue> {
    let (rest, comp) = if i.starts_with('"') {
        let (rest, s) = json_string(i)?;
        (rest, CompValue::String(s))
    } else {
        bare_value(ctx, i)?
    };
    if !at_delimiter(rest) {
        return fail(rest, Problem::Expected("a space, ')' or ']' after the value"));
    }
    Ok((rest, comp))
}

/// An unquoted token: `true`/`false`/`null`, a JSON number, or (tolerance on) a string.
fn bare_value<'a>(ctx: &Ctx, i: &'a str) -> PResult<'a, CompValue> {
    let (rest, token) =
        take_while::<_, _, PErr>(|c: char| !is_ws(c) && c != ')' && c != ']').parse(i)?;
    if token.is_empty() {
        return fail(i, Problem::Expected(VALUE));
    }
    if let Some(literal) = literal(token) {
        return Ok((rest, literal));
    }
    if ctx.unquoted {
        // Entra `externalId eq jyoung`, authentik `userName eq x@y`.
        return Ok((rest, CompValue::String(token.to_owned())));
    }
    fail(i, Problem::Expected(VALUE))
}

/// `true`, `false`, `null` (any case) or a JSON number (RFC 8259 §6 syntax).
fn literal(token: &str) -> Option<CompValue> {
    if token.eq_ignore_ascii_case("true") {
        return Some(CompValue::Bool(true));
    }
    if token.eq_ignore_ascii_case("false") {
        return Some(CompValue::Bool(false));
    }
    if token.eq_ignore_ascii_case("null") {
        return Some(CompValue::Null);
    }
    let (rest, text) = json_number(token).ok()?;
    if !rest.is_empty() {
        return None;
    }
    number_value(text).map(CompValue::Number)
}

/// RFC 8259 §6: `-? (0 / [1-9] DIGIT*) ("." DIGIT+)? ([eE] [+-]? DIGIT+)?` (so no `01`, `+1`,
/// `1.`, `.5`, `0x10`, `NaN`). Returns the number's text.
fn json_number(i: &str) -> PResult<'_, &str> {
    let (rest, _) = (
        opt(char('-')),
        alt((
            value((), char('0')),
            value((), (satisfy(|c| c.is_ascii_digit() && c != '0'), digit0)),
        )),
        opt((char('.'), digit1)),
        opt((one_of("eE"), opt(one_of("+-")), digit1)),
    )
        .parse(i)?;
    // Not `recognize`: nom 8.0.0's `digit0` on `&str` returns an empty remainder that points
    // at the *start* of its input when it consumes everything, and `recognize` measures
    // pointers. Lengths are right either way.
    let consumed = i.len() - rest.len();
    Ok((rest, i.get(..consumed).unwrap_or_default()))
}

/// The value of a JSON number, represented as serde_json does (`u64`, negative `i64`, else
/// `f64`). Floats go through Rust's correctly rounded `str::parse`, not serde_json's default
/// fast path (off by one ulp for some inputs): the shortest text Display writes must read
/// back as the same `f64`. Out of `f64` range (`1e400`) is `None`.
fn number_value(text: &str) -> Option<serde_json::Number> {
    if !text.contains(['.', 'e', 'E']) {
        match text.strip_prefix('-') {
            None => {
                if let Ok(n) = text.parse::<u64>() {
                    return Some(n.into());
                }
            }
            // `-0` stays a float (-0.0), as serde_json has it.
            Some(_) => {
                if let Ok(n) = text.parse::<i64>()
                    && n < 0
                {
                    return Some(n.into());
                }
            }
        }
    }
    text.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// A JSON string (RFC 8259 §7), `i` starting at the opening quote.
fn json_string(i: &str) -> PResult<'_, String> {
    let (body, _) = char('"').parse(i)?;
    let unescaped = escaped_transform(
        take_while1(|c: char| c != '"' && c != '\\' && !is_json_control(c)),
        '\\',
        escape,
    )
    .parse(body);
    let (rest, s) = match unescaped {
        Ok(done) => done,
        // Nothing before the closing quote (or an unescaped control character): the empty
        // prefix; the checks below tell which.
        Err(nom::Err::Error(_)) => (body, String::new()),
        Err(e) => return Err(e),
    };
    match rest.chars().next() {
        Some('"') => Ok((rest.get(1..).unwrap_or_default(), s)),
        Some(c) if is_json_control(c) => {
            fail(rest, Problem::Invalid("control characters in a string must be escaped"))
        }
        _ => fail(rest, Problem::Unclosed { opener: i, close: '"' }),
    }
}

/// U+0000 to U+001F must be escaped inside a JSON string.
fn is_json_control(c: char) -> bool {
    c < ' '
}

/// The character after a `\` in a JSON string.
fn escape(i: &str) -> PResult<'_, char> {
    let simple: PResult<'_, char> = alt((
        value('"', char('"')),
        value('\\', char('\\')),
        value('/', char('/')),
        value('\u{8}', char('b')),
        value('\u{c}', char('f')),
        value('\n', char('n')),
        value('\r', char('r')),
        value('\t', char('t')),
    ))
    .parse(i);
    match simple {
        Ok(done) => Ok(done),
        Err(_) if i.starts_with('u') => unicode_escape(i),
        Err(_) => fail(i, Problem::Invalid("invalid escape sequence in a string")),
    }
}

/// `uXXXX`, or a UTF-16 surrogate pair `uD83D\uDE00`.
fn unicode_escape(i: &str) -> PResult<'_, char> {
    const BAD: Problem<'static> =
        Problem::Invalid("\\u must be followed by four hex digits naming a Unicode scalar value");
    let (rest, high) = preceded(char('u'), hex4).parse(i).map_err(|_| failure(i, BAD))?;
    if !(0xD800..0xDC00).contains(&high) {
        return char::from_u32(high).map(|c| (rest, c)).ok_or_else(|| failure(i, BAD));
    }
    let (rest, low) = preceded(tag("\\u"), hex4).parse(rest).map_err(|_| failure(i, BAD))?;
    if !(0xDC00..0xE000).contains(&low) {
        return fail(i, BAD);
    }
    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
    char::from_u32(code).map(|c| (rest, c)).ok_or_else(|| failure(i, BAD))
}

fn hex4(i: &str) -> PResult<'_, u32> {
    let (rest, digits) = take_while_m_n(4, 4, |c: char| c.is_ascii_hexdigit()).parse(i)?;
    match u32::from_str_radix(digits, 16) {
        Ok(n) => Ok((rest, n)),
        Err(_) => fail(i, Problem::Invalid("invalid hex digits")),
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute paths
// ---------------------------------------------------------------------------------------------

/// `[URN ":"] ATTRNAME ["." subAttr]`. The URN ends at the *last* `:` (so the `.0` of
/// `…:enterprise:2.0:User:manager` is not a sub-attribute).
fn attr_path(i: &str) -> PResult<'_, AttrPath> {
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
fn sub_attr_name(i: &str) -> PResult<'_, String> {
    let (rest, name) = take_while::<_, _, PErr>(|c: char| is_name_char(c) || c == '$').parse(i)?;
    match check_name(name) {
        Ok(()) => Ok((rest, name.to_owned())),
        Err((offset, problem)) => fail(i.get(offset..).unwrap_or(i), problem),
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH paths
// ---------------------------------------------------------------------------------------------

/// `attrPath / valuePath ["." subAttr]` (RFC 7644 §3.5.2 Figure 7).
fn patch_path<'a>(ctx: &Ctx, i: &'a str) -> PResult<'a, PatchPath> {
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
    use super::*;
    use crate::error::ScimType;
    use std::time::{Duration, Instant};

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn strict() -> Tolerances {
        Tolerances::strict()
    }

    fn lenient() -> Tolerances {
        Tolerances::lenient()
    }

    /// Parses in strict mode, panicking with the error.
    fn p(input: &str) -> Filter {
        parse_filter(input, &strict()).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    /// Parses in lenient mode, panicking with the error.
    fn pl(input: &str) -> Filter {
        parse_filter(input, &lenient()).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    /// The strict-mode error, which must be a 400 invalidFilter.
    fn err(input: &str) -> String {
        let e = parse_filter(input, &strict()).expect_err(input);
        assert_eq!(e.status, 400, "{input:?}");
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{input:?}");
        e.detail
    }

    fn path_ok(input: &str) -> PatchPath {
        parse_patch_path(input, &strict()).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn path_err(input: &str) -> String {
        let e = parse_patch_path(input, &strict()).expect_err(input);
        assert_eq!(e.status, 400, "{input:?}");
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{input:?}");
        e.detail
    }

    fn attr(name: &str) -> AttrPath {
        AttrPath::new(name)
    }

    fn sub(name: &str, sub: &str) -> AttrPath {
        AttrPath::with_sub(name, sub)
    }

    fn urn_attr(urn: &str, name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath { urn: Some(urn.to_owned()), name: name.to_owned(), sub_attr: sub.map(Into::into) }
    }

    fn s(v: &str) -> CompValue {
        CompValue::String(v.to_owned())
    }

    fn n(v: i64) -> CompValue {
        CompValue::Number(v.into())
    }

    fn eq(name: &str, v: CompValue) -> Filter {
        Filter::Compare(attr(name), CompareOp::Eq, v)
    }

    fn cmp(path: AttrPath, op: CompareOp, v: CompValue) -> Filter {
        Filter::Compare(path, op, v)
    }

    fn pr(name: &str) -> Filter {
        Filter::Present(attr(name))
    }

    fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }

    fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }

    fn not(a: Filter) -> Filter {
        Filter::Not(Box::new(a))
    }

    fn vp(name: &str, inner: Filter) -> Filter {
        Filter::ValuePath(attr(name), Box::new(inner))
    }

    /// `parse(display(parse(x))) == parse(x)`, in the same mode.
    fn assert_round_trip(input: &str, tol: &Tolerances) {
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
        assert_eq!(
            p(r#"emails[type eq "work"].value eq "a@b.c""#),
            vp("emails", and(eq("type", s("work")), eq("value", s("a@b.c"))))
        );
        assert_eq!(
            p(r#"emails[type eq "work"].value pr"#),
            vp("emails", and(eq("type", s("work")), pr("value")))
        );
        assert_eq!(
            p(r#"emails[type eq "work"].value eq "a@b.c" and active eq true"#),
            and(
                vp("emails", and(eq("type", s("work")), eq("value", s("a@b.c")))),
                eq("active", CompValue::Bool(true))
            )
        );
        assert_eq!(
            p(r#"emails[type eq "work" or type eq "home"].value co "x""#),
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
        assert!(err(r#"emails[type eq "work"].value"#).contains("expected a comparison operator"));
        assert!(err(r#"emails[type eq "work"]."#).contains("expected an attribute name"));
        assert!(
            err(r#"emails[type eq "work"].value.x eq 1"#)
                .contains("expected a comparison operator")
        );
        assert!(err(r#"x[emails[type eq "work"].value eq 1]"#).contains("cannot be nested"));
    }

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

    // --- values ---------------------------------------------------------------------------

    #[test]
    fn string_escapes() {
        assert_eq!(p(r#"a eq "say \"hi\"""#), eq("a", s(r#"say "hi""#)));
        assert_eq!(p(r#"a eq "back\\slash""#), eq("a", s(r"back\slash")));
        assert_eq!(p(r#"a eq "\/\b\f\n\r\t""#), eq("a", s("/\u{8}\u{c}\n\r\t")));
        assert_eq!(p(r#"a eq "caf\u00e9""#), eq("a", s("café")));
        assert_eq!(p(r#"a eq "caf\u00E9""#), eq("a", s("café")));
        assert_eq!(p(r#"a eq "\ud83d\ude00""#), eq("a", s("😀")));
        assert_eq!(p(r#"a eq "é😀 raw""#), eq("a", s("é😀 raw")));
        assert_eq!(p(r#"a eq """#), eq("a", s("")));
        assert_eq!(p(r#"a eq "\"""#), eq("a", s("\"")));
        assert_eq!(p(r#"a eq "(x) [y] and or""#), eq("a", s("(x) [y] and or")));
    }

    #[test]
    fn string_errors() {
        assert!(err(r#"a eq "\x""#).contains("invalid escape sequence"));
        assert!(err(r#"a eq "\u12""#).contains("four hex digits"));
        assert!(err(r#"a eq "\u12g4""#).contains("four hex digits"));
        assert!(err(r#"a eq "\ud800""#).contains("four hex digits"), "lone high surrogate");
        assert!(err(r#"a eq "\ud800\u0041""#).contains("four hex digits"), "bad low surrogate");
        assert!(err(r#"a eq "\udc00""#).contains("four hex digits"), "lone low surrogate");
        assert!(err("a eq \"x\u{1}y\"").contains("control characters"));
        assert!(err("a eq \"\u{1}\"").contains("control characters"));
        let e = err(r#"a eq "abc"#);
        assert!(e.contains("expected '\"' to close the '\"' at position 5"), "{e}");
        assert!(err(r#"a eq "abc\"#).contains("expected '\"'"));
        assert!(err(r#"a eq ""#).contains("expected '\"'"));
        assert!(err(r#"a eq "x"y"#).contains("after the value"));
        assert!(err(r#"a eq "x""y""#).contains("after the value"));
        assert!(err(r#"a eq 'x'"#).contains("expected a comparison value"));
    }

    #[test]
    fn numbers() {
        assert_eq!(p("age eq 42"), eq("age", n(42)));
        assert_eq!(p("age eq -7"), eq("age", n(-7)));
        assert_eq!(p("age eq 0"), eq("age", n(0)));
        let float = |x: f64| CompValue::Number(serde_json::Number::from_f64(x).unwrap());
        assert_eq!(p("x eq -1.5e3"), eq("x", float(-1500.0)));
        assert_eq!(p("x eq 1E5"), eq("x", float(100000.0)));
        assert_eq!(p("x eq 0.25"), eq("x", float(0.25)));
        assert_eq!(
            p("x gt 18446744073709551615"),
            cmp(attr("x"), CompareOp::Gt, CompValue::Number(u64::MAX.into()))
        );
        assert_eq!(p("x eq -0"), eq("x", float(-0.0)));
        assert_eq!(p("x eq -9223372036854775808"), eq("x", n(i64::MIN)));
        assert_eq!(p("x eq -9223372036854775809"), eq("x", float(-9223372036854775809.0)));
        assert_eq!(p("x eq 1e-400"), eq("x", float(0.0)));
        // Correctly rounded, so that Display's shortest text reads back as the same float
        // (serde_json's default parser is one ulp off here).
        assert_eq!(p("x eq -1.55e31"), eq("x", float(-1.55e31)));
        for text in
            ["-1.55e31", "1.7976931348623157e308", "5e-324", "0.1", "2.2250738585072014e-308"]
        {
            assert_round_trip(&format!("x eq {text}"), &strict());
        }
        assert_eq!(p("(x eq 1)"), eq("x", n(1)));
        assert_eq!(p("x[y eq 1]"), vp("x", eq("y", n(1))));
        for bad in ["01", "1.", "+1", ".5", "1e400", "1x", "--1", "1e", "0x10", "NaN", "-"] {
            let e = err(&format!("x eq {bad}"));
            assert!(e.contains("expected a comparison value"), "{bad}: {e}");
        }
    }

    #[test]
    fn ordering_operators_reject_booleans_and_null() {
        for op in ["gt", "ge", "lt", "le", "GT"] {
            for v in ["true", "false", "null", "True"] {
                let e = err(&format!("active {op} {v}"));
                assert!(e.contains("cannot compare true, false or null"), "{e}");
                assert!(e.contains(&format!("position {}", 8 + op.len())), "{e}");
            }
        }
        assert_eq!(p("active ne true"), cmp(attr("active"), CompareOp::Ne, CompValue::Bool(true)));
        assert_eq!(p("x eq null"), eq("x", CompValue::Null));
        assert_eq!(p("x gt 5"), cmp(attr("x"), CompareOp::Gt, n(5)));
        // `gt "true"` is a string comparison: fine.
        assert_eq!(p(r#"x gt "true""#), cmp(attr("x"), CompareOp::Gt, s("true")));
    }

    #[test]
    fn unquoted_values_with_the_tolerance() {
        assert_eq!(pl("externalId eq jyoung"), eq("externalId", s("jyoung")));
        assert_eq!(pl("userName eq x@y.com"), eq("userName", s("x@y.com")));
        assert_eq!(pl("userName eq x@y"), eq("userName", s("x@y")));
        assert_eq!(pl("(userName eq x@y)"), eq("userName", s("x@y")));
        assert_eq!(pl("emails[value eq a@b]"), vp("emails", eq("value", s("a@b"))));
        assert_eq!(
            pl("externalId eq jyoung and active eq true"),
            and(eq("externalId", s("jyoung")), eq("active", CompValue::Bool(true)))
        );
        // Literals keep their JSON meaning.
        assert_eq!(pl("externalId eq 12345"), eq("externalId", n(12345)));
        assert_eq!(pl("active eq True"), eq("active", CompValue::Bool(true)));
        assert_eq!(pl("x eq null"), eq("x", CompValue::Null));
        // Not JSON numbers: strings.
        assert_eq!(pl("employeeNumber eq 0123"), eq("employeeNumber", s("0123")));
        assert_eq!(pl("x eq 1e400"), eq("x", s("1e400")));
        assert_eq!(pl("x eq 'quoted'"), eq("x", s("'quoted'")));
        assert_eq!(pl("x eq a\"b"), eq("x", s("a\"b")));
        // Quoted strings are still JSON strings.
        assert_eq!(pl(r#"x eq "a b""#), eq("x", s("a b")));
        assert!(parse_filter(r#"x eq "a"#, &lenient()).is_err());
        assert!(parse_filter("x eq", &lenient()).is_err());
        assert!(parse_filter("x gt true", &lenient()).is_err());
    }

    #[test]
    fn unquoted_values_without_the_tolerance() {
        for input in ["externalId eq jyoung", "userName eq x@y.com", "userName eq x@y"] {
            let e = err(input);
            assert!(e.contains("expected a comparison value (a double-quoted string"), "{e}");
            assert!(e.contains("position 14") || e.contains("position 12"), "{e}");
        }
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
            p(r#"emails[type eq "work"].value eq "a@b.c""#),
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

    // --- whitespace -----------------------------------------------------------------------

    #[test]
    fn whitespace_is_tolerated() {
        let expected = and(eq("a", n(1)), pr("b"));
        for input in [
            "a eq 1 and b pr",
            "  a eq 1 and b pr  ",
            "a   eq   1   and   b   pr",
            "a\teq\t1\tand\tb\tpr",
            "\r\na eq 1\nand b pr\n",
            "(  a eq 1 ) and ( b pr  )",
        ] {
            assert_eq!(p(input), expected, "{input:?}");
        }
        // Only ASCII whitespace separates tokens.
        assert!(err("a\u{a0}eq 1").contains("expected a comparison operator"));
    }

    // --- errors ---------------------------------------------------------------------------

    #[test]
    fn malformed_filters() {
        let cases = [
            ("", "the filter is empty"),
            ("   ", "the filter is empty"),
            ("(", "expected an attribute name, '(' or 'not ('"),
            (")", "expected an attribute name, '(' or 'not ('"),
            ("()", "expected an attribute name, '(' or 'not ('"),
            ("(a pr", "expected ')' to close the '(' at position 0"),
            ("a pr)", "unbalanced ')'"),
            ("a pr]", "unbalanced ']'"),
            ("((a pr)", "expected ')' to close the '(' at position 0"),
            ("userName", "expected a comparison operator"),
            ("userName eq", "expected a space and a comparison value"),
            ("userName eq ", "expected a comparison value"),
            (r#"userName xx "x""#, "expected a comparison operator"),
            (r#"userName eq "x" foo"#, "expected 'and', 'or' or the end of the filter"),
            (r#"userName eq "x" and"#, "expected an attribute name, '(' or 'not ('"),
            (r#"userName eq "x" or "#, "expected an attribute name, '(' or 'not ('"),
            ("and", "expected a comparison operator"),
            ("a pr or or b pr", "expected a comparison operator"),
            ("a pr and and", "expected a comparison operator"),
            (r#""x" eq a"#, "expected an attribute name, '(' or 'not ('"),
            ("[a pr]", "expected an attribute name, '(' or 'not ('"),
            ("title pr \"x\"", "expected 'and', 'or' or the end of the filter"),
            ("a eq (1)", "expected a comparison value"),
        ];
        for (input, want) in cases {
            let e = err(input);
            assert!(e.contains(want), "{input:?}: {e}");
        }
    }

    #[test]
    fn errors_say_where() {
        let e = err(r#"userName xx "x""#);
        assert_eq!(
            e,
            r#"invalid filter at position 9 (near "xx \"x\""): expected a comparison operator (eq, ne, co, sw, ew, gt, lt, ge, le) or 'pr'"#
        );
        let e = err(r#"userName eq "x" foo"#);
        assert!(e.starts_with(r#"invalid filter at position 16 (near "foo"):"#), "{e}");
        let e = err("userName eq");
        assert!(e.starts_with("invalid filter at position 11 (at end of input):"), "{e}");
        // Positions count characters, not bytes.
        let e = err(r#"a eq "é😀" foo"#);
        assert!(e.contains("position 10 "), "{e}");
        // Long remainders are cut in the message.
        let e = err(&format!("a pr {}", "x".repeat(500)));
        assert!(e.len() < 200, "{e}");
    }

    // --- limits ---------------------------------------------------------------------------

    /// The fastest of three runs, so that a busy machine does not fail the timing check.
    fn fastest(f: impl Fn()) -> Duration {
        (0..3)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .min()
            .unwrap_or_default()
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let deep = format!("{}a pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(p(&deep), pr("a"));
        let nots = format!("{}a pr{}", "not (".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(p(&nots).to_string().starts_with("not (not ("));
        // The value path's bracket counts as one level.
        let parens = MAX_DEPTH - 1;
        let in_brackets = format!("{}x[a pr]{}", "(".repeat(parens), ")".repeat(parens));
        p(&in_brackets);
        let too_deep = format!("{}x[a pr]{}", "(".repeat(parens + 1), ")".repeat(parens + 1));
        assert!(err(&too_deep).contains("nested deeper than 32 levels"));
    }

    /// The deepest accepted filters fit in a small stack even unoptimised (recursion is
    /// bounded by MAX_DEPTH; tokio and actix worker threads have 2 MiB).
    #[test]
    fn deepest_filters_fit_in_a_small_stack() {
        let k = MAX_DEPTH - 1;
        let inputs = [
            format!("{}a pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH)),
            format!("{}a pr{}", "not (".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH)),
            format!(
                "{}x[{}a pr{}]{}",
                "(".repeat(k / 2),
                "(".repeat(k - k / 2),
                ")".repeat(k - k / 2),
                ")".repeat(k / 2)
            ),
        ];
        let worker = std::thread::Builder::new().stack_size(STACK).spawn(move || {
            for input in &inputs {
                let filter = parse_filter(input, &lenient()).expect("within the limits");
                let text = filter.to_string();
                assert_eq!(parse_filter(&text, &lenient()).as_ref(), Ok(&filter));
                let _ = format!("{filter:?}");
                let _ = parse_patch_path(input, &lenient());
            }
        });
        worker.expect("spawn").join().expect("no stack overflow");
    }

    const STACK: usize = 256 * 1024;

    #[test]
    fn nesting_beyond_the_limit_is_rejected() {
        let deep = format!("{}a pr{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        let e = err(&deep);
        assert!(e.contains("nested deeper than 32 levels"), "{e}");
        assert!(e.contains(&format!("position {MAX_DEPTH}")), "{e}");
    }

    #[test]
    fn pathological_nesting_fails_fast_without_overflowing() {
        let inputs = [
            "(".repeat(10_000),
            format!("{}a pr{}", "(".repeat(10_000), ")".repeat(10_000)),
            "not(".repeat(10_000),
            "not (".repeat(10_000),
            format!("{}a pr", "x[(".repeat(5_000)),
            format!("a[{}", "(".repeat(10_000)),
            "((((((((((".repeat(MAX_FILTER_LEN / 10),
        ];
        for input in &inputs {
            let took = fastest(|| {
                let e = parse_filter(input, &lenient()).expect_err("too deep");
                assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
            });
            assert!(took < Duration::from_millis(100), "{took:?}");
            let took = fastest(|| {
                let _ = parse_patch_path(input, &lenient());
            });
            assert!(took < Duration::from_millis(100), "{took:?}");
        }
    }

    #[test]
    fn term_count_is_capped() {
        let chain = |count: usize| vec!["a pr"; count].join(" or ");
        p(&chain(MAX_TERMS));
        let e = err(&chain(MAX_TERMS + 1));
        assert!(e.contains("more than 256 attribute expressions"), "{e}");
        let in_brackets = format!("x[{}]", vec!["a eq 1"; MAX_TERMS + 1].join(" and "));
        assert!(err(&in_brackets).contains("more than 256"));
        // Entra's form adds a term.
        let entra = format!("x[{}].value pr", vec!["a pr"; MAX_TERMS].join(" and "));
        assert!(err(&entra).contains("more than 256"));
        // A long chain is a deep tree; dropping and displaying it is fine.
        let f = p(&chain(MAX_TERMS));
        assert_eq!(f.to_string(), chain(MAX_TERMS));
        drop(f);
    }

    #[test]
    fn length_is_capped() {
        let prefix = "userName eq \"";
        let fits = format!("{prefix}{}\"", "x".repeat(MAX_FILTER_LEN - prefix.len() - 1));
        assert_eq!(fits.len(), MAX_FILTER_LEN);
        p(&fits);
        let too_long = format!("{prefix}{}\"", "x".repeat(MAX_FILTER_LEN - prefix.len()));
        let e = err(&too_long);
        assert_eq!(e, "the filter is longer than 8192 bytes");
        assert!(path_err(&"a".repeat(MAX_FILTER_LEN + 1)).contains("longer than 8192 bytes"));
        assert!(parse_attr_path(&"a".repeat(MAX_FILTER_LEN + 1)).is_err());
    }

    #[test]
    fn entra_form_stays_within_the_depth_its_display_needs() {
        // At the deepest level, an `or` inside the brackets would need one more level of
        // parentheses once displayed: refused.
        let inner = format!("{}a pr{}", "(".repeat(MAX_DEPTH - 1), ")".repeat(MAX_DEPTH - 1));
        let plain = format!("x[{inner} or b pr].value pr");
        assert!(err(&plain).contains("nested deeper"));
        // Without the `or` it fits.
        let fits = format!("x[{inner} and b pr].value pr");
        assert_round_trip(&fits, &strict());
        let shallower = format!("x[{} or b pr].value pr", &inner[1..inner.len() - 1]);
        assert_round_trip(&shallower, &strict());
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

    // --- Display --------------------------------------------------------------------------

    #[test]
    fn display_is_canonical() {
        let cases = [
            (r#"userName Eq "x""#, r#"userName eq "x""#),
            ("  title   PR ", "title pr"),
            ("a pr or (b pr and c pr)", "a pr or b pr and c pr"),
            ("(a pr or b pr) and c pr", "(a pr or b pr) and c pr"),
            ("a pr and (b pr and c pr)", "a pr and (b pr and c pr)"),
            ("a pr or (b pr or c pr)", "a pr or (b pr or c pr)"),
            ("(a pr and b pr) and c pr", "a pr and b pr and c pr"),
            ("((a pr))", "a pr"),
            ("NOT(a pr)", "not (a pr)"),
            ("not (a pr and b pr) or c pr", "not (a pr and b pr) or c pr"),
            (
                r#"emails[type eq "work"].value eq "x""#,
                r#"emails[type eq "work" and value eq "x"]"#,
            ),
            (
                r#"emails[type eq "a" or type eq "b"].value pr"#,
                r#"emails[(type eq "a" or type eq "b") and value pr]"#,
            ),
            (r#"a eq "q\"b\\s\n\u0001\u00e9""#, r#"a eq "q\"b\\s\n\u0001é""#),
            ("x eq TRUE", "x eq true"),
            ("x eq Null", "x eq null"),
            ("x eq 1E5", "x eq 100000.0"),
            ("x eq -0.50", "x eq -0.5"),
            (&format!("{ENTERPRISE}:manager.value pr"), &format!("{ENTERPRISE}:manager.value pr")),
        ];
        for (input, want) in cases {
            assert_eq!(p(input).to_string(), want, "{input:?}");
            assert_round_trip(input, &strict());
        }
        assert_eq!(pl("externalId eq jyoung").to_string(), r#"externalId eq "jyoung""#);
        assert_eq!(pl("x eq a\"b").to_string(), r#"x eq "a\"b""#);
    }

    #[test]
    fn patch_path_display_round_trips() {
        for input in [
            "members",
            "name.familyName",
            r#"members[value eq "2819c223"]"#,
            r#"emails[type eq "work"].value"#,
            r#"emails[type eq "work" or (primary eq true and not (value pr))].display"#,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ] {
            let first = path_ok(input);
            let text = first.to_string();
            assert_eq!(path_ok(&text), first, "{input:?} -> {text:?}");
        }
        assert_eq!(
            path_ok(r#"emails[ type EQ "work" ].value"#).to_string(),
            r#"emails[type eq "work"].value"#
        );
    }

    #[test]
    fn compvalue_display_escapes_control_characters() {
        let v = CompValue::String("\u{0}\u{1f}\u{7f}\u{2028}".to_owned());
        assert_eq!(v.to_string(), "\"\\u0000\\u001f\u{7f}\u{2028}\"");
        assert_eq!(CompValue::Null.to_string(), "null");
        assert_eq!(CompValue::Bool(false).to_string(), "false");
        assert_eq!(n(-3).to_string(), "-3");
    }

    // --- robustness -----------------------------------------------------------------------

    /// Valid and nearly valid inputs whose prefixes and one-character edits exercise every
    /// error path.
    const SEEDS: &[&str] = &[
        r#"userName eq "bjensen""#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        r#"emails[type eq "work"].value eq "a@b.c""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
        r#"a eq "\ud83d\ude00\u00e9\"\\" or b eq -1.5e3 and c eq true"#,
        "externalId eq jyoung and members[$ref eq x@y]",
        "not(not (a pr)) and ((b gt 5) or c le null)",
        "é eq \"é\" or 😀 pr",
    ];

    /// Every character prefix, every one-character deletion and some insertions: never a
    /// panic, and whatever parses round-trips.
    #[test]
    fn prefixes_and_edits_never_panic() {
        let inserts = ['(', ')', '[', ']', '"', '\\', ' ', '.', ':', 'é', '\u{0}', 'u'];
        for seed in SEEDS {
            let bounds: Vec<usize> =
                seed.char_indices().map(|(i, _)| i).chain([seed.len()]).collect();
            let mut variants = Vec::new();
            for (k, &at) in bounds.iter().enumerate() {
                variants.push(seed[..at].to_owned());
                if let Some(&next) = bounds.get(k + 1) {
                    variants.push(format!("{}{}", &seed[..at], &seed[next..]));
                }
                for c in inserts {
                    variants.push(format!("{}{c}{}", &seed[..at], &seed[at..]));
                }
            }
            for v in &variants {
                for tol in [strict(), lenient()] {
                    assert_round_trip(v, &tol);
                    if let Ok(path) = parse_patch_path(v, &tol) {
                        let text = path.to_string();
                        assert_eq!(parse_patch_path(&text, &tol), Ok(path), "{v:?} -> {text:?}");
                    }
                    let _ = parse_attr_path(v);
                }
            }
        }
    }

    /// A small deterministic fuzzer over filter tokens (the cargo-fuzz target goes further).
    #[test]
    fn random_token_soup_never_panics_and_round_trips() {
        const TOKENS: &[&str] = &[
            "a",
            "emails",
            "name.givenName",
            "urn:x:y:z",
            "$ref",
            "eq",
            "EQ",
            "pr",
            "gt",
            "co",
            "and",
            "or",
            "not",
            "AND",
            "(",
            ")",
            "[",
            "]",
            ".",
            "value",
            "\"x\"",
            "\"\\u00e9\"",
            "\"",
            "1",
            "-2.5e3",
            "true",
            "null",
            "x@y",
            " ",
            "  ",
            "\t",
            "not(",
            "].value",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let len = (next() % 12) as usize + 1;
            let mut input = String::new();
            for _ in 0..len {
                input.push_str(TOKENS[(next() % TOKENS.len() as u64) as usize]);
                if next() % 3 != 0 {
                    input.push(' ');
                }
            }
            for tol in [strict(), lenient()] {
                if parse_filter(&input, &tol).is_ok() {
                    parsed += 1;
                }
                assert_round_trip(&input, &tol);
                if let Ok(path) = parse_patch_path(&input, &tol) {
                    assert_eq!(parse_patch_path(&path.to_string(), &tol), Ok(path), "{input:?}");
                }
            }
        }
        assert!(parsed > 100, "the generator should hit valid filters too ({parsed})");
    }
}
