//! The parser's error type and how an error becomes the message the client reads: what was
//! expected, where (a character position) and near what.

use nom::IResult;
use nom::error::{ErrorKind, ParseError};

use super::{MAX_DEPTH, MAX_TERMS};
use crate::error::ScimError;

/// What went wrong at a position. Kept small and static: the message is built once, at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Problem<'a> {
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
pub(super) struct PErr<'a> {
    pub(super) at: &'a str,
    pub(super) problem: Problem<'a>,
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

pub(super) type PResult<'a, T> = IResult<&'a str, T, PErr<'a>>;

/// A committed (non-backtracking) error: the grammar is decided by one token of look-ahead, so
/// any mismatch after that is final.
pub(super) fn failure<'a>(at: &'a str, problem: Problem<'a>) -> nom::Err<PErr<'a>> {
    nom::Err::Failure(PErr { at, problem })
}

pub(super) fn fail<'a, T>(at: &'a str, problem: Problem<'a>) -> PResult<'a, T> {
    Err(failure(at, problem))
}

/// Which entry point is running: it picks the error's `scimType` and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Filter,
    Path,
    AttrPath,
}

impl Kind {
    pub(super) fn label(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Path => "path",
            Kind::AttrPath => "attribute path",
        }
    }

    pub(super) fn error(self, detail: String) -> ScimError {
        match self {
            Kind::Filter => ScimError::invalid_filter(detail),
            Kind::Path | Kind::AttrPath => ScimError::invalid_path(detail),
        }
    }

    /// What may follow a complete parse.
    pub(super) fn trailing_problem(self, rest: &str) -> Problem<'static> {
        match (self, rest.chars().next()) {
            (_, Some(')')) => Problem::Invalid("unbalanced ')'"),
            (_, Some(']')) => Problem::Invalid("unbalanced ']'"),
            (Kind::Filter, _) => Problem::Expected("'and', 'or' or the end of the filter"),
            (Kind::Path, _) => Problem::Expected("the end of the path"),
            (Kind::AttrPath, _) => Problem::Expected("the end of the attribute path"),
        }
    }
}

/// `invalid filter at position 17 (near "…"): expected a comparison operator`.
pub(super) fn render(input: &str, label: &str, err: PErr<'_>) -> String {
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

#[cfg(test)]
mod tests {
    use crate::filter::parser::test_support::err;

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
}
