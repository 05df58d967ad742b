//! The statements of SCIM resource reads and writes that are more than a line of SQL, and how
//! an aggregated relation column becomes a resource's `members` or `groups`. Pure functions:
//! [`super::steps`] runs them.

use super::super::backend::{Bind, Dialect};
use crate::store::{
    GroupRefOut, JournalAction, Load, MemberOut, StoreError, StoredResource, Timestamp, WriteCtx,
};
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use uuid::Uuid;

pub fn table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    }
}

/// One SELECT of resources with the relations `load` asks for, aggregated as JSON per row —
/// one statement, one round trip. The relation subquery runs for every row the statement
/// reads, so ask for relations only where the scan stops at the page (no OFFSET).
pub struct Selection<'a> {
    pub kind: ResourceKind,
    pub where_sql: &'a str,
    pub binds: Vec<Bind>,
    pub order: &'a str,
    pub limit: i64,
    pub offset: i64,
    pub load: Load,
}

/// The SELECT of a [`Selection`] (the same text on both backends) and its binds; `relation`
/// is the backend's relation column (`, (…) AS rel`) or empty.
///
/// A first page (offset 0: every GET by id, every filtered lookup an IdP makes) has its limit
/// written into the statement. With LIMIT and OFFSET as parameters, PostgreSQL cannot cost the
/// prepared statement's generic plan and plans it again on every execution, which was most of
/// the database's work per request; with them written in it settles on the generic plan. Later
/// pages bind them as the last two parameters, so that random offsets do not make a new
/// prepared statement each.
pub fn select_statement(s: Selection<'_>, relation: &str) -> (String, Vec<Bind>) {
    let mut binds = s.binds;
    let paging = if s.offset == 0 {
        format!("LIMIT {}", s.limit)
    } else {
        let n = binds.len() + 1;
        binds.extend([Bind::Int(s.limit), Bind::Int(s.offset)]);
        format!("LIMIT ${n} OFFSET ${}", n + 1)
    };
    let sql = format!(
        "SELECT r.id, r.doc, r.version, r.created_at, r.modified_at{relation} FROM {} r \
         WHERE {} ORDER BY {} {paging}",
        table(s.kind),
        s.where_sql,
        s.order,
    );
    (sql, binds)
}

pub fn count_sql(kind: ResourceKind, where_sql: &str) -> String {
    format!("SELECT COUNT(*) AS n FROM {} r WHERE {where_sql}", table(kind))
}

/// The relation column each backend aggregates: a group's members as `[[id, type, display], …]`,
/// a user's groups as `[[id, displayName], …]`.
pub fn wants_relation(kind: ResourceKind, load: Load) -> bool {
    match kind {
        ResourceKind::Group => load.members,
        ResourceKind::User => load.groups,
    }
}

/// Puts an aggregated relation (see [`wants_relation`]) on its resource.
pub fn attach_relation(res: &mut StoredResource, rel: Option<Value>) -> Result<(), StoreError> {
    let items = match rel {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(StoreError::Corrupt(format!("relation is not an array: {other}")));
        }
    };
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match res.kind {
        ResourceKind::Group => {
            let mut members = Vec::with_capacity(items.len());
            for item in &items {
                let value = text(&item[0])
                    .ok_or_else(|| StoreError::Corrupt(format!("bad member {item}")))?;
                let member_type =
                    super::columns::member_type_of(item[1].as_str().unwrap_or("User"));
                members.push(MemberOut { value, member_type, display: text(&item[2]) });
            }
            res.members = Some(members);
        }
        ResourceKind::User => {
            let mut groups = Vec::with_capacity(items.len());
            for item in &items {
                let value = text(&item[0])
                    .ok_or_else(|| StoreError::Corrupt(format!("bad group {item}")))?;
                groups.push(GroupRefOut { value, display: text(&item[1]).unwrap_or_default() });
            }
            res.groups = Some(groups);
        }
    }
    Ok(())
}

