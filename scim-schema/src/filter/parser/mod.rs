//! The filter and attribute-path parser: RFC 7644 §3.4.2.2 (Figure 1, filters), §3.5.2
//! (Figure 7, PATCH paths) and bare attribute paths (`sortBy`, `attributes=`).
//!
//! A recursive-descent parser built from nom 8 combinators. Precedence is grouping, then `not`,
//! then `and`, then `or`; `and`/`or` are left-associative. Keywords and operators are
//! case-insensitive (`tag_no_case`). Beyond Figure 1 it accepts, on purpose:
//! - `not(…)` with or without a space (Figure 1 has none), `and`/`or` right after `)` or `]`;
//! - `true`/`false`/`null` in any case, and `$ref` as an attribute name (RFC 7643 §2.1);
//! - Entra's `emails[type eq "work"].value eq "x"`, read as
//!   `emails[type eq "work" and value eq "x"]`, when
//!   [`Tolerances::value_path_sub_attr_filter`] is on;
//! - unquoted values (`externalId eq jyoung`) when [`Tolerances::unquoted_filter_values`] is on.
//!
//! Safety: the input length is capped before parsing; nesting depth ([`MAX_DEPTH`]) is checked
//! *before* each recursive descent and attribute expressions ([`MAX_TERMS`]) are counted as they
//! are read, so a hostile `((((…` fails after a few dozen bytes, without deep recursion. The
//! parser never panics: every slice it takes is at a position it has just matched.
//!
//! Errors name the character position (0-based, counted in characters) and what was expected:
//! `invalid filter at position 12 (near "xx \"y\""): expected a comparison operator …`.

mod attr_path;
mod errors;
mod grammar;
mod values;

#[cfg(test)]
mod test_support;

use std::cell::Cell;

use super::ast::{AttrPath, Filter, PatchPath};
use crate::compat::Tolerances;
use crate::error::ScimError;
use attr_path::attr_path;
use errors::{Kind, PErr, PResult, Problem, failure, render};
use grammar::{or_expr, patch_path};

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
    // No database text type holds U+0000 (PostgreSQL refuses it): refused here, as sent or
    // escaped (`\u0000`, see `values::unicode_escape`), so it never reaches a query.
    if input.contains('\0') {
        return Err(kind.error(format!("the {label} contains the NUL character (U+0000)")));
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

/// Per-parse state. Counters are `Cell`s because the parse functions share `&Ctx`.
struct Ctx {
    unquoted: bool,
    /// Entra's `emails[…].value eq "x"` ([`Tolerances::value_path_sub_attr_filter`]).
    value_path_sub_attr: bool,
    terms: Cell<usize>,
    /// The deepest nesting entered so far (see the Entra form in `grammar::value_path`).
    deepest: Cell<usize>,
}

impl Ctx {
    fn new(tol: &Tolerances) -> Self {
        Ctx {
            unquoted: tol.unquoted_filter_values,
            value_path_sub_attr: tol.value_path_sub_attr_filter,
            terms: Cell::new(0),
            deepest: Cell::new(0),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::filter::ast::CompValue;
    use crate::filter::parser::test_support::{
        ENTERPRISE, and, assert_round_trip, eq, err, errl, lenient, n, p, path_err, path_ok, pl,
        pr, strict,
    };
    use std::time::{Duration, Instant};

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
        assert!(errl(&entra).contains("more than 256"));
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
        assert!(errl(&plain).contains("nested deeper"));
        // Without the `or` it fits.
        let fits = format!("x[{inner} and b pr].value pr");
        assert_round_trip(&fits, &lenient());
        let shallower = format!("x[{} or b pr].value pr", &inner[1..inner.len() - 1]);
        assert_round_trip(&shallower, &lenient());
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
            // Lenient, for Entra's `].value eq` form among them.
            assert_eq!(pl(input).to_string(), want, "{input:?}");
            assert_round_trip(input, &lenient());
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
