//! The translation per dialect: the SQL and the bound values for the filter forms clients send
//! (RFC 7644 §3.4.2.2 and what Okta, Entra ID, authentik and PingOne send), the errors for
//! filters that cannot be answered, and a check that every translated filter is SQL SQLite runs.
//! (That PostgreSQL runs them, and that both agree with the in-memory evaluator, is checked
//! end to end by `tests/filter_differential.rs` and `tests/filters.rs`.)

use super::*;
use scim_schema::Tolerances;
use scim_schema::filter::{parse_attr_path, parse_filter};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SOME_ID: &str = "2819c223-7f76-453a-919d-413861904646";

fn sql(backend: Backend, kind: ResourceKind, filter: &str) -> SqlWhere {
    let parsed =
        parse_filter(filter, &Tolerances::strict()).unwrap_or_else(|e| panic!("{filter}: {e:?}"));
    translate(backend, kind, &parsed, 1).unwrap_or_else(|e| panic!("{filter}: {e:?}"))
}

fn user(backend: Backend, filter: &str) -> SqlWhere {
    sql(backend, ResourceKind::User, filter)
}

fn error(kind: ResourceKind, filter: &str) -> String {
    let parsed =
        parse_filter(filter, &Tolerances::strict()).unwrap_or_else(|e| panic!("{filter}: {e:?}"));
    for backend in [Backend::Postgres, Backend::Sqlite] {
        if let Ok(w) = translate(backend, kind, &parsed, 1) {
            panic!("{filter} translated on {backend:?} to {}", w.sql);
        }
    }
    let e = translate(Backend::Sqlite, kind, &parsed, 1).expect_err("refused");
    e.detail
}

fn text(s: &str) -> Bind {
    Bind::Text(s.to_owned())
}

// --- indexed columns -----------------------------------------------------------------------

#[test]
fn user_name_compares_the_folded_column_with_the_folded_value_on_both() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let w = user(backend, "userName eq \" BJensen \"");
        assert_eq!(w.sql, "r.user_name_lower = $1");
        assert_eq!(w.binds, vec![text("bjensen")]);
    }
}

#[test]
fn a_name_fragment_is_a_like_pattern_with_its_wildcards_escaped() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let w = user(backend, "userName sw \"A_b%\"");
        assert_eq!(w.sql, "r.user_name_lower LIKE $1 ESCAPE '\\'");
        assert_eq!(w.binds, vec![text("a\\_b\\%%")]);
    }
}

#[test]
fn ordering_on_text_is_bytewise_on_postgres_whatever_the_locale() {
    let w = user(Backend::Postgres, "userName gt \"m\"");
    assert_eq!(w.sql, "r.user_name_lower COLLATE \"C\" > $1");
    let w = user(Backend::Sqlite, "userName gt \"m\"");
    assert_eq!(w.sql, "r.user_name_lower > $1");
}

#[test]
fn placeholders_are_numbered_from_the_first_parameter() {
    let parsed = parse_filter("userName eq \"a\" or userName eq \"b\"", &Tolerances::strict())
        .expect("parses");
    let w = translate(Backend::Sqlite, ResourceKind::User, &parsed, 3).expect("translates");
    assert_eq!(w.sql, "(r.user_name_lower = $3 OR r.user_name_lower = $4)");
    assert_eq!(w.binds, vec![text("a"), text("b")]);
}

#[test]
fn not_turns_an_absent_value_into_false_first() {
    let w = user(Backend::Sqlite, "not (externalId eq \"x\")");
    assert_eq!(w.sql, "(NOT COALESCE(r.external_id = $1, FALSE))");
}

#[test]
fn a_boolean_column_binds_a_boolean() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let w = user(backend, "active ne false");
        assert_eq!(w.sql, "(r.active IS NULL OR r.active <> $1)");
        assert_eq!(w.binds, vec![Bind::Bool(false)]);
    }
}

