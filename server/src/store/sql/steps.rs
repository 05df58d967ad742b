//! The steps SCIM resource operations are made of (lock a row, insert, update, change members,
//! journal), each written once over a connection or a transaction. The operations themselves
//! are in [`super::resources`].

use super::columns::{Indexed, member_type_str};
use super::resource_sql::{
    Adoptable, JournalRow, Selection, adoptable_sql, attach_relation, count_sql,
    delete_members_where_sql, relation_sql, select_statement, table, wants_relation,
};
use crate::store::backend::{Bind, Conn, Dialect, RowExt, Tx, binds};
use crate::store::filter_sql;
use crate::store::{Load, StoreError, StoredResource, Timestamp};
use scim_schema::filter::Filter;
use scim_schema::resource::MemberType;
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// A connection (reads) or a transaction (writes) with the dialect its SQL is spelled in.
pub struct Steps<C> {
    conn: C,
    dialect: Dialect,
}

impl<C: Conn> Steps<C> {
    pub fn new(conn: C, dialect: Dialect) -> Steps<C> {
        Steps { conn, dialect }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `SELECT COUNT(*) FROM <table> r WHERE <where_sql>`.
    pub async fn count(
        &mut self,
        kind: ResourceKind,
        where_sql: &str,
        binds: Vec<Bind>,
    ) -> Result<i64, StoreError> {
        self.conn.fetch_one(&count_sql(kind, where_sql), binds).await?.int("n")
    }

    pub async fn select(&mut self, s: Selection<'_>) -> Result<Vec<StoredResource>, StoreError> {
        let rel = if wants_relation(s.kind, s.load) {
            relation_sql(self.dialect, s.kind)
        } else {
            String::new()
        };
        let kind = s.kind;
        let (sql, binds) = select_statement(s, &rel);
        let rows = self.conn.fetch_all(&sql, binds).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut res = StoredResource {
                id: row.uuid("id")?.to_string(),
                kind,
                doc: row.json("doc")?,
                version: row.int("version")?,
                created: row.ts("created_at")?,
                modified: row.ts("modified_at")?,
                members: None,
                groups: None,
            };
            if !rel.is_empty() {
                attach_relation(&mut res, row.opt_json("rel")?)?;
            }
            out.push(res);
        }
        Ok(out)
    }

    /// One resource by id with the relations `load` asks for.
    pub async fn fetch_one(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        let s = Selection {
            kind,
            where_sql: "r.id = $1",
            binds: vec![Bind::Id(id)],
            order: "r.seq",
            limit: 1,
            offset: 0,
            load,
        };
        self.select(s).await?.pop().ok_or(StoreError::NotFound)
    }
}

/// The steps of a write, inside one transaction.
impl<C: Tx> Steps<C> {
    /// The document and version of a resource of this source, locked for the rest of the
    /// transaction (PostgreSQL: `FOR UPDATE`; SQLite: the write lock `BEGIN IMMEDIATE` took).
    pub async fn lock_row(
        &mut self,
        kind: ResourceKind,
        source_id: i64,
        id: Uuid,
    ) -> Result<Option<(Value, i64)>, StoreError> {
        let sql = format!(
            "SELECT doc, version FROM {} WHERE id = $1 AND source_id = $2{}",
            table(kind),
            self.dialect.for_update()
        );
        match self.conn.fetch_optional(&sql, binds![id, source_id]).await? {
            Some(r) => Ok(Some((r.json("doc")?, r.int("version")?))),
            None => Ok(None),
        }
    }

    /// The resource of one of the `from` sources that creating `ix` would take over: the one
    /// holding its name, else one with its externalId; locked like [`Steps::lock_row`].
    pub async fn find_adoptable(
        &mut self,
        kind: ResourceKind,
        ix: &Indexed,
        from: &[String],
    ) -> Result<Option<Adoptable>, StoreError> {
        let d = self.dialect;
        let sql = adoptable_sql(kind, &d.in_array("s.name", 1), d.for_update_of_r());
        let binds = vec![
            Bind::Texts(from.to_vec()),
            Bind::from(&ix.name_lower),
            Bind::from(ix.external_id.clone()),
        ];
        match self.conn.fetch_optional(&sql, binds).await? {
            Some(r) => Ok(Some(Adoptable {
                id: r.uuid("id")?,
                from_source: r.text("source")?,
                doc: r.json("doc")?,
            })),
            None => Ok(None),
        }
    }

