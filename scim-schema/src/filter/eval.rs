//! In-memory filter evaluation (RFC 7644 §3.4.2.2).
//!
//! The server never evaluates list filters in memory (its store translates them into SQL); this
//! module serves PATCH value paths (`emails[type eq "work"]`), Bulk validation and tests.
//!
//! Matching rules:
//! - attribute names are case-insensitive; an attribute the schema does not define never matches;
//! - strings honour `caseExact` (otherwise compared after [`crate::fold::lower`], the simple
//!   lower case PostgreSQL's `lower()` and SQLite's `scim_lower()` apply);
//! - `gt`/`ge`/`lt`/`le` are lexicographic on strings, chronological on `dateTime` (RFC 3339)
//!   and numeric on numbers; on booleans they never match (the parser rejects them);
//! - `pr` means present and not null, `""`, `[]` or `{}`;
//! - `eq null` matches an absent value, `ne` is the negation of `eq` (so `type ne "work"` matches
//!   an element without a `type`);
//! - a multi-valued attribute matches if any of its values matches.

use serde_json::{Map, Value};
use std::cmp::Ordering;

use super::ast::{AttrPath, CompValue, CompareOp, Filter};
use crate::schema::{AttrType, AttributeDef, ResourceKind};

/// Whether one element of a multi-valued complex attribute (a JSON object such as an email
/// `{value,type,primary}`) matches a value filter whose paths are relative to the element
/// (`type eq "work" and value co "@x"`). `attr` is the multi-valued attribute's definition.
///
/// A nested value path cannot occur for scimbridge's schemas and never matches.
pub fn element_matches(filter: &Filter, element: &Value, attr: &AttributeDef) -> bool {
    match filter {
        Filter::Present(path) => element_sub_def(attr, path)
            .and_then(|def| element_field(element, attr, def))
            .is_some_and(is_present),
        Filter::Compare(path, op, comp) => match element_sub_def(attr, path) {
            // An absent sub-attribute compares as null (`type eq null`, `type ne "work"`).
            Some(def) => {
                let value = element_field(element, attr, def).unwrap_or(&Value::Null);
                compare(value, def, *op, comp)
            }
            None => false,
        },
        Filter::ValuePath(..) => false,
        Filter::Not(inner) => !element_matches(inner, element, attr),
        Filter::And(a, b) => element_matches(a, element, attr) && element_matches(b, element, attr),
        Filter::Or(a, b) => element_matches(a, element, attr) || element_matches(b, element, attr),
    }
}

/// Whether a whole resource (a rendered User or Group, extension attributes under their URN
/// key) matches a filter. Used by Bulk validation and tests; list endpoints filter in SQL.
pub fn resource_matches(filter: &Filter, resource: &Value, kind: ResourceKind) -> bool {
    match filter {
        Filter::Present(path) => {
            resource_values(resource, kind, path).is_some_and(|(v, _)| is_present(&v))
        }
        Filter::Compare(path, op, comp) => match resource_values(resource, kind, path) {
            Some((v, def)) => compare(&v, &def, *op, comp),
            None => false,
        },
        Filter::ValuePath(path, inner) => value_path_matches(resource, kind, path, inner),
        Filter::Not(inner) => !resource_matches(inner, resource, kind),
        Filter::And(a, b) => {
            resource_matches(a, resource, kind) && resource_matches(b, resource, kind)
        }
        Filter::Or(a, b) => {
            resource_matches(a, resource, kind) || resource_matches(b, resource, kind)
        }
    }
}

/// `emails[type eq "work"]` over a whole resource: any element of the attribute matches.
fn value_path_matches(
    resource: &Value,
    kind: ResourceKind,
    path: &AttrPath,
    inner: &Filter,
) -> bool {
    if path.sub_attr.is_some() {
        return false;
    }
    let Some(resolved) = kind.resolve(path) else { return false };
    let container = match resolved.extension {
        Some(urn) => get_ci(resource, urn),
        None => Some(resource),
    };
    let Some(value) = container.and_then(|c| get_ci(c, resolved.attr.name)) else { return false };
    match value {
        Value::Array(items) => items.iter().any(|el| element_matches(inner, el, resolved.attr)),
        single => element_matches(inner, single, resolved.attr),
    }
}

