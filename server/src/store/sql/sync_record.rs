//! The sync record (the [`SyncRecord`] role): the SCIM side as the sync engine reads it, in one
//! snapshot, and the AWS principals, memberships and in-flight creates the bridge manages.

use super::SqlStore;
use super::columns::member_type_of;
use crate::store::backend::{Access, Backend, Conn, RowExt, Tx, binds};
use crate::store::roles::SyncRecord;
use crate::store::{
    AwsMembership, AwsPrincipal, Ownership, PendingCreate, Snapshot, SnapshotGroup, SnapshotUser,
    StoreError, SyncState, kind_of, now,
};
use async_trait::async_trait;
use scim_schema::schema::ResourceKind;
use uuid::Uuid;

const SELECT_USERS: &str = "SELECT u.id, u.doc, u.active, s.name AS source \
     FROM users u JOIN sources s ON s.id = u.source_id ORDER BY u.seq";
const SELECT_GROUPS: &str = "SELECT g.id, g.doc, s.name AS source \
     FROM groups g JOIN sources s ON s.id = g.source_id ORDER BY g.seq";
const SELECT_MEMBERS: &str = "SELECT group_id, member_id, member_type FROM group_members";
const SELECT_PRINCIPALS: &str = "SELECT kind, resource_id, aws_id, ownership, name, pushed \
     FROM aws_principals ORDER BY kind, name";
const SELECT_MEMBERSHIPS: &str = "SELECT group_id, user_id, membership_id FROM aws_memberships";
const PUT_PRINCIPAL: &str = "INSERT INTO aws_principals (kind, resource_id, aws_id, ownership, name, pushed, pushed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (kind, resource_id) DO UPDATE SET aws_id = excluded.aws_id, \
     ownership = excluded.ownership, name = excluded.name, pushed = excluded.pushed, \
     pushed_at = excluded.pushed_at";
const REMOVE_PRINCIPAL: &str = "DELETE FROM aws_principals WHERE kind = $1 AND resource_id = $2";
const PUT_MEMBERSHIP: &str = "INSERT INTO aws_memberships (group_id, user_id, membership_id) VALUES ($1, $2, $3) \
     ON CONFLICT (group_id, user_id) DO UPDATE SET membership_id = excluded.membership_id";
const REMOVE_MEMBERSHIP: &str = "DELETE FROM aws_memberships WHERE group_id = $1 AND user_id = $2";
const REMOVE_MEMBERSHIPS_OF_USER: &str = "DELETE FROM aws_memberships WHERE user_id = $1";
const REMOVE_MEMBERSHIPS_OF_GROUP: &str = "DELETE FROM aws_memberships WHERE group_id = $1";
const PUT_PENDING_CREATE: &str = "INSERT INTO aws_pending_creates (kind, resource_id, name, started_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (kind, resource_id) DO UPDATE SET name = excluded.name, \
     started_at = excluded.started_at";
const REMOVE_PENDING_CREATE: &str =
    "DELETE FROM aws_pending_creates WHERE kind = $1 AND resource_id = $2";
const SELECT_PENDING_CREATES: &str =
    "SELECT kind, resource_id, name FROM aws_pending_creates ORDER BY started_at";

pub(super) fn principal_of<R: RowExt>(r: &R) -> Result<AwsPrincipal, StoreError> {
    Ok(AwsPrincipal {
        kind: kind_of(&r.text("kind")?)?,
        resource_id: r.uuid("resource_id")?,
        aws_id: r.text("aws_id")?,
        ownership: Ownership::parse(&r.text("ownership")?)?,
        name: r.text("name")?,
        pushed: r.json("pushed")?,
    })
}

pub(super) fn membership_of<R: RowExt>(r: &R) -> Result<AwsMembership, StoreError> {
    Ok(AwsMembership {
        group_id: r.uuid("group_id")?,
        user_id: r.uuid("user_id")?,
        membership_id: r.text("membership_id")?,
    })
}

/// A user of the SCIM side as the sync reads it.
pub(super) fn snapshot_user_of<R: RowExt>(r: &R) -> Result<SnapshotUser, StoreError> {
    Ok(SnapshotUser {
        id: r.uuid("id")?,
        doc: r.json("doc")?,
        active: r.bool("active")?,
        source: r.text("source")?,
    })
}

