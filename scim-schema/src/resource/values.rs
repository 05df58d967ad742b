//! One simple value against its attribute type: the type checks of normalising, with the
//! tolerance for Entra's boolean strings, and the RFC 3339 date-time grammar.

use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::schema::AttrType;
use serde_json::Value;

/// A simple (non-complex) value of type `t`, or None when it has the wrong type.
pub(super) fn simple_value(t: AttrType, value: &Value, tol: &Tolerances) -> Option<Value> {
    let ok = match (t, value) {
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(_)) => true,
        (AttrType::Boolean, Value::Bool(_)) => true,
        // Entra sends "True"/"False" (shared/reference §2.6 item 2).
        (AttrType::Boolean, Value::String(s)) if tol.bool_strings => {
            return bool_from_str(s).map(Value::Bool);
        }
        (AttrType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (AttrType::Decimal, Value::Number(_)) => true,
        (AttrType::DateTime, Value::String(s)) => is_date_time(s),
        _ => false,
    };
    ok.then(|| value.clone())
}

pub(super) fn bool_from_str(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub(super) fn type_phrase(t: AttrType) -> &'static str {
    match t {
        AttrType::String => "a string",
        AttrType::Boolean => "a boolean",
        AttrType::Decimal => "a number",
        AttrType::Integer => "an integer",
        AttrType::DateTime => "an RFC 3339 date-time string",
        AttrType::Binary => "a base64 string",
        AttrType::Reference => "a URI string",
        AttrType::Complex => "an object",
    }
}

pub(super) fn type_error(path: &str, what: &str) -> ScimError {
    ScimError::invalid_value(format!("attribute \"{path}\" must be {what}"))
}

/// `2008-01-23T04:56:22Z`: RFC 3339 `date-time`; the offset may be missing, as xsd:dateTime
/// (RFC 7643 §2.3.5) allows.
pub(super) fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |from: usize, len: usize, max: u32| -> bool {
        b.get(from..from + len).is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && s[from..from + len].parse::<u32>().is_ok_and(|n| n <= max)
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    let date_time = num(0, 4, 9999)
        && at(4, b"-")
        && num(5, 2, 12)
        && at(7, b"-")
        && num(8, 2, 31)
        && at(10, b"Tt")
        && num(11, 2, 23)
        && at(13, b":")
        && num(14, 2, 59)
        && at(16, b":")
        && num(17, 2, 60) // leap second
        && &s[5..7] != "00"
        && &s[8..10] != "00";
    if !date_time {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &frac[digits..];
    }
    match rest.as_bytes() {
        [] | [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] if rest.len() == 6 => {
            num(s.len() - 5, 2, 23) && at(s.len() - 3, b":") && num(s.len() - 2, 2, 59)
        }
        _ => false,
    }
}
