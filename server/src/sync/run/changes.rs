//! Where a change run's [`ChangeSet`] comes from: the change journal after the head the newest
//! real run that succeeded (with these rules) covered. This is the one place to swap in
//! another source (a dirty set written with each SCIM write).
//!
//! Why "succeeded": a `partial` run covered changes it failed to push, and a change run
//! retries those only while they are in its change set.

use crate::store::{RunStatus, Store};
use crate::sync::error::SyncError;
use crate::sync::principals::scope::{ChangeSet, MAX_CHANGED_RESOURCES};
use std::collections::HashMap;

/// How many of the newest runs are searched for the last covered point.
const RUNS_SEARCHED: i64 = 50;
/// Journal rows read per request.
const PAGE_ROWS: i64 = 1_000;
/// Beyond this many journal rows the change set is not worked out (everything is planned).
const MAX_JOURNAL_ROWS: usize = 50_000;

/// The SCIM resources changed after the last covered point, up to the journal head `head`.
/// None — plan everything — when no real run has succeeded with these rules (`fingerprint`)
/// among the newest, or the change set is larger than [`MAX_CHANGED_RESOURCES`].
pub(super) async fn changes_since_covered(
    store: &dyn Store,
    fingerprint: &str,
    head: i64,
) -> Result<Option<ChangeSet>, SyncError> {
    let runs = store.list_runs(RUNS_SEARCHED).await?;
    let covered = runs.iter().find(|r| {
        !r.dry_run
            && r.status == RunStatus::Succeeded
            && r.finished_at.is_some()
            && r.journal_head.is_some()
    });
    let Some(covered) = covered else { return Ok(None) };
    // Rules changed since: what they select and shape may differ anywhere.
    if covered.rules_fingerprint.as_deref() != Some(fingerprint) {
        return Ok(None);
    }
    let mut after = covered.journal_head.unwrap_or_default();
    let mut rows = Vec::new();
    while after < head {
        let page = store.journal_since(after, PAGE_ROWS).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        rows.extend(page.into_iter().filter(|r| r.seq <= head));
        if rows.len() > MAX_JOURNAL_ROWS {
            return Ok(None);
        }
    }
    let unknown = ChangeSet::unknown_members(&rows);
    let kinds: HashMap<_, _> = store.kinds_of(&unknown).await?.into_iter().collect();
    let changes = ChangeSet::from_journal(&rows, &kinds);
    Ok((changes.len() <= MAX_CHANGED_RESOURCES).then_some(changes))
}