#[test]
fn a_timestamp_column_binds_a_time_on_postgres_and_canonical_text_on_sqlite() {
    let filter = "meta.lastModified gt \"2011-05-13T04:42:34Z\"";
    let pg = user(Backend::Postgres, filter);
    assert_eq!(pg.sql, "r.modified_at > $1");
    assert!(matches!(pg.binds[..], [Bind::Time(_)]), "{:?}", pg.binds);
    let lite = user(Backend::Sqlite, filter);
    assert_eq!(lite.sql, "r.modified_at > $1");
    let [Bind::Text(t)] = &lite.binds[..] else { panic!("{:?}", lite.binds) };
    assert!(t.starts_with("2011-05-13T04:42:34"), "{t}");
}

#[test]
fn an_id_that_is_no_uuid_matches_nothing_instead_of_failing() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        assert_eq!(user(backend, "id eq \"not-a-uuid\"").sql, "FALSE");
        assert_eq!(user(backend, "id ne \"not-a-uuid\"").sql, "TRUE");
        let w = user(backend, &format!("id eq \"{SOME_ID}\""));
        assert_eq!(w.sql, "r.id = $1");
        assert_eq!(w.binds, vec![Bind::Id(SOME_ID.parse().expect("uuid"))]);
    }
    assert_eq!(user(Backend::Postgres, "id sw \"2819\"").sql, "(r.id)::text LIKE $1 ESCAPE '\\'");
}

#[test]
fn a_version_compares_its_number_and_a_malformed_one_matches_nothing() {
    let w = user(Backend::Sqlite, "meta.version eq \"W/\\\"3\\\"\"");
    assert_eq!(w.sql, "r.version = $1");
    assert_eq!(w.binds, vec![Bind::Int(3)]);
    assert_eq!(user(Backend::Sqlite, "meta.version eq \"three\"").sql, "FALSE");
}

#[test]
fn the_resource_type_is_a_constant() {
    let w = user(Backend::Sqlite, "meta.resourceType eq \"User\"");
    assert_eq!(w.sql, "scim_lower($1) = scim_lower($2)");
    assert_eq!(w.binds, vec![text("User"), text("User")]);
}

// --- the JSON document ---------------------------------------------------------------------

#[test]
fn a_document_attribute_is_folded_in_sql_by_each_dialect() {
    let pg = user(Backend::Postgres, "name.familyName eq \"O'Malley\"");
    assert_eq!(pg.sql, "lower((r.doc->'name'->>'familyName')) = lower($1)");
    assert_eq!(pg.binds, vec![text("O'Malley")]);
    let lite = user(Backend::Sqlite, "name.familyName eq \"O'Malley\"");
    assert_eq!(
        lite.sql,
        "scim_lower(json_extract(r.doc, '$.\"name\".\"familyName\"')) = scim_lower($1)"
    );
}

#[test]
fn an_extension_attribute_is_read_from_the_object_named_by_its_urn() {
    let filter = format!("{ENTERPRISE}:employeeNumber eq \"701984\"");
    let pg = user(Backend::Postgres, &filter);
    assert_eq!(pg.sql, format!("lower((r.doc->'{ENTERPRISE}'->>'employeeNumber')) = lower($1)"));
    let lite = user(Backend::Sqlite, &filter);
    assert_eq!(
        lite.sql,
        format!(
            "scim_lower(json_extract(r.doc, '$.\"{ENTERPRISE}\".\"employeeNumber\"')) = scim_lower($1)"
        )
    );
    // manager.value is an id: case-exact, so not folded.
    let manager = user(Backend::Sqlite, &format!("{ENTERPRISE}:manager.value eq \"x\""));
    assert_eq!(
        manager.sql,
        format!("json_extract(r.doc, '$.\"{ENTERPRISE}\".\"manager\".\"value\"') = $1")
    );
}

#[test]
fn a_case_exact_fragment_on_sqlite_avoids_its_ascii_folding_like() {
    // SQLite's LIKE ignores ASCII case, so a case-exact `co` is instr().
    let filter = format!("{ENTERPRISE}:manager.value co \"7\"");
    let lite = user(Backend::Sqlite, &filter);
    assert_eq!(
        lite.sql,
        format!("instr(json_extract(r.doc, '$.\"{ENTERPRISE}\".\"manager\".\"value\"'), $1) > 0")
    );
    let pg = user(Backend::Postgres, &filter);
    assert_eq!(pg.sql, format!("(r.doc->'{ENTERPRISE}'->'manager'->>'value') LIKE $1 ESCAPE '\\'"));
    assert_eq!(pg.binds, vec![text("%7%")]);
}