    /// Hands a resource to another source.
    pub async fn set_owner(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        source_id: i64,
    ) -> Result<(), StoreError> {
        let sql = format!("UPDATE {} SET source_id = $2 WHERE id = $1", table(kind));
        self.conn.execute(&sql, binds![id, source_id]).await?;
        Ok(())
    }

    /// Inserts a new row; a unique violation comes back as the database error.
    pub async fn insert_row(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        source_id: i64,
        ix: &Indexed,
        doc: &Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sql = if kind == ResourceKind::User { INSERT_USER } else { INSERT_GROUP };
        let mut binds = binds![id, source_id];
        binds.extend(indexed_columns(kind, ix));
        binds.extend(binds![doc, now]);
        self.conn.execute(sql, binds).await?;
        Ok(())
    }

    /// Rewrites the document and its indexed columns and bumps the version.
    pub async fn update_row(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        ix: &Indexed,
        doc: &Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sql = if kind == ResourceKind::User { UPDATE_USER } else { UPDATE_GROUP };
        let mut binds = binds![id];
        binds.extend(indexed_columns(kind, ix));
        binds.extend(binds![doc, now]);
        self.conn.execute(sql, binds).await?;
        Ok(())
    }

    /// A new version for a group whose members changed.
    pub async fn bump_group_version(&mut self, id: Uuid, now: Timestamp) -> Result<(), StoreError> {
        let sql = "UPDATE groups SET version = version + 1, modified_at = $2 WHERE id = $1";
        self.conn.execute(sql, binds![id, now]).await?;
        Ok(())
    }

