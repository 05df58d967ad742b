//! The pending set (`sync_pending`): the SCIM resources changed and not yet covered by a
//! successful real sync run. Every journal row marks its resource in the same transaction; a
//! run clears only the rows it read, and only while their mark is unchanged.

use super::Timestamp;
use scim_schema::schema::ResourceKind;

/// One changed resource, as a run read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PendingChange {
    pub kind: ResourceKind,
    pub resource_id: uuid::Uuid,
    /// The seq of the resource's newest journal row when it was read: clearing removes the row
    /// only if this is still its mark, so a change made meanwhile stays pending.
    pub mark: i64,
}

/// The pending set at a glance: what the scheduler's change trigger watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingSummary {
    /// Resources pending.
    pub count: i64,
    /// The highest mark (0 when none).
    pub newest_mark: i64,
    /// When the newest pending change was made (None when none is pending).
    pub newest_at: Option<Timestamp>,
}

impl PendingSummary {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The journal rows of the pending resources since each became pending
/// ([`crate::store::Pending::pending_history`]).
#[derive(Debug, Clone, Default)]
pub struct PendingHistory {
    /// Oldest first; `detail` only on a group's membership changes (replace, patch,
    /// member_deleted), the rows whose members the change set reads.
    pub rows: Vec<super::JournalEntry>,
    /// Pending resources whose oldest journal row since they became pending is gone: what
    /// changed is not known (a change run plans them whole).
    pub unexplained: Vec<(ResourceKind, uuid::Uuid)>,
}
