//! Differential tests of the filter and PATCH-path parser against the `scim_v2` crate
//! (engineering-style §7.1): the same inputs go to both parsers; both must accept or both
//! reject, and accepted inputs must give the same tree once both are normalised (`scim_v2`'s
//! `and`/`or` are n-ary, ours binary and left-associative, so both are flattened).
//!
//! Intended differences are listed, with the reason, in `WE_ACCEPT_THEY_REJECT` and
//! `THEY_ACCEPT_WE_REJECT`; those tests fail if the difference ever goes away, so the lists
//! stay true.
//!
//! All inputs here are strict-mode (quoted values): unquoted values are a scimbridge tolerance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use scim_schema::Tolerances;
use scim_schema::filter::{AttrPath, CompValue, Filter, PatchPath};
use scim_schema::filter::{CompareOp, parse_filter, parse_patch_path};
use scim_v2::filter as v2;
use serde_json::Value;

/// A parser-neutral filter tree: paths and operators as canonical text, values as JSON, and
/// `and`/`or` flattened.
#[derive(Debug, Clone, PartialEq)]
enum Norm {
    Present(String),
    Compare(String, String, Value),
    ValuePath(String, Box<Norm>),
    Not(Box<Norm>),
    And(Vec<Norm>),
    Or(Vec<Norm>),
}

/// Builds an n-ary node, merging children of the same kind (`a and (b and c)` is
/// `and[a, b, c]`, as `scim_v2` builds it).
fn nary(is_and: bool, children: impl IntoIterator<Item = Norm>) -> Norm {
    let mut items = Vec::new();
    for child in children {
        match (is_and, child) {
            (true, Norm::And(more)) | (false, Norm::Or(more)) => items.extend(more),
            (_, other) => items.push(other),
        }
    }
    if is_and { Norm::And(items) } else { Norm::Or(items) }
}

fn our_value(v: &CompValue) -> Value {
    match v {
        CompValue::Null => Value::Null,
        CompValue::Bool(b) => Value::Bool(*b),
        CompValue::Number(n) => Value::Number(n.clone()),
        CompValue::String(s) => Value::String(s.clone()),
    }
}

fn ours(f: &Filter) -> Norm {
    match f {
        Filter::Present(p) => Norm::Present(p.to_string()),
        Filter::Compare(p, op, v) => Norm::Compare(p.to_string(), op.to_string(), our_value(v)),
        Filter::ValuePath(p, inner) => Norm::ValuePath(p.to_string(), Box::new(ours(inner))),
        Filter::Not(inner) => Norm::Not(Box::new(ours(inner))),
        Filter::And(l, r) => nary(true, [ours(l), ours(r)]),
        Filter::Or(l, r) => nary(false, [ours(l), ours(r)]),
    }
}

fn their_value(v: &v2::CompValue) -> Value {
    match v {
        v2::CompValue::False => Value::Bool(false),
        v2::CompValue::True => Value::Bool(true),
        v2::CompValue::Null => Value::Null,
        v2::CompValue::Number(n) => Value::Number(n.clone()),
        v2::CompValue::Str(s) => Value::String(s.clone()),
    }
}

fn their_attr_exp(e: &v2::AttrExp) -> Norm {
    match e {
        v2::AttrExp::Present(p) => Norm::Present(p.to_string()),
        v2::AttrExp::Comparison(p, op, v) => {
            Norm::Compare(p.to_string(), op.to_string(), their_value(v))
        }
    }
}

fn theirs(f: &v2::Filter) -> Norm {
    match f {
        v2::Filter::Attr(e) => their_attr_exp(e),
        v2::Filter::ValuePath(vp) => {
            Norm::ValuePath(vp.attr.to_string(), Box::new(their_val_filter(&vp.filter)))
        }
        v2::Filter::Not(inner) => Norm::Not(Box::new(theirs(inner))),
        v2::Filter::And(items) => nary(true, items.iter().map(theirs)),
        v2::Filter::Or(items) => nary(false, items.iter().map(theirs)),
    }
}

fn their_val_filter(f: &v2::ValFilter) -> Norm {
    match f {
        v2::ValFilter::Attr(e) => their_attr_exp(e),
        v2::ValFilter::Not(inner) => Norm::Not(Box::new(their_val_filter(inner))),
        v2::ValFilter::And(items) => nary(true, items.iter().map(their_val_filter)),
        v2::ValFilter::Or(items) => nary(false, items.iter().map(their_val_filter)),
    }
}

/// A PATCH path as (attribute, value filter, sub-attribute after the filter).
type NormPath = (String, Option<Norm>, Option<String>);