/// The value a resource-level path designates, with the definition to compare it by.
/// Multi-valued complex attributes without a sub-attribute compare by their `value`
/// sub-attribute (`emails co "x"` means `emails.value co "x"`, RFC 7644 §3.4.2.2).
fn resource_values(
    resource: &Value,
    kind: ResourceKind,
    path: &AttrPath,
) -> Option<(Value, AttributeDef)> {
    let resolved = kind.resolve(path)?;
    let container = match resolved.extension {
        Some(urn) => get_ci(resource, urn),
        None => Some(resource),
    };
    // A defined but absent attribute is null: it still matches `eq null` and `ne "x"`.
    let absent = Value::Null;
    let value = container.and_then(|c| get_ci(c, resolved.attr.name)).unwrap_or(&absent);
    let sub = resolved.sub.or_else(|| {
        (resolved.attr.multi_valued && resolved.attr.attr_type == AttrType::Complex)
            .then(|| resolved.attr.sub_attribute("value"))
            .flatten()
    });
    match sub {
        None => Some((value.clone(), resolved.attr.clone())),
        Some(sub) => Some((project_sub(value, sub.name), sub.clone())),
    }
}

/// A sub-attribute of every element of a multi-valued attribute, as an array; of a single
/// complex value, as is.
fn project_sub(value: &Value, sub: &str) -> Value {
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().filter_map(|el| get_ci(el, sub)).cloned().collect())
        }
        other => get_ci(other, sub).cloned().unwrap_or(Value::Null),
    }
}

/// The value of sub-attribute `def` in one element; `None` when absent.
fn element_field<'a>(
    element: &'a Value,
    attr: &AttributeDef,
    def: &AttributeDef,
) -> Option<&'a Value> {
    if attr.sub_attributes.is_empty() {
        // A simple multi-valued attribute: `value` is the element itself.
        return Some(element);
    }
    get_ci(element, def.name)
}

/// The definition a value-filter path names inside an element of `attr`.
fn element_sub_def<'d>(attr: &'d AttributeDef, path: &AttrPath) -> Option<&'d AttributeDef> {
    if path.urn.is_some() || path.sub_attr.is_some() {
        return None;
    }
    if attr.sub_attributes.is_empty() {
        return path.name.eq_ignore_ascii_case("value").then_some(attr);
    }
    attr.sub_attribute(&path.name)
}

/// An object member looked up case-insensitively (attribute names are case-insensitive,
/// RFC 7643 §2.1); an exact match wins.
pub(crate) fn get_ci<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let obj: &Map<String, Value> = value.as_object()?;
    obj.get(name).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Present: not null and not an empty string, array or object.
pub(crate) fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => o.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// One comparison; arrays match if any element does.
fn compare(value: &Value, def: &AttributeDef, op: CompareOp, comp: &CompValue) -> bool {
    if let Value::Array(items) = value {
        if items.is_empty() {
            return compare(&Value::Null, def, op, comp);
        }
        return items.iter().any(|v| compare(v, def, op, comp));
    }
    if matches!(comp, CompValue::Null) || value.is_null() {
        return compare_null(value, op, comp);
    }
    match def.attr_type {
        AttrType::Boolean => compare_bool(value, op, comp),
        AttrType::Integer | AttrType::Decimal => compare_number(value, op, comp),
        AttrType::DateTime => compare_datetime(value, def, op, comp),
        AttrType::Complex => false,
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            compare_string(value, def.case_exact, op, comp)
        }
    }
}

/// `eq null` matches an unassigned value, `ne null` an assigned one; nothing else matches
/// a null on either side.
fn compare_null(value: &Value, op: CompareOp, comp: &CompValue) -> bool {
    let both_null = value.is_null() && matches!(comp, CompValue::Null);
    match op {
        CompareOp::Eq => both_null,
        CompareOp::Ne => !both_null,
        _ => false,
    }
}

fn compare_bool(value: &Value, op: CompareOp, comp: &CompValue) -> bool {
    let actual = match value {
        Value::Bool(b) => *b,
        // Stored documents hold real booleans; a string here comes from a lenient client.
        Value::String(s) if s.eq_ignore_ascii_case("true") => true,
        Value::String(s) if s.eq_ignore_ascii_case("false") => false,
        _ => return op == CompareOp::Ne,
    };
    let wanted = match comp {
        CompValue::Bool(b) => *b,
        CompValue::String(s) if s.eq_ignore_ascii_case("true") => true,
        CompValue::String(s) if s.eq_ignore_ascii_case("false") => false,
        _ => return op == CompareOp::Ne,
    };
    match op {
        CompareOp::Eq => actual == wanted,
        CompareOp::Ne => actual != wanted,
        _ => false,
    }
}

