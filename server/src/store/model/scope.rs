//! What a change run reads of the store ([`crate::store::ScopedRecord`]): the part of the
//! directory its changes reach, and the whole record's sizes for the delete guard; and what a
//! full run's drift repair reads of it, page by page and group by group.

use super::{AwsMembership, Snapshot, SyncState};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// Where a scoped read starts (SCIM ids). An id may name a resource that no longer exists (it
/// was deleted): its record is still read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSeeds {
    /// Users read with every group that reaches them (directly or through nested groups) and
    /// every membership recorded for them.
    pub users: BTreeSet<Uuid>,
    /// Groups whose flattened membership may have changed: read whole (every user they reach,
    /// every membership recorded for them), and so are the groups that contain them.
    pub nesting: BTreeSet<Uuid>,
    /// Groups read whole, without the groups that contain them.
    pub whole: BTreeSet<Uuid>,
    /// Users and groups read for themselves only (their document and record).
    pub single: BTreeSet<Uuid>,
    /// At most this many memberships on the paths the read follows (up from the seed users,
    /// down from the whole groups); beyond, it reads no documents and says so
    /// ([`ScopeRead::too_far`]). None: no limit (a full run's page, bounded by its size).
    pub max_edges: Option<usize>,
}

impl ScopeSeeds {
    /// How many resources the read starts from.
    pub fn len(&self) -> usize {
        self.users.len() + self.nesting.len() + self.whole.len() + self.single.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A scoped read, seen in one consistent snapshot.
#[derive(Debug, Clone, Default)]
pub struct ScopeRead {
    /// The documents of the users and groups in scope, and the direct memberships on the paths
    /// that join them (down from each whole group, up from each seed user and nesting group).
    pub snapshot: Snapshot,
    /// The record of every principal in scope, and the memberships recorded for the whole
    /// groups and the seed users.
    pub state: SyncState,
    /// The groups read whole: the `whole` and `nesting` seeds, and every group that contains
    /// a `nesting` seed.
    pub whole_groups: BTreeSet<Uuid>,
    /// The paths reached further than `max_edges`: nothing else was read.
    pub too_far: bool,
}

/// The sizes of the whole record, which a scoped plan's deletes and removals are weighed
/// against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordTotals {
    pub principals: usize,
    pub memberships: usize,
    /// Recorded memberships of the groups asked about.
    pub members_per_group: HashMap<Uuid, usize>,
}

/// A membership recorded for a group, with its user's AWS id when the user is a recorded
/// principal (None: the user is no longer managed, so the membership's end is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedMember {
    pub membership: AwsMembership,
    pub user_aws_id: Option<String>,
}
