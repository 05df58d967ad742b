//! The primitive steps each backend implements. The operations themselves (create, replace,
//! patch, delete, get, list) are written once over these in [`super::flows`], so PostgreSQL and
//! SQLite behave the same by construction; a backend only says how each step is spelled in its
//! SQL and its types.

use super::columns::Indexed;
use super::filter_sql::Bind;
use super::{GroupRefOut, Load, MemberOut, StoreError, StoredResource, Timestamp, WriteCtx};
use async_trait::async_trait;
use scim_schema::filter::Filter;
use scim_schema::resource::MemberType;
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

pub fn table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    }
}

/// Reads on a connection or inside a transaction.
#[async_trait]
pub trait Reader: Send {
    /// `SELECT COUNT(*) FROM <table> r WHERE <where_sql>`.
    async fn count(
        &mut self,
        kind: ResourceKind,
        where_sql: &str,
        binds: Vec<Bind>,
    ) -> Result<i64, StoreError>;

    /// Resources (without relations) matching `where_sql`, in `order`, paged.
    async fn select(
        &mut self,
        kind: ResourceKind,
        where_sql: &str,
        binds: Vec<Bind>,
        order: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<StoredResource>, StoreError>;

    /// The direct members of each group.
    async fn members_of(
        &mut self,
        group_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<MemberOut>>, StoreError>;

    /// The groups each user is a direct member of.
    async fn groups_of(
        &mut self,
        user_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<GroupRefOut>>, StoreError>;

    /// One resource by id with the relations `load` asks for.
    async fn fetch_one(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        let mut rows = self.select(kind, "r.id = $1", vec![Bind::Id(id)], "r.seq", 1, 0).await?;
        attach_relations(self, kind, &mut rows, load).await?;
        rows.pop().ok_or(StoreError::NotFound)
    }
}

/// Fills `members` / `groups` of freshly selected resources, with one query for all of them.
pub async fn attach_relations<R: Reader + ?Sized>(
    reader: &mut R,
    kind: ResourceKind,
    rows: &mut [StoredResource],
    load: Load,
) -> Result<(), StoreError> {
    let ids: Vec<Uuid> = rows.iter().filter_map(|r| Uuid::parse_str(&r.id).ok()).collect();
    match kind {
        ResourceKind::Group if load.members => {
            let mut members = reader.members_of(&ids).await?;
            for (r, id) in rows.iter_mut().zip(&ids) {
                r.members = Some(members.remove(id).unwrap_or_default());
            }
        }
        ResourceKind::User if load.groups => {
            let mut groups = reader.groups_of(&ids).await?;
            for (r, id) in rows.iter_mut().zip(&ids) {
                r.groups = Some(groups.remove(id).unwrap_or_default());
            }
        }
        _ => {}
    }
    Ok(())
}

/// A journal row to append.
pub struct JournalRow<'a> {
    pub ctx: &'a WriteCtx,
    pub kind: ResourceKind,
    pub id: Uuid,
    pub action: &'a str,
    pub detail: Option<Value>,
    pub at: Timestamp,
}

/// The steps of a write, inside one transaction.
#[async_trait]
pub trait Writer: Reader {
    /// The document and version of a resource of this source, locked for the rest of the
    /// transaction (PostgreSQL: `FOR UPDATE`; SQLite: the write lock `BEGIN IMMEDIATE` took).
    async fn lock_row(
        &mut self,
        kind: ResourceKind,
        source_id: i64,
        id: Uuid,
    ) -> Result<Option<(Value, i64)>, StoreError>;

    /// Inserts a new row; a unique violation comes back as the sqlx error.
    async fn insert_row(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        source_id: i64,
        ix: &Indexed,
        doc: &Value,
        now: Timestamp,
    ) -> Result<(), sqlx::Error>;

    /// Rewrites the document and its indexed columns and bumps the version.
    async fn update_row(
        &mut self,
        kind: ResourceKind,
        id: Uuid,
        ix: &Indexed,
        doc: &Value,
        now: Timestamp,
    ) -> Result<(), sqlx::Error>;

    /// A new version for a group whose members changed.
    async fn bump_group_version(&mut self, id: Uuid, now: Timestamp) -> Result<(), StoreError>;

    /// Which of these ids are users or groups of the source.
    async fn member_kinds(
        &mut self,
        source_id: i64,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, MemberType>, StoreError>;

    /// One of `starts` from which `target` is reachable through nested group memberships.
    async fn reaches(&mut self, starts: &[Uuid], target: Uuid) -> Result<Option<Uuid>, StoreError>;

    /// Adds memberships (present ones are kept); returns the ids actually added.
    async fn insert_members(
        &mut self,
        group: Uuid,
        members: &[(Uuid, MemberType)],
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Removes these members; returns the ids actually removed.
    async fn delete_members(&mut self, group: Uuid, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError>;

    /// Removes every member not in `keep`; returns the ids removed.
    async fn delete_members_except(
        &mut self,
        group: Uuid,
        keep: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Removes the members a `members[…]` filter selects; returns the ids removed.
    async fn delete_members_where(
        &mut self,
        group: Uuid,
        filter: &Filter,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Takes a resource out of every group it belongs to, giving those groups a new version;
    /// returns them.
    async fn detach_member(
        &mut self,
        member: Uuid,
        now: Timestamp,
    ) -> Result<Vec<Uuid>, StoreError>;

    async fn delete_row(&mut self, kind: ResourceKind, id: Uuid) -> Result<(), StoreError>;

    async fn journal(&mut self, row: JournalRow<'_>) -> Result<(), StoreError>;

    async fn commit(self) -> Result<(), StoreError>
    where
        Self: Sized;
}