fn compare_number(value: &Value, op: CompareOp, comp: &CompValue) -> bool {
    let actual = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let wanted = match comp {
        CompValue::Number(n) => n.as_f64(),
        CompValue::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (actual, wanted) {
        (Some(a), Some(w)) => ordering_matches(a.partial_cmp(&w), op),
        _ => op == CompareOp::Ne,
    }
}

fn compare_datetime(value: &Value, def: &AttributeDef, op: CompareOp, comp: &CompValue) -> bool {
    let instants = match (value, comp) {
        (Value::String(a), CompValue::String(b)) => parse_rfc3339(a).zip(parse_rfc3339(b)),
        _ => None,
    };
    match instants {
        Some((a, b)) if !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) => {
            ordering_matches(Some(a.cmp(&b)), op)
        }
        // Not both valid timestamps, or a substring operator: compare the text.
        _ => compare_string(value, def.case_exact, op, comp),
    }
}

fn compare_string(value: &Value, case_exact: bool, op: CompareOp, comp: &CompValue) -> bool {
    let Some(actual) = value.as_str() else { return op == CompareOp::Ne };
    let wanted = match comp {
        CompValue::String(s) => s.clone(),
        // An unquoted value such as `externalId eq 12345` parses as a number.
        CompValue::Number(n) => n.to_string(),
        CompValue::Bool(b) => b.to_string(),
        CompValue::Null => return false,
    };
    let (actual, wanted) = if case_exact {
        (actual.to_owned(), wanted)
    } else {
        (crate::fold::lower(actual), crate::fold::lower(&wanted))
    };
    match op {
        CompareOp::Co => actual.contains(&wanted),
        CompareOp::Sw => actual.starts_with(&wanted),
        CompareOp::Ew => actual.ends_with(&wanted),
        _ => ordering_matches(Some(actual.cmp(&wanted)), op),
    }
}

fn ordering_matches(ordering: Option<Ordering>, op: CompareOp) -> bool {
    let Some(ord) = ordering else { return op == CompareOp::Ne };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// An RFC 3339 timestamp as (seconds since the Unix epoch, nanoseconds), so that values in
/// different offsets compare chronologically. `None` if malformed.
pub(crate) fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let (nanos, rest) = fraction(&b[19..])?;
    let offset = offset_seconds(rest)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    Some((secs, nanos))
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
}

/// An optional `.fff…` fraction; returns the nanoseconds and the remaining bytes.
fn fraction(b: &[u8]) -> Option<(u32, &[u8])> {
    if b.first() != Some(&b'.') {
        return Some((0, b));
    }
    let len = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 {
        return None;
    }
    let mut nanos: u32 = 0;
    for (i, c) in b[1..=len].iter().enumerate() {
        if i < 9 {
            nanos = nanos * 10 + u32::from(c - b'0');
        }
    }
    for _ in len..9 {
        nanos *= 10;
    }
    Some((nanos, &b[1 + len..]))
}