    /// Which of these ids are users or groups of the source (users first; groups only when
    /// some ids are not users). Locked as [`Dialect::key_share`] says.
    pub async fn member_kinds(
        &mut self,
        source_id: i64,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, MemberType>, StoreError> {
        let mut found = HashMap::with_capacity(ids.len());
        for (table, member_type) in [("users", MemberType::User), ("groups", MemberType::Group)] {
            if found.len() == ids.len() {
                break;
            }
            let sql = member_kinds_sql(self.dialect, table);
            let binds = vec![Bind::Int(source_id), Bind::Ids(ids.to_vec())];
            for row in self.conn.fetch_all(&sql, binds).await? {
                found.insert(row.uuid("id")?, member_type);
            }
        }
        Ok(found)
    }

    /// One of `starts` from which `target` is reachable through nested group memberships.
    pub async fn reaches(
        &mut self,
        starts: &[Uuid],
        target: Uuid,
    ) -> Result<Option<Uuid>, StoreError> {
        let sql = format!(
            "WITH RECURSIVE reach(start, id) AS ( \
               {} \
               UNION SELECT reach.start, m.member_id FROM group_members m JOIN reach ON m.group_id = reach.id \
               WHERE m.member_type = 'Group') \
             SELECT start FROM reach WHERE id = $2 LIMIT 1",
            self.dialect.id_array_pairs(1)
        );
        let binds = vec![Bind::Ids(starts.to_vec()), Bind::Id(target)];
        self.conn.fetch_optional(&sql, binds).await?.map(|r| r.uuid("start")).transpose()
    }

    /// Adds memberships (present ones are kept); returns the ids actually added.
    pub async fn insert_members(
        &mut self,
        group: Uuid,
        members: &[(Uuid, MemberType)],
    ) -> Result<Vec<Uuid>, StoreError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, binds) = if self.dialect.native_arrays() {
            let ids: Vec<Uuid> = members.iter().map(|(id, _)| *id).collect();
            let types = members.iter().map(|(_, t)| member_type_str(*t).to_owned()).collect();
            (
                "INSERT INTO group_members (group_id, member_id, member_type) \
                 SELECT $1, id, t FROM unnest($2::uuid[], $3::text[]) AS x(id, t) \
                 ON CONFLICT DO NOTHING RETURNING member_id",
                vec![Bind::Id(group), Bind::Ids(ids), Bind::Texts(types)],
            )
        } else {
            // One JSON array of [id, type] pairs; `WHERE true` resolves SQLite's parsing
            // ambiguity between a join and ON CONFLICT.
            let pairs: Vec<Value> = members
                .iter()
                .map(|(id, t)| serde_json::json!([id.to_string(), member_type_str(*t)]))
                .collect();
            (
                "INSERT INTO group_members (group_id, member_id, member_type) \
                 SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($2) WHERE true \
                 ON CONFLICT DO NOTHING RETURNING member_id",
                vec![Bind::Id(group), Bind::Json(Value::Array(pairs))],
            )
        };
        member_ids(self.conn.fetch_all(sql, binds).await?)
    }

    /// Removes these members; returns the ids actually removed.
    pub async fn delete_members(
        &mut self,
        group: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        let listed = self.dialect.in_array("member_id", 2);
        self.delete_members_if(group, &listed, ids).await
    }

    /// Removes every member not in `keep`; returns the ids removed.
    pub async fn delete_members_except(
        &mut self,
        group: Uuid,
        keep: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        let unlisted = format!("NOT ({})", self.dialect.in_array("member_id", 2));
        self.delete_members_if(group, &unlisted, keep).await
    }

    /// Removes the members of `group` for which `cond` (over the id array `$2`) holds.
    async fn delete_members_if(
        &mut self,
        group: Uuid,
        cond: &str,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        let sql =
            format!("DELETE FROM group_members WHERE group_id = $1 AND {cond} RETURNING member_id");
        let binds = vec![Bind::Id(group), Bind::Ids(ids.to_vec())];
        member_ids(self.conn.fetch_all(&sql, binds).await?)
    }

    /// Removes the members a `members[…]` filter selects; returns the ids removed.
    pub async fn delete_members_where(
        &mut self,
        group: Uuid,
        filter: &Filter,
    ) -> Result<Vec<Uuid>, StoreError> {
        let cond = filter_sql::translate_members(filter_backend(self.dialect), filter, 2)?;
        let sql = delete_members_where_sql(&cond.sql);
        let mut binds = vec![Bind::Id(group)];
        binds.extend(cond.binds);
        member_ids(self.conn.fetch_all(&sql, binds).await?)
    }

    /// Takes a resource out of every group it belongs to, giving those groups a new version;
    /// returns them.
    pub async fn detach_member(
        &mut self,
        member: Uuid,
        now: Timestamp,
    ) -> Result<Vec<Uuid>, StoreError> {
        let parents = if self.dialect == Dialect::Postgres {
            // Lock the parent groups in id order, so that concurrent deletes sharing groups
            // cannot deadlock each other.
            let sql = "SELECT id FROM groups WHERE id IN (SELECT group_id FROM group_members WHERE member_id = $1) \
                 ORDER BY id FOR UPDATE";
            let rows = self.conn.fetch_all(sql, binds![member]).await?;
            let parents = rows.iter().map(|r| r.uuid("id")).collect::<Result<Vec<_>, _>>()?;
            if parents.is_empty() {
                return Ok(parents);
            }
            let sql =
                "UPDATE groups SET version = version + 1, modified_at = $2 WHERE id = ANY($1)";
            self.conn.execute(sql, vec![Bind::Ids(parents.clone()), Bind::Time(now)]).await?;
            parents
        } else {
            // BEGIN IMMEDIATE already holds the database's write lock: one statement.
            let sql = "UPDATE groups SET version = version + 1, modified_at = $2 \
                 WHERE id IN (SELECT group_id FROM group_members WHERE member_id = $1) RETURNING id";
            let rows = self.conn.fetch_all(sql, binds![member, now]).await?;
            rows.iter().map(|r| r.uuid("id")).collect::<Result<Vec<_>, _>>()?
        };
        let sql = "DELETE FROM group_members WHERE member_id = $1";
        self.conn.execute(sql, binds![member]).await?;
        Ok(parents)
    }

    pub async fn delete_row(&mut self, kind: ResourceKind, id: Uuid) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", table(kind));
        self.conn.execute(&sql, binds![id]).await?;
        Ok(())
    }

    /// Appends the journal row. Its insert trigger (`0008_sync_pending.sql`) marks the
    /// resource pending in this same transaction, for the next sync run to cover.
    pub async fn journal(&mut self, row: JournalRow<'_>) -> Result<(), StoreError> {
        let sql = "INSERT INTO change_journal (at, source_id, token_id, resource_type, resource_id, action, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let binds = binds![
            row.at,
            row.ctx.source_id,
            row.ctx.token_id,
            row.kind.name(),
            row.id,
            row.action.as_str(),
            row.detail
        ];
        self.conn.execute(sql, binds).await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.conn.commit().await
    }
}