fn our_path(p: &PatchPath) -> NormPath {
    (p.attr.to_string(), p.filter.as_ref().map(ours), p.filter_sub_attr.clone())
}

fn their_path(p: &v2::PatchPath) -> NormPath {
    match p {
        v2::PatchPath::Attr(a) => (a.to_string(), None, None),
        v2::PatchPath::Value(vp) => {
            (vp.attr.to_string(), Some(their_val_filter(&vp.filter)), vp.sub_attr.clone())
        }
    }
}

fn ours_parse(input: &str) -> Option<Norm> {
    parse_filter(input, &Tolerances::strict()).ok().map(|f| ours(&f))
}

/// With every tolerance on, for the forms we accept beyond the RFC (Entra's `].value eq`).
fn ours_parse_lenient(input: &str) -> Option<Norm> {
    parse_filter(input, &Tolerances::lenient()).ok().map(|f| ours(&f))
}

fn theirs_parse(input: &str) -> Option<Norm> {
    input.parse::<v2::Filter>().ok().map(|f| theirs(&f))
}

fn ours_parse_path(input: &str) -> Option<NormPath> {
    parse_patch_path(input, &Tolerances::strict()).ok().map(|p| our_path(&p))
}

fn theirs_parse_path(input: &str) -> Option<NormPath> {
    input.parse::<v2::PatchPath>().ok().map(|p| their_path(&p))
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

/// Both parsers accept these, with the same tree.
const BOTH_ACCEPT: &[&str] = &[
    // RFC 7644 §3.4.2.2 examples
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
    // Case
    r#"userName Eq "john""#,
    r#"Username eq "john""#,
    r#"USERNAME EQ "john""#,
    r#"username eq "x" AND active eq true"#,
    r#"title PR OR userType NE "Intern""#,
    r#"NOT (title pr)"#,
    // IdP corpus (quoted forms)
    r#"userName eq "test.user@okta.local""#,
    r#"displayName eq "Group One""#,
    r#"id eq "2819c223-7f76-453a-919d-413861904646""#,
    r#"userName Eq "a@b""#,
    r#"username Eq "a@b""#,
    r#"email Co "x""#,
    // Precedence and grouping
    r#"a eq 1 or b eq 2 and c eq 3"#,
    r#"a eq 1 and b eq 2 or c eq 3"#,
    r#"a pr and b pr or c pr and d pr"#,
    r#"(a pr or b pr) and c pr"#,
    r#"a pr and (b pr or c pr) and d pr"#,
    r#"a pr or (b pr or c pr)"#,
    r#"a pr and (b pr and c pr)"#,
    r#"((a pr))"#,
    r#"not (a pr) and b pr"#,
    r#"not (not (a pr))"#,
    r#"( a pr )"#,
    // Values
    r#"active eq true"#,
    r#"active eq false"#,
    r#"manager eq null"#,
    r#"age gt 5"#,
    r#"x eq -1.5e3"#,
    r#"x eq 0"#,
    r#"x eq 1E5"#,
    r#"x eq 18446744073709551615"#,
    r#"x eq """#,
    r#"a eq "with \"quote\"""#,
    r#"a eq "back\\slash and \/ slash""#,
    r#"a eq "tab\tx\n""#,
    r#"a eq "caf\u00e9""#,
    r#"a eq "\ud83d\ude00""#,
    r#"a eq "é😀""#,
    r#"a eq "(not) [a pr] and or""#,
    // URNs
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "123""#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
    // Value paths
    r#"emails[not (type eq "work")]"#,
    r#"emails[(type eq "work")]"#,
    r#"emails[type eq "work" or primary eq true] and userName sw "a""#,
    r#"not (emails[type eq "work"])"#,
    // Whitespace
    r#"  userName eq "x"  "#,
    r#"userName   eq   "x""#,
    "userName\teq\t\"x\"",
];

/// Both parsers reject these.
const BOTH_REJECT: &[&str] = &[
    "",
    "   ",
    "userName",
    "userName eq",
    "userName eq ",
    r#"userName eq "x"#,
    r#"(userName eq "x""#,
    r#"userName eq "x")"#,
    r#"emails[type eq "work""#,
    r#"emails type eq "work"]"#,
    r#"emails[type eq "work"]]"#,
    r#"userName eq "x" and"#,
    r#"userName eq "x" or"#,
    r#"and userName eq "x""#,
    r#"userName xx "x""#,
    r#"userName eq 'x'"#,
    r#"title pr "x""#,
    r#"1abc eq "x""#,
    r#"name.a.b eq "x""#,
    r#"name..x eq "x""#,
    r#"name. eq "x""#,
    r#"emails[type eq "work"][value pr]"#,
    r#"emails[value[type pr]]"#,
    r#"not a pr"#,
    r#"a eq 01"#,
    r#"a eq 1."#,
    r#"a eq +1"#,
    r#"a eq .5"#,
    r#"a eq 1e400"#,
    r#"a eq true1"#,
    r#"a eq "\x""#,
    r#"a eq "\u12""#,
    r#"a eq "x"and b pr"#,
    r#"a sw"x""#,
    r#"()"#,
    r#"userName eq "a" and or b eq "c""#,
    r#"userName eq "x" foo"#,
    // Unquoted values are a tolerance, off in strict mode.
    r#"externalId eq jyoung"#,
    r#"userName eq x@y"#,
    r#"emails[type eq "work"].value"#,
];

/// Intended: we accept these, `scim_v2` does not.
const WE_ACCEPT_THEY_REJECT: &[(&str, &str)] = &[
    (r#"emails[type eq "work"].value eq "x""#, "Entra's filter form (reference §2.6 item 15)"),
    (r#"emails[type eq "work"].value pr"#, "Entra's filter form with pr"),
    (r#"not(title pr)"#, "Figure 1 has no SP between not and '('"),
    (r#"(a pr)and(b pr)"#, "and/or may touch a bracket"),
    (r#"members[$ref eq "x"]"#, "$ref is an attribute name (RFC 7643 §2.1)"),
    (r#"$ref pr"#, "$ref is an attribute name (RFC 7643 §2.1)"),
    (r#"active eq TRUE"#, "true/false/null in any case"),
    (r#"manager eq Null"#, "true/false/null in any case"),
];

/// Intended: `scim_v2` accepts these, we do not.
const THEY_ACCEPT_WE_REJECT: &[(&str, &str)] = &[
    (r#"active gt true"#, "RFC 7644 §3.4.2.2: gt/ge/lt/le on booleans is invalidFilter"),
    (r#"x le null"#, "ordering against null is meaningless"),
    (r#"a:b:c pr"#, "only a urn: prefix qualifies an attribute"),
    (r#"emails.value[type eq "work"]"#, "a value path's attribute has no sub-attribute"),
    ("userName\u{a0}eq \"x\"", "only ASCII whitespace separates tokens"),
];

#[test]
fn both_accept_with_the_same_tree() {
    for input in BOTH_ACCEPT {
        let ours = ours_parse(input).unwrap_or_else(|| panic!("we reject {input:?}"));
        let theirs = theirs_parse(input).unwrap_or_else(|| panic!("scim_v2 rejects {input:?}"));
        assert_eq!(ours, theirs, "{input:?}");
    }
}

#[test]
fn both_reject() {
    for input in BOTH_REJECT {
        assert_eq!(ours_parse(input), None, "we accept {input:?}");
        assert_eq!(theirs_parse(input), None, "scim_v2 accepts {input:?}");
    }
}

#[test]
fn intended_differences_still_hold() {
    for (input, why) in WE_ACCEPT_THEY_REJECT {
        assert!(ours_parse_lenient(input).is_some(), "we reject {input:?} ({why})");
        assert!(theirs_parse(input).is_none(), "scim_v2 now accepts {input:?} ({why})");
    }
    for (input, why) in THEY_ACCEPT_WE_REJECT {
        assert!(ours_parse(input).is_none(), "we accept {input:?} ({why})");
        assert!(theirs_parse(input).is_some(), "scim_v2 now rejects {input:?} ({why})");
    }
}

/// Our canonical text parses in `scim_v2` to the same tree: the Display output is plain RFC.
#[test]
fn our_display_is_understood_by_scim_v2() {
    let inputs = BOTH_ACCEPT.iter().copied().chain(WE_ACCEPT_THEY_REJECT.iter().map(|(i, _)| *i));
    for input in inputs {
        let Ok(filter) = parse_filter(input, &Tolerances::lenient()) else { continue };
        let text = filter.to_string();
        if text.contains('$') {
            continue; // `$ref`: see WE_ACCEPT_THEY_REJECT
        }
        assert_eq!(theirs_parse(&text), Some(ours(&filter)), "{input:?} displayed as {text:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Generated filters
// ---------------------------------------------------------------------------------------------

/// xorshift64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn parse_path_text(text: &str) -> AttrPath {
    scim_schema::filter::parse_attr_path(text).unwrap()
}

fn gen_value(rng: &mut Rng, op: CompareOp) -> CompValue {
    const STRINGS: &[&str] = &[
        "",
        "bjensen",
        "with \"quotes\"",
        "back\\slash",
        "é😀",
        "tab\there\nnewline",
        "ctl\u{1}\u{1f}",
        "(paren) [br] and or not",
    ];
    let ordering = matches!(op, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le);
    match rng.next() % 8 {
        0 if !ordering => CompValue::Bool(rng.next().is_multiple_of(2)),
        1 if !ordering => CompValue::Null,
        2 => CompValue::Number(serde_json::Number::from(rng.pick(&[0i64, -5, 42, i64::MAX]))),
        3 => CompValue::Number(serde_json::Number::from(u64::MAX)),
        4 => CompValue::Number(
            serde_json::Number::from_f64(rng.pick(&[1.5, -2.5e10, 1e-7])).unwrap(),
        ),
        _ => CompValue::String(rng.pick(STRINGS).to_owned()),
    }
}

fn gen_filter(rng: &mut Rng, depth: u32, in_brackets: bool) -> Filter {
    const PATHS: &[&str] = &[
        "userName",
        "name.givenName",
        "emails",
        "x-y_z9",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    ];
    const SUBS: &[&str] = &["type", "value", "primary", "display"];
    const OPS: &[CompareOp] = &[
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Lt,
        CompareOp::Ge,
        CompareOp::Le,
    ];
    let text: &str = if in_brackets { rng.pick(SUBS) } else { rng.pick(PATHS) };
    let path = parse_path_text(text);
    let choice = if depth == 0 { rng.next() % 2 } else { rng.next() % 6 };
    let sub = |rng: &mut Rng| Box::new(gen_filter(rng, depth.saturating_sub(1), in_brackets));
    match choice {
        0 => Filter::Present(path),
        2 if !in_brackets => {
            let name = AttrPath::new(rng.pick(&["emails", "addresses", "members"]));
            Filter::ValuePath(name, Box::new(gen_filter(rng, depth - 1, true)))
        }
        3 => Filter::Not(sub(rng)),
        4 => Filter::And(sub(rng), sub(rng)),
        5 => Filter::Or(sub(rng), sub(rng)),
        _ => {
            let op = rng.pick(OPS);
            Filter::Compare(path, op, gen_value(rng, op))
        }
    }
}

/// Random trees, displayed: we read back the same tree, `scim_v2` the same normalised tree.
#[test]
fn generated_filters_agree() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..3_000 {
        let depth = (rng.next() % 5) as u32;
        let filter = gen_filter(&mut rng, depth, false);
        let text = filter.to_string();
        let back =
            parse_filter(&text, &Tolerances::strict()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(back, filter, "{text:?}");
        assert_eq!(theirs_parse(&text), Some(ours(&filter)), "{text:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH paths
// ---------------------------------------------------------------------------------------------

const PATHS_BOTH_ACCEPT: &[&str] = &[
    "members",
    "userName",
    "name.familyName",
    r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
    r#"emails[type eq "work"]"#,
    r#"emails[type eq "work"].value"#,
    r#"addresses[type eq "work" and primary eq true].formatted"#,
    r#"emails[not (type eq "work") or value co "x"].display"#,
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    // A bare extension URN: both split it at the last colon.
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"work\"].value",
];

const PATHS_BOTH_REJECT: &[&str] = &[
    "",
    "name.",
    ".name",
    "name.a.b",
    "1name",
    "emails[",
    r#"emails[type eq "work""#,
    r#"emails[type eq "work"]."#,
    r#"emails[type eq "work"].value.display"#,
    r#"emails[type eq "work"]x"#,
    r#"emails[value[type pr]]"#,
    r#"emails[type eq work]"#,
    "a b",
    "members]",
];

#[test]
fn patch_paths_agree() {
    for input in PATHS_BOTH_ACCEPT {
        let ours = ours_parse_path(input).unwrap_or_else(|| panic!("we reject {input:?}"));
        let theirs =
            theirs_parse_path(input).unwrap_or_else(|| panic!("scim_v2 rejects {input:?}"));
        assert_eq!(ours, theirs, "{input:?}");
    }
    for input in PATHS_BOTH_REJECT {
        assert_eq!(ours_parse_path(input), None, "we accept {input:?}");
        assert_eq!(theirs_parse_path(input), None, "scim_v2 accepts {input:?}");
    }
}

#[test]
fn patch_path_intended_differences_still_hold() {
    // We accept `$ref` as a name; scim_v2's lexer has no `$`.
    assert!(ours_parse_path("members.$ref").is_some());
    assert!(theirs_parse_path("members.$ref").is_none());
    // scim_v2 accepts a sub-attribute before the filter; it designates nothing.
    assert!(ours_parse_path(r#"emails.value[type eq "work"]"#).is_none());
    assert!(theirs_parse_path(r#"emails.value[type eq "work"]"#).is_some());
}