/// A resource another source may take over (see
/// [`Steps::find_adoptable`](super::steps::Steps::find_adoptable)).
pub struct Adoptable {
    pub id: Uuid,
    /// The name of the source that owns it now.
    pub from_source: String,
    pub doc: Value,
}

/// The SELECT behind [`Steps::find_adoptable`](super::steps::Steps::find_adoptable): `$1` the
/// source names (`sources_in`: the dialect's test of `s.name` against them), `$2` the lower-cased name, `$3` the externalId. A name match wins
/// over an externalId match; `lock` is appended (PostgreSQL's `FOR UPDATE OF r`).
pub fn adoptable_sql(kind: ResourceKind, sources_in: &str, lock: &str) -> String {
    let name_lower = match kind {
        ResourceKind::User => "r.user_name_lower",
        ResourceKind::Group => "r.display_name_lower",
    };
    format!(
        "SELECT r.id, s.name AS source, r.doc FROM {} r JOIN sources s ON s.id = r.source_id \
         WHERE {sources_in} AND ({name_lower} = $2 OR r.external_id = $3) \
         ORDER BY CASE WHEN {name_lower} = $2 THEN 0 ELSE 1 END, r.seq LIMIT 1{lock}",
        table(kind)
    )
}

/// The DELETE behind
/// [`Steps::delete_members_where`](super::steps::Steps::delete_members_where), the same text on
/// both backends: `$1` the group, `cond` a `members[…]` filter translated over `group_members m`. RETURNING names
/// the column unqualified: SQLite resolves no table alias there (`m.member_id` failed every
/// such PATCH on SQLite with a 500).
pub fn delete_members_where_sql(cond: &str) -> String {
    format!("DELETE FROM group_members AS m WHERE m.group_id = $1 AND {cond} RETURNING member_id")
}

/// A journal row to append.
pub struct JournalRow<'a> {
    pub ctx: &'a WriteCtx,
    pub kind: ResourceKind,
    pub id: Uuid,
    pub action: JournalAction,
    pub detail: Option<Value>,
    pub at: Timestamp,
}

/// The relation column of a [`Selection`]: members (with their display names) or groups,
/// aggregated per row as JSON arrays.
pub fn relation_sql(dialect: Dialect, kind: ResourceKind) -> String {
    match kind {
        ResourceKind::Group => format!(
            ", (SELECT {} \
               FROM group_members m \
               LEFT JOIN users u ON m.member_type = 'User' AND u.id = m.member_id \
               LEFT JOIN groups g ON m.member_type = 'Group' AND g.id = m.member_id \
               WHERE m.group_id = r.id) AS rel",
            dialect.json_agg_arrays(
                "m.member_id, m.member_type, COALESCE(u.display_name, u.user_name, g.display_name)",
                ""
            )
        ),
        ResourceKind::User => format!(
            ", (SELECT {} \
               FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.member_id = r.id) AS rel",
            dialect.json_agg_arrays("g.id, g.display_name", " ORDER BY g.seq")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(offset: i64) -> Selection<'static> {
        Selection {
            kind: ResourceKind::User,
            where_sql: "r.user_name_lower = $1",
            binds: vec![Bind::Text("a@example.com".into())],
            order: "r.seq",
            limit: 100,
            offset,
            load: Load::default(),
        }
    }

    #[test]
    fn a_first_page_has_its_limit_written_in_and_later_pages_bind_it() {
        let (sql, binds) = select_statement(selection(0), "");
        assert!(sql.ends_with("ORDER BY r.seq LIMIT 100"), "{sql}");
        assert_eq!(binds.len(), 1);
        let (sql, binds) = select_statement(selection(200), "");
        assert!(sql.ends_with("ORDER BY r.seq LIMIT $2 OFFSET $3"), "{sql}");
        assert!(matches!(binds[1..], [Bind::Int(100), Bind::Int(200)]), "{binds:?}");
    }
}