#[test]
fn presence_of_a_string_means_present_and_not_empty() {
    assert_eq!(
        user(Backend::Postgres, "title pr").sql,
        "((r.doc->>'title') IS NOT NULL AND (r.doc->>'title') <> '')"
    );
    assert_eq!(
        user(Backend::Sqlite, "externalId pr").sql,
        "(r.external_id IS NOT NULL AND r.external_id <> '')"
    );
    assert_eq!(
        user(Backend::Sqlite, "name pr").sql,
        "(json_extract(r.doc, '$.\"name\"') IS NOT NULL)"
    );
}

#[test]
fn a_multi_valued_attribute_compares_its_values_through_exists() {
    let pg = user(Backend::Postgres, "emails co \"example.com\"");
    assert_eq!(
        pg.sql,
        "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof((r.doc->'emails')) = 'array' \
         THEN (r.doc->'emails') ELSE '[]'::jsonb END) AS e(v) WHERE lower((e.v->>'value')) LIKE lower($1) ESCAPE '\\')"
    );
    let lite = user(Backend::Sqlite, "emails co \"example.com\"");
    assert_eq!(
        lite.sql,
        "EXISTS (SELECT 1 FROM json_each(r.doc, '$.\"emails\"') AS e WHERE \
         scim_lower(json_extract(e.value, '$.\"value\"')) LIKE scim_lower($1) ESCAPE '\\')"
    );
}

#[test]
fn ne_on_a_sub_attribute_also_matches_when_no_element_has_it() {
    let w = user(Backend::Sqlite, "emails.type ne \"work\"");
    let from = "json_each(r.doc, '$.\"emails\"') AS e";
    let raw = "json_extract(e.value, '$.\"type\"')";
    let lhs = format!("scim_lower({raw})");
    assert_eq!(
        w.sql,
        format!(
            "(NOT EXISTS (SELECT 1 FROM {from} WHERE {raw} IS NOT NULL) \
             OR EXISTS (SELECT 1 FROM {from} WHERE {raw} IS NOT NULL AND ({lhs} IS NULL OR {lhs} <> scim_lower($1))))"
        )
    );
}

#[test]
fn a_value_filter_is_one_exists_over_the_elements() {
    let w = user(Backend::Postgres, "emails[type eq \"work\" and value co \"@example.com\"]");
    assert!(w.sql.starts_with("EXISTS (SELECT 1 FROM jsonb_array_elements("), "{}", w.sql);
    assert!(
        w.sql.ends_with(
            "WHERE (lower((e.v->>'type')) = lower($1) AND lower((e.v->>'value')) LIKE lower($2) ESCAPE '\\'))"
        ),
        "{}",
        w.sql
    );
    assert_eq!(w.binds, vec![text("work"), text("%@example.com%")]);
}

#[test]
fn a_value_filter_on_a_single_complex_attribute_reads_its_sub_attributes() {
    assert_eq!(
        user(Backend::Sqlite, "name[givenName eq \"Ana\"]").sql,
        user(Backend::Sqlite, "name.givenName eq \"Ana\"").sql
    );
}

#[test]
fn a_boolean_inside_the_document_is_cast_on_postgres() {
    let w = user(Backend::Postgres, "emails[primary eq true]");
    assert!(w.sql.contains("((e.v->>'primary'))::boolean = $1"), "{}", w.sql);
    let w = user(Backend::Sqlite, "emails[primary eq true]");
    assert!(w.sql.contains("json_extract(e.value, '$.\"primary\"') = $1"), "{}", w.sql);
}

// --- memberships ---------------------------------------------------------------------------

