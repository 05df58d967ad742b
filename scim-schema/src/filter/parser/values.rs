//! Comparison values: JSON strings and numbers (RFC 8259 §6, §7), `true`, `false`, `null`,
//! and unquoted strings when tolerated.

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{escaped_transform, tag, take_while, take_while_m_n, take_while1};
use nom::character::complete::{char, digit0, digit1, one_of, satisfy};
use nom::combinator::{opt, value};
use nom::sequence::preceded;

use super::errors::{PErr, PResult, Problem, fail, failure};
use super::{Ctx, at_delimiter, is_ws};
use crate::filter::ast::CompValue;

const VALUE: &str = "a comparison value (a double-quoted string, a number, true, false or null)";

/// `compValue`, followed by a delimiter.
pub(super) fn comp_value<'a>(ctx: &Ctx, i: &'a str) -> PResult<'a, CompValue> {
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
    if high == 0 {
        // No database text type holds U+0000 (PostgreSQL refuses it).
        return fail(i, Problem::Invalid("\\u0000 (the NUL character) is not allowed in a string"));
    }
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

#[cfg(test)]
mod tests {
    use super::super::parse_filter;
    use crate::filter::ast::{CompValue, CompareOp};
    use crate::filter::parser::test_support::{
        and, assert_round_trip, attr, cmp, eq, err, lenient, n, p, pl, s, strict, vp,
    };

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
        assert!(err(r#"a eq "a\u0000b""#).contains("NUL"), "escaped NUL");
        assert!(err("a eq \"a\u{0}b\"").contains("NUL"), "raw NUL");
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
}