/// `Z` or `±HH:MM`, in seconds east of UTC.
fn offset_seconds(b: &[u8]) -> Option<i64> {
    match b {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let secs = digits(&[*h1, *h2])? * 3_600 + digits(&[*m1, *m2])? * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::Tolerances;
    use crate::filter::parser::parse_filter;
    use crate::schema::{ENTERPRISE_USER_URN, ResourceKind};
    use serde_json::json;

    fn filter(text: &str) -> Filter {
        parse_filter(text, &Tolerances::lenient()).unwrap()
    }

    fn user_attr(name: &str) -> &'static AttributeDef {
        ResourceKind::User.core_schema().attribute(name).unwrap()
    }

    fn email_matches(text: &str, element: &Value) -> bool {
        element_matches(&filter(text), element, user_attr("emails"))
    }

    fn work_email() -> Value {
        json!({"value": "BJensen@Example.com", "type": "work", "primary": true})
    }

    #[test]
    fn strings_compare_case_insensitively_unless_case_exact() {
        let el = work_email();
        assert!(email_matches("value eq \"bjensen@example.com\"", &el));
        assert!(email_matches("TYPE EQ \"WORK\"", &el), "names and operators in any case");
        // groups.value is caseExact (an id).
        let groups = user_attr("groups");
        let group = json!({"value": "AbC-1", "display": "Admins"});
        assert!(element_matches(&filter("value eq \"AbC-1\""), &group, groups));
        assert!(!element_matches(&filter("value eq \"abc-1\""), &group, groups));
        assert!(!element_matches(&filter("value co \"abc\""), &group, groups));
        assert!(element_matches(&filter("display eq \"admins\""), &group, groups));
    }

    #[test]
    fn non_ascii_letters_fold_like_the_databases() {
        let r = json!({"userName": "x", "name": {"familyName": "ÖSTERGÅRD"}, "title": "ΟΔΟΣ İ"});
        let at = |text: &str| resource_matches(&filter(text), &r, ResourceKind::User);
        assert!(at("name.familyName eq \"östergård\""));
        assert!(at("name.familyName sw \"öST\""));
        // PostgreSQL's lower(): every Σ is σ (no final-sigma rule), İ is i.
        assert!(at("title eq \"οδοσ i\""));
        assert!(!at("title co \"ς\""));
        assert!(at("title ew \"Σ I\""));
    }

    #[test]
    fn substring_operators() {
        let el = work_email();
        assert!(email_matches("value co \"JENSEN@\"", &el));
        assert!(email_matches("value sw \"bjen\"", &el));
        assert!(email_matches("value ew \".COM\"", &el));
        assert!(!email_matches("value sw \"jensen\"", &el));
        assert!(!email_matches("value ew \"example\"", &el));
    }

    #[test]
    fn ne_pr_and_null() {
        let el = json!({"value": "a@b.c", "display": ""});
        assert!(email_matches("type ne \"work\"", &el), "an absent type is not work");
        assert!(!email_matches("type pr", &el));
        assert!(!email_matches("display pr", &el), "empty string is not present");
        assert!(email_matches("value pr", &el));
        assert!(email_matches("type eq null", &el));
        assert!(!email_matches("value eq null", &el));
        assert!(email_matches("value ne null", &el));
        assert!(!email_matches("type co \"w\"", &el));
    }

    #[test]
    fn booleans_compare_by_value_and_never_order() {
        let el = work_email();
        assert!(email_matches("primary eq true", &el));
        assert!(!email_matches("primary eq false", &el));
        assert!(email_matches("primary ne false", &el));
        // The parser rejects `primary gt false`; evaluation never matches it either.
        let gt = Filter::Compare(AttrPath::new("primary"), CompareOp::Gt, CompValue::Bool(false));
        assert!(!element_matches(&gt, &el, user_attr("emails")));
        assert!(email_matches("primary eq false", &json!({"value": "x", "primary": false})));
        assert!(!email_matches("primary eq true", &json!({"value": "x"})));
    }

    #[test]
    fn logical_operators_and_precedence() {
        let el = work_email();
        assert!(email_matches("type eq \"work\" and value co \"@example\"", &el));
        assert!(!email_matches("type eq \"home\" and value co \"@example\"", &el));
        assert!(email_matches("type eq \"home\" or value co \"@example\"", &el));
        assert!(email_matches("not (type eq \"home\")", &el));
        assert!(!email_matches("not (type eq \"work\")", &el));
        // a or b and c = a or (b and c)
        assert!(email_matches("type eq \"work\" or type eq \"x\" and primary eq false", &el));
        assert!(!email_matches("(type eq \"work\" or type eq \"x\") and primary eq false", &el));
    }

    #[test]
    fn unknown_sub_attributes_never_match() {
        let el = json!({"value": "a@b.c", "color": "blue"});
        assert!(!email_matches("color eq \"blue\"", &el));
        assert!(!email_matches("color pr", &el));
        assert!(!email_matches("color ne \"red\"", &el));
        assert!(!email_matches("value.x eq \"a\"", &el));
        assert!(!email_matches("urn:x:value eq \"a@b.c\"", &el));
    }

    #[test]
    fn string_ordering_is_lexicographic_and_case_folded() {
        let el = json!({"value": "m@x.org", "type": "Work"});
        assert!(email_matches("type gt \"home\"", &el));
        assert!(email_matches("type ge \"work\"", &el));
        assert!(email_matches("type le \"WORK\"", &el));
        assert!(!email_matches("type lt \"work\"", &el));
        assert!(email_matches("value lt \"n\"", &el));
    }

    #[test]
    fn date_times_compare_chronologically_across_offsets() {
        let meta = user_attr("meta");
        let el =
            json!({"lastModified": "2011-05-13T04:42:34Z", "created": "2010-01-23T04:56:22.5Z"});
        let at = |text: &str| element_matches(&filter(text), &el, meta);
        // 06:42:34+02:00 is the same instant as 04:42:34Z.
        assert!(at("lastModified eq \"2011-05-13T06:42:34+02:00\""));
        assert!(at("lastModified gt \"2011-05-13T05:42:34+02:00\""));
        assert!(!at("lastModified gt \"2011-05-13T00:00:00-05:00\""));
        assert!(at("lastModified lt \"2011-05-13T00:00:00-05:00\""));
        assert!(at("created lt \"2010-01-23T04:56:22.6Z\""));
        assert!(at("created ge \"2010-01-23T04:56:22.500Z\""));
        // 05:00+02:00 is 03:00Z: earlier, though "…T04" < "…T05" as text.
        assert!(at("lastModified gt \"2011-05-13T05:00:00+02:00\""));
        assert!(at("lastModified sw \"2011-05\""));
    }

    #[test]
    fn numbers_compare_numerically() {
        let mut number = user_attr("emails").clone();
        let integer =
            AttributeDef { name: "n", attr_type: AttrType::Integer, ..user_attr("title").clone() };
        number.sub_attributes = vec![integer];
        let el = json!({"n": 10});
        let at = |text: &str| element_matches(&filter(text), &el, &number);
        assert!(at("n gt 9"), "10 > 9 numerically, though \"10\" < \"9\" as text");
        assert!(at("n eq 10.0"));
        assert!(at("n le 10"));
        assert!(!at("n lt 10"));
        assert!(!at("n co 1"));
    }

    #[test]
    fn nested_value_paths_never_match() {
        assert!(!email_matches("emails[type eq \"work\"]", &work_email()));
    }

    #[test]
    fn rfc3339_parsing() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(parse_rfc3339("1970-01-02T00:00:01.25Z"), Some((86_401, 250_000_000)));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some((0, 0)));
        assert_eq!(parse_rfc3339("2000-03-01t00:00:00z"), Some((951_868_800, 0)));
        for bad in [
            "",
            "2011-05-13",
            "2011-13-01T00:00:00Z",
            "2011-05-13T04:42:34",
            "2011-05-13T04:42:34.Z",
            "2011-05-13T04:42:34+0200",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    fn resource() -> Value {
        json!({
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "bjensen@example.com",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {"lastModified": "2011-05-13T04:42:34Z", "resourceType": "User"},
            ENTERPRISE_USER_URN: {"employeeNumber": "701984", "manager": {"value": "m1"}}
        })
    }

    #[test]
    fn whole_resources() {
        let r = resource();
        let at = |text: &str| resource_matches(&filter(text), &r, ResourceKind::User);
        assert!(at("userName eq \"BJENSEN@example.com\""));
        assert!(at("emails co \"jensen.org\""), "emails means emails.value");
        assert!(at("emails[type eq \"work\" and value co \"@example.com\"]"));
        assert!(!at("emails[type eq \"home\" and value co \"@example.com\"]"));
        assert!(at("emails[type eq \"work\"].value eq \"bjensen@example.com\""), "Entra's form");
        assert!(at("emails.type eq \"home\""));
        assert!(at(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701984\""
        ));
        assert!(at("employeeNumber eq \"701984\""));
        assert!(at("manager.value eq \"m1\""));
        assert!(at("meta.lastModified gt \"2011-05-13T00:00:00Z\""));
        assert!(at("id eq \"2819c223-7f76-453a-919d-413861904646\""));
        assert!(!at("id eq \"2819C223-7F76-453A-919D-413861904646\""), "id is caseExact");
        assert!(at("active eq true and not (title pr)"));
        assert!(at("title eq null"));
        assert!(!at("favoriteColor eq \"blue\""));
        assert!(!at("phoneNumbers pr"));
    }
}