#[test]
fn a_group_member_filter_is_a_subquery_over_group_members() {
    let w = sql(Backend::Sqlite, ResourceKind::Group, &format!("members[value eq \"{SOME_ID}\"]"));
    assert_eq!(
        w.sql,
        "EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = r.id AND m.member_id = $1)"
    );
    let w = sql(Backend::Postgres, ResourceKind::Group, "members pr");
    assert_eq!(w.sql, "EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = r.id )");
}

#[test]
fn a_users_groups_join_the_group_for_its_display_name() {
    let w = user(Backend::Postgres, "groups[display eq \"Admins\"]");
    assert_eq!(
        w.sql,
        "EXISTS (SELECT 1 FROM group_members m JOIN groups gg ON gg.id = m.group_id \
         WHERE m.member_id = r.id AND lower(gg.display_name) = lower($1))"
    );
}

#[test]
fn a_patch_member_filter_is_a_condition_over_one_membership_row() {
    let f = parse_filter("type eq \"User\" and value eq \"not-a-uuid\"", &Tolerances::strict())
        .expect("parses");
    let w = translate_members(Backend::Sqlite, &f, 2).expect("translates");
    assert_eq!(w.sql, "(scim_lower(m.member_type) = scim_lower($2) AND FALSE)");
    let unknown = parse_filter("manager eq \"x\"", &Tolerances::strict()).expect("parses");
    let e = translate_members(Backend::Sqlite, &unknown, 2).expect_err("refused");
    assert!(e.detail.contains("manager"), "{}", e.detail);
}

// --- errors --------------------------------------------------------------------------------

#[test]
fn filters_that_cannot_be_answered_are_refused_with_a_reason() {
    let user = ResourceKind::User;
    assert!(error(user, "shoeSize eq \"9\"").contains("unknown attribute \"shoeSize\""));
    assert!(error(user, "name eq \"x\"").contains("complex attribute"));
    assert!(error(user, "active gt \"true\"").contains("not defined for boolean"));
    assert!(error(user, "active eq \"maybe\"").contains("is a boolean"));
    assert!(
        error(user, "meta.lastModified sw \"2011-05-13T04:42:34Z\"")
            .contains("not defined for dateTime")
    );
    assert!(error(user, "meta.lastModified gt \"yesterday\"").contains("not an RFC 3339"));
    assert!(error(user, "meta.location eq \"x\"").contains("meta.location is not supported"));
    assert!(error(user, "userName[value eq \"x\"]").contains("cannot take a [filter]"));
    assert!(error(user, "emails[shoe eq \"x\"]").contains("no sub-attribute \"shoe\""));
    assert!(error(user, "groups.shoe eq \"x\"").contains("shoe"));
}

// --- sorting -------------------------------------------------------------------------------

#[test]
fn sorting_uses_the_column_or_the_folded_value_or_the_primary_element() {
    let sort = |backend, path: &str| {
        let p = parse_attr_path(path).expect("path");
        sort_expression(backend, ResourceKind::User, &p)
    };
    assert_eq!(sort(Backend::Sqlite, "userName").expect("sorts"), "r.user_name_lower");
    assert_eq!(
        sort(Backend::Postgres, "name.familyName").expect("sorts"),
        "lower((r.doc->'name'->>'familyName'))"
    );
    assert_eq!(
        sort(Backend::Postgres, "emails").expect("sorts"),
        "(SELECT lower(e.v->>'value') FROM jsonb_array_elements(CASE WHEN jsonb_typeof((r.doc->'emails')) = 'array' \
         THEN (r.doc->'emails') ELSE '[]'::jsonb END) WITH ORDINALITY AS e(v, n) \
         ORDER BY COALESCE((e.v->>'primary')::boolean, FALSE) DESC, e.n LIMIT 1)"
    );
    assert_eq!(
        sort(Backend::Sqlite, "emails.value").expect("sorts"),
        "(SELECT scim_lower(json_extract(e.value, '$.\"value\"')) FROM json_each(r.doc, '$.\"emails\"') AS e \
         ORDER BY COALESCE(json_extract(e.value, '$.primary'), 0) DESC, e.key LIMIT 1)"
    );
    assert_eq!(sort(Backend::Sqlite, "meta.resourceType").expect("sorts"), "r.seq");
    for bad in ["name", "groups", "shoeSize"] {
        let e = sort(Backend::Sqlite, bad).expect_err("refused");
        assert!(e.detail.contains("cannot sort by"), "{bad}: {}", e.detail);
    }
}

