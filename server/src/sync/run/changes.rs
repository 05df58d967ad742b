//! Where a change run's [`ChangeSet`] comes from: the pending set (`sync_pending`, see
//! [`super::pending`]), which names every user and group changed and not yet covered by a
//! succeeded run — correctly under concurrent writers, whatever order PostgreSQL makes their
//! journal rows visible in — and the journal rows of those resources since each became pending,
//! which say what kind of change it was (a group's members joining or leaving, or its nesting).
//!
//! A pending resource whose oldest such row is gone (pruned by `[retention]` after staying
//! pending that long) is planned as if anything had changed: a group whole, a user with every
//! group that reaches it.

use crate::store::Store;
use crate::sync::error::SyncError;
use crate::sync::principals::scope::{ChangeSet, MAX_CHANGED_RESOURCES};
use scim_schema::schema::ResourceKind;
use std::collections::HashMap;

/// How many of the newest runs are searched for the last succeeded one (its rules).
const RUNS_SEARCHED: i64 = 50;
/// Beyond this many journal rows the change set is not worked out (everything is planned).
const MAX_JOURNAL_ROWS: usize = 50_000;

/// The SCIM resources pending now, as a change set. None — plan everything — when no real run
/// has succeeded among the newest, or the rules changed since the last one that did
/// (`fingerprint`: what they select and shape may differ anywhere), or the change set is
/// larger than [`MAX_CHANGED_RESOURCES`].
pub(super) async fn pending_changes(
    store: &dyn Store,
    fingerprint: &str,
) -> Result<Option<ChangeSet>, SyncError> {
    let covered_rules = store.last_succeeded_rules(RUNS_SEARCHED).await?;
    if covered_rules.as_deref() != Some(fingerprint) {
        return Ok(None);
    }
    // Each pending resource is in the change set: more than it may hold is known without
    // reading their journal rows (after a large load, 50,000 rows with their member lists).
    if store.pending_summary().await?.count > MAX_CHANGED_RESOURCES as i64 {
        return Ok(None);
    }
    let history = store.pending_history(MAX_JOURNAL_ROWS as i64 + 1).await?;
    if history.rows.len() > MAX_JOURNAL_ROWS {
        return Ok(None);
    }
    let unknown = ChangeSet::unknown_members(&history.rows);
    let kinds: HashMap<_, _> = store.kinds_of(&unknown).await?.into_iter().collect();
    let mut changes = ChangeSet::from_journal(&history.rows, &kinds);
    for (kind, id) in history.unexplained {
        match kind {
            ResourceKind::User => {
                changes.users.insert(id);
            }
            ResourceKind::Group => {
                changes.touched.remove(&id);
                changes.groups.insert(id);
            }
        }
    }
    Ok((changes.len() <= MAX_CHANGED_RESOURCES).then_some(changes))
}