/// The ids of `table` (users or groups) among the id array `$2` that belong to source `$1`,
/// in id order (PostgreSQL locks them in that order, [`Dialect::key_share`]).
///
/// SQLite gets the ids as the rows it reads first: it keeps no statistics, and given
/// `source_id = $1 AND id IN (…)` its planner walked the index that starts with `source_id` —
/// every user of the source, ~100 ms for each group written at 100,000 users, which made
/// loading 10,000 groups through `/Bulk` take 13 minutes. `CROSS JOIN` fixes the join order:
/// one lookup by id per listed member.
pub fn member_kinds_sql(dialect: Dialect, table: &str) -> String {
    match dialect {
        Dialect::Postgres => format!(
            "SELECT id FROM {table} WHERE source_id = $1 AND {} ORDER BY id{}",
            dialect.in_array("id", 2),
            dialect.key_share()
        ),
        Dialect::Sqlite => format!(
            "SELECT t.id FROM json_each($2) AS j CROSS JOIN {table} AS t ON t.id = j.value \
             WHERE t.source_id = $1 ORDER BY t.id"
        ),
    }
}

/// The filter translator's name for a dialect.
pub fn filter_backend(dialect: Dialect) -> filter_sql::Backend {
    match dialect {
        Dialect::Postgres => filter_sql::Backend::Postgres,
        Dialect::Sqlite => filter_sql::Backend::Sqlite,
    }
}

/// The `member_id` column of each row.
fn member_ids<R: RowExt>(rows: Vec<R>) -> Result<Vec<Uuid>, StoreError> {
    rows.iter().map(|r| r.uuid("member_id")).collect()
}

const INSERT_USER: &str = "INSERT INTO users (id, source_id, user_name, user_name_lower, external_id, \
     display_name, active, doc, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)";
const INSERT_GROUP: &str = "INSERT INTO groups (id, source_id, display_name, display_name_lower, external_id, \
     doc, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
const UPDATE_USER: &str = "UPDATE users SET user_name = $2, user_name_lower = $3, external_id = $4, \
     display_name = $5, active = $6, doc = $7, version = version + 1, modified_at = $8 WHERE id = $1";
const UPDATE_GROUP: &str = "UPDATE groups SET display_name = $2, display_name_lower = $3, external_id = $4, \
     doc = $5, version = version + 1, modified_at = $6 WHERE id = $1";

/// The indexed columns of a row in table order, after its id (and source) and before its
/// document: `user_name, user_name_lower, external_id, display_name, active` of a user,
/// `display_name, display_name_lower, external_id` of a group.
fn indexed_columns(kind: ResourceKind, ix: &Indexed) -> Vec<Bind> {
    let mut columns = binds![&ix.name, &ix.name_lower, ix.external_id.clone()];
    if kind == ResourceKind::User {
        columns.extend(binds![ix.display_name.clone(), ix.active]);
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

    /// The statement that checks a write's members exist must look each one up by id, not walk
    /// the source's users: without statistics SQLite chose the `source_id` index, and every
    /// group written cost a pass over all the source's users.
    #[tokio::test]
    async fn sqlite_looks_members_up_by_id_not_by_walking_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = crate::store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for table in ["users", "groups"] {
            let sql = format!("EXPLAIN QUERY PLAN {}", member_kinds_sql(Dialect::Sqlite, table));
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(1_i64)
                .bind("[]")
                .fetch_all(&pool)
                .await
                .unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get("detail")).collect();
            assert!(plan.iter().any(|d| d.contains("(id=?)")), "{table}: {plan:?}");
            assert!(!plan.iter().any(|d| d.contains("source_id=?")), "{table}: {plan:?}");
        }
        pool.close().await;
    }
}