/// A group of the SCIM side as the sync reads it.
pub(super) fn snapshot_group_of<R: RowExt>(r: &R) -> Result<SnapshotGroup, StoreError> {
    Ok(SnapshotGroup { id: r.uuid("id")?, doc: r.json("doc")?, source: r.text("source")? })
}

#[async_trait]
impl<B: Backend> SyncRecord for SqlStore<B> {
    #[tracing::instrument(skip_all, level = "debug")]
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self.backend.snapshot().await?;
        let users = tx
            .fetch_all(SELECT_USERS, Vec::new())
            .await?
            .iter()
            .map(snapshot_user_of)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let groups = tx
            .fetch_all(SELECT_GROUPS, Vec::new())
            .await?
            .iter()
            .map(snapshot_group_of)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let members = tx
            .fetch_all(SELECT_MEMBERS, Vec::new())
            .await?
            .iter()
            .map(|r| {
                let t = member_type_of(&r.text("member_type")?);
                Ok((r.uuid("group_id")?, r.uuid("member_id")?, t))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        Ok(Snapshot { users, groups, members })
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn sync_state(&self) -> Result<SyncState, StoreError> {
        let rows = self.backend.fetch_all(Access::Read, SELECT_PRINCIPALS, Vec::new()).await?;
        let principals = rows.iter().map(principal_of).collect::<Result<Vec<_>, _>>()?;
        let rows = self.backend.fetch_all(Access::Read, SELECT_MEMBERSHIPS, Vec::new()).await?;
        let memberships = rows.iter().map(membership_of).collect::<Result<Vec<_>, _>>()?;
        Ok(SyncState { principals, memberships })
    }

    #[tracing::instrument(skip_all, fields(kind = p.kind.name(), resource_id = %p.resource_id), level = "debug")]
    async fn put_principal(&self, p: &AwsPrincipal) -> Result<(), StoreError> {
        let binds = binds![
            p.kind.name(),
            p.resource_id,
            &p.aws_id,
            p.ownership.as_str(),
            &p.name,
            &p.pushed,
            now()
        ];
        self.backend.execute(Access::Write, PUT_PRINCIPAL, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name(), %resource_id), level = "debug")]
    async fn remove_principal(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError> {
        // AWS drops a deleted principal's memberships with it; so does the record, in the same
        // transaction, whatever part of the record the caller held.
        let mut tx = self.backend.write().await?;
        tx.execute(REMOVE_PRINCIPAL, binds![kind.name(), resource_id]).await?;
        let memberships = match kind {
            ResourceKind::User => REMOVE_MEMBERSHIPS_OF_USER,
            ResourceKind::Group => REMOVE_MEMBERSHIPS_OF_GROUP,
        };
        tx.execute(memberships, binds![resource_id]).await?;
        tx.commit().await
    }

    #[tracing::instrument(skip_all, fields(group_id = %m.group_id, user_id = %m.user_id), level = "debug")]
    async fn put_membership(&self, m: &AwsMembership) -> Result<(), StoreError> {
        let binds = binds![m.group_id, m.user_id, &m.membership_id];
        self.backend.execute(Access::Write, PUT_MEMBERSHIP, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(%group_id, %user_id), level = "debug")]
    async fn remove_membership(&self, group_id: Uuid, user_id: Uuid) -> Result<(), StoreError> {
        let binds = binds![group_id, user_id];
        self.backend.execute(Access::Write, REMOVE_MEMBERSHIP, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(kind = p.kind.name(), resource_id = %p.resource_id), level = "debug")]
    async fn put_pending_create(&self, p: &PendingCreate) -> Result<(), StoreError> {
        let binds = binds![p.kind.name(), p.resource_id, &p.name, now()];
        self.backend.execute(Access::Write, PUT_PENDING_CREATE, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name(), %resource_id), level = "debug")]
    async fn remove_pending_create(
        &self,
        kind: ResourceKind,
        resource_id: Uuid,
    ) -> Result<(), StoreError> {
        let binds = binds![kind.name(), resource_id];
        self.backend.execute(Access::Write, REMOVE_PENDING_CREATE, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn pending_creates(&self) -> Result<Vec<PendingCreate>, StoreError> {
        let rows = self.backend.fetch_all(Access::Read, SELECT_PENDING_CREATES, Vec::new()).await?;
        rows.iter()
            .map(|r| {
                Ok(PendingCreate {
                    kind: kind_of(&r.text("kind")?)?,
                    resource_id: r.uuid("resource_id")?,
                    name: r.text("name")?,
                })
            })
            .collect()
    }
}
