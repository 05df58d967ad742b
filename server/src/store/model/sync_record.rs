//! The sync record: what the sync engine reads of the SCIM side, and the AWS principals and
//! memberships the bridge manages.

use super::StoreError;
use scim_schema::resource::MemberType;
use scim_schema::schema::ResourceKind;
use serde::Serialize;
use serde_json::Value;

/// Everything the sync engine reads of the SCIM side, read consistently in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub users: Vec<SnapshotUser>,
    pub groups: Vec<SnapshotGroup>,
    /// Direct memberships: (group, member, member type).
    pub members: Vec<(uuid::Uuid, uuid::Uuid, MemberType)>,
}

#[derive(Debug, Clone)]
pub struct SnapshotUser {
    pub id: uuid::Uuid,
    pub doc: Value,
    pub active: bool,
    /// The name of the source that owns it.
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct SnapshotGroup {
    pub id: uuid::Uuid,
    pub doc: Value,
    /// The name of the source that owns it.
    pub source: String,
}

/// How the bridge came to manage an AWS principal; only these are ever changed or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    Created,
    /// It existed in AWS with the same userName / displayName and was taken over.
    Adopted,
}

impl Ownership {
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::Created => "created",
            Ownership::Adopted => "adopted",
        }
    }

    pub fn parse(s: &str) -> Result<Ownership, StoreError> {
        match s {
            "created" => Ok(Ownership::Created),
            "adopted" => Ok(Ownership::Adopted),
            other => Err(StoreError::Corrupt(format!("unknown ownership {other:?}"))),
        }
    }
}

/// A SCIM resource's AWS principal (`aws_principals`).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsPrincipal {
    pub kind: ResourceKind,
    pub resource_id: uuid::Uuid,
    pub aws_id: String,
    pub ownership: Ownership,
    pub name: String,
    /// The attributes last pushed.
    pub pushed: Value,
}

/// A membership the bridge made (`aws_memberships`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsMembership {
    pub group_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub membership_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct SyncState {
    pub principals: Vec<AwsPrincipal>,
    pub memberships: Vec<AwsMembership>,
}

/// A create in flight (`aws_pending_creates`): the AWS name it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCreate {
    pub kind: ResourceKind,
    pub resource_id: uuid::Uuid,
    pub name: String,
}
