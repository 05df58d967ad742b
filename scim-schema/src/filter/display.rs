//! Canonical text of filters and paths: lower-case keywords, one space between tokens,
//! JSON-quoted strings and only the parentheses the tree needs. The parser reads it back into
//! the same tree: `parse(display(parse(x))) == parse(x)`.

use std::fmt::{self, Write};

use super::ast::{AttrPath, CompValue, Filter, PatchPath};

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => write_json_string(f, s),
        }
    }
}

/// A JSON string literal (RFC 8259 §7). Written by hand because `serde_json::to_string`
/// returns a `Result` that `Display` has no use for.
fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if c < ' ' => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Compare(path, op, value) => write!(f, "{path} {op} {value}"),
            Filter::ValuePath(path, inner) => write!(f, "{path}[{inner}]"),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::And(left, right) => binary(f, left, "and", right, AND),
            Filter::Or(left, right) => binary(f, left, "or", right, OR),
        }
    }
}

const OR: u8 = 1;
const AND: u8 = 2;
const ATOM: u8 = 3;

fn precedence(filter: &Filter) -> u8 {
    match filter {
        Filter::Or(..) => OR,
        Filter::And(..) => AND,
        _ => ATOM,
    }
}

/// `and`/`or` are left-associative: a left operand needs parentheses only if it binds more
/// loosely, a right operand also if it binds the same (`a and (b and c)` is another tree than
/// `a and b and c`).
fn binary(
    f: &mut fmt::Formatter<'_>,
    left: &Filter,
    kw: &str,
    right: &Filter,
    prec: u8,
) -> fmt::Result {
    operand(f, left, precedence(left) < prec)?;
    write!(f, " {kw} ")?;
    operand(f, right, precedence(right) <= prec)
}

fn operand(f: &mut fmt::Formatter<'_>, filter: &Filter, parens: bool) -> fmt::Result {
    if parens { write!(f, "({filter})") } else { write!(f, "{filter}") }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.filter_sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}