// --- the SQL runs --------------------------------------------------------------------------

/// Filters of every form above; each must translate to SQL that SQLite prepares and runs
/// against the real schema.
const CORPUS: &[(ResourceKind, &str)] = &[
    (ResourceKind::User, "userName eq \"bjensen\""),
    (ResourceKind::User, "userName ew \"sen\" or userName gt \"m\""),
    (ResourceKind::User, "not (userName eq \"a\") or (title sw \"B\" and active eq true)"),
    (ResourceKind::User, "name.familyName co \"O'Malley\""),
    (ResourceKind::User, "name[givenName eq \"x\"] and name pr"),
    (ResourceKind::User, "title eq null or title ne \"x\""),
    (ResourceKind::User, "emails co \"example.com\" and emails.type ne \"work\""),
    (ResourceKind::User, "emails[type eq \"work\" and value co \"@example.com\"]"),
    (ResourceKind::User, "emails[primary eq true] and emails.value sw \"a_b%\""),
    (ResourceKind::User, "meta.lastModified gt \"2011-05-13T04:42:34Z\""),
    (ResourceKind::User, "meta.created le \"2011-05-13T04:42:34+02:00\""),
    (ResourceKind::User, "meta.version ge \"W/\\\"3\\\"\" and meta.resourceType eq \"User\""),
    (ResourceKind::User, "id eq \"2819c223-7f76-453a-919d-413861904646\" or id sw \"28\""),
    (ResourceKind::User, "externalId pr and x509Certificates pr"),
    (
        ResourceKind::User,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber co \"7\"",
    ),
    (
        ResourceKind::User,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"x\"",
    ),
    (ResourceKind::User, "groups[display eq \"Admins\"] or groups.value eq \"x\""),
    (ResourceKind::Group, "displayName eq \"Admins\" and members pr"),
    (ResourceKind::Group, "members[type eq \"Group\"] or members.display co \"an\""),
];

#[tokio::test]
async fn every_translated_filter_runs_on_sqlite() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use std::str::FromStr;
    let options = SqliteConnectOptions::from_str("sqlite::memory:").expect("options");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _meta| Box::pin(sqlite_fold::register(conn)))
        .connect_with(options)
        .await
        .expect("in-memory SQLite");
    sqlx::migrate!("../migrations/sqlite").run(&pool).await.expect("migrations");
    for (kind, filter) in CORPUS {
        let w = sql(Backend::Sqlite, *kind, filter);
        let table = match kind {
            ResourceKind::User => "users",
            ResourceKind::Group => "groups",
        };
        let query = format!("SELECT count(*) FROM {table} r WHERE {}", w.sql);
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query.clone()));
        for b in w.binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Bool(v) => q.bind(v),
                Bind::Int(v) => q.bind(v),
                Bind::Float(v) => q.bind(v),
                Bind::Time(t) => q.bind(crate::store::format_timestamp(&t)),
                Bind::Id(id) => q.bind(id.to_string()),
                other => panic!("{filter}: the translator bound {other:?}"),
            };
        }
        let count = q.fetch_one(&pool).await.unwrap_or_else(|e| panic!("{filter}: {query}: {e}"));
        assert_eq!(count, 0, "{filter}");
    }
}

/// The same translation for the same filter, whichever dialect: a dialect only changes how a
/// value is read, never which comparisons are made (same number of bound values).
#[test]
fn both_dialects_bind_the_same_values_for_the_corpus() {
    for (kind, filter) in CORPUS {
        let pg = sql(Backend::Postgres, *kind, filter);
        let lite = sql(Backend::Sqlite, *kind, filter);
        assert_eq!(pg.binds.len(), lite.binds.len(), "{filter}");
    }
}
