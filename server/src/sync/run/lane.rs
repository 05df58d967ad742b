//! The change lane: a run follows the change journal while it lasts, so that what the IdP
//! changes meanwhile reaches AWS within seconds however much of a long run is left. It says
//! when such changes are due ([`ChangeLane::due`]), which SCIM resources they touched
//! ([`ChangeLane::take`]), and which actions of a re-plan go first ([`prioritise`]).

use crate::store::{JournalEntry, Store};
use crate::sync::error::SyncError;
use crate::sync::plan::Action;
use scim_schema::schema::ResourceKind;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// At most this many journal rows name the changes to push first; beyond, the re-plan still
/// covers them, in the plan's order (a run in pages leaves them to its pages and the next run).
pub(super) const PRIORITY_ROWS: i64 = 10_000;

/// Watches the change journal during a run: changes made after the current plan was made are
/// due once the journal has been quiet for `debounce_seconds` (as the scheduler would push
/// them), so a change reaches AWS within seconds even while a long run lasts.
pub(super) struct ChangeLane {
    enabled: bool,
    debounce: Duration,
    /// How often the journal is looked at ([`super::SyncTimings::look_every`]).
    look_every: Duration,
    /// The journal head the current plan covers.
    pub covered: i64,
    seen: i64,
    moved_at: Instant,
    looked_at: Instant,
}

impl ChangeLane {
    /// A lane from the journal head `head` on; a disabled one (a dry run's) is never due.
    pub fn new(enabled: bool, debounce: Duration, look_every: Duration, head: i64) -> ChangeLane {
        ChangeLane {
            enabled,
            debounce,
            look_every,
            covered: head,
            seen: head,
            moved_at: Instant::now(),
            looked_at: Instant::now(),
        }
    }

    /// How often the journal is looked at.
    pub fn look_every(&self) -> Duration {
        self.look_every
    }

    /// Whether changes after the covered head have waited out the debounce.
    pub async fn due(&mut self, store: &dyn Store) -> Result<bool, SyncError> {
        if !self.enabled || self.looked_at.elapsed() < self.look_every {
            return Ok(false);
        }
        self.looked_at = Instant::now();
        let head = store.journal_head().await?;
        if head != self.seen {
            self.seen = head;
            self.moved_at = Instant::now();
            // The run looks only between its steps (a page of a long listing can take a
            // while): the quiet time counts from the newest change, not from when it was seen.
            if let Some(row) = store.journal_since(head - 1, 1).await?.first() {
                let age = (crate::store::now() - row.at).to_std().unwrap_or_default();
                self.moved_at = Instant::now().checked_sub(age).unwrap_or(self.moved_at);
            }
        }
        Ok(head > self.covered && self.moved_at.elapsed() >= self.debounce)
    }

    /// The SCIM resources the journal names after `covered`, up to `head`, which becomes the
    /// covered head.
    pub async fn take(&mut self, store: &dyn Store, head: i64) -> Result<HashSet<Uuid>, SyncError> {
        let rows = self.take_rows(store, head).await?;
        Ok(rows.iter().filter_map(|r| r.resource_id.parse().ok()).collect())
    }

    /// The journal rows after `covered`, up to `head` (at most [`PRIORITY_ROWS`]), which becomes
    /// the covered head.
    pub async fn take_rows(
        &mut self,
        store: &dyn Store,
        head: i64,
    ) -> Result<Vec<JournalEntry>, SyncError> {
        let mut rows = Vec::new();
        if head > self.covered {
            rows = store.journal_since(self.covered, PRIORITY_ROWS).await?;
            rows.retain(|r| r.seq <= head);
        }
        self.covered = head;
        Ok(rows)
    }
}

/// Splits a plan into the actions that concern a changed SCIM resource (with the creates their
/// memberships need) and the rest; each part keeps the plan's order (deletes, updates,
/// creates, memberships).
pub(super) fn prioritise(
    actions: Vec<Action>,
    changed: &HashSet<Uuid>,
) -> (Vec<Action>, Vec<Action>) {
    let mut needed: HashSet<Uuid> = changed.clone();
    for a in &actions {
        if let Action::AddMember { group_id, user_id, .. } = a
            && concerns_any(a, changed)
        {
            needed.insert(*group_id);
            needed.insert(*user_id);
        }
    }
    // A delete that frees the name of an urgent create goes first too (a user deleted and
    // provisioned again at the IdP).
    let freed: HashSet<(ResourceKind, String)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { kind, name, resource_id, .. }
            | Action::Adopt { kind, name, resource_id, .. }
                if needed.contains(resource_id) =>
            {
                Some((*kind, name.to_lowercase()))
            }
            _ => None,
        })
        .collect();
    let first = |a: &Action| match a {
        Action::Create { resource_id, .. } | Action::Adopt { resource_id, .. } => {
            needed.contains(resource_id)
        }
        Action::Delete { kind, name, .. } if freed.contains(&(*kind, name.to_lowercase())) => true,
        other => concerns_any(other, changed),
    };
    actions.into_iter().partition(first)
}

fn concerns_any(a: &Action, changed: &HashSet<Uuid>) -> bool {
    match a {
        Action::Create { resource_id, .. }
        | Action::Adopt { resource_id, .. }
        | Action::Update { resource_id, .. }
        | Action::Delete { resource_id, .. } => changed.contains(resource_id),
        Action::AddMember { group_id, user_id, .. }
        | Action::RemoveMember { group_id, user_id, .. } => {
            changed.contains(group_id) || changed.contains(user_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(kind: ResourceKind, id: Uuid) -> Action {
        Action::Create {
            kind,
            name: id.to_string(),
            resource_id: id,
            source: "okta".into(),
            may_adopt: false,
            attrs: Default::default(),
        }
    }

    #[test]
    fn changed_resources_and_the_creates_they_need_go_first_in_plan_order() {
        let (u1, u2, u3, g) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let add = |user_id| Action::AddMember {
            group: "g".into(),
            user: "u".into(),
            group_id: g,
            user_id,
        };
        let actions = vec![
            create(ResourceKind::User, u1),
            create(ResourceKind::User, u2),
            create(ResourceKind::User, u3),
            create(ResourceKind::Group, g),
            add(u1),
            add(u3),
        ];
        // The group changed (a member added): it, its memberships and the users they need.
        let (urgent, rest) = prioritise(actions.clone(), &HashSet::from([g]));
        assert_eq!(
            urgent,
            vec![
                actions[0].clone(),
                actions[2].clone(),
                actions[3].clone(),
                actions[4].clone(),
                actions[5].clone()
            ]
        );
        assert_eq!(rest, vec![actions[1].clone()]);
        // Only u2 changed: nothing else is urgent.
        let (urgent, rest) = prioritise(actions.clone(), &HashSet::from([u2]));
        assert_eq!(urgent, vec![actions[1].clone()]);
        assert_eq!(rest.len(), 5);
    }

    #[test]
    fn a_delete_freeing_the_name_of_an_urgent_create_goes_first() {
        let (old, new) = (Uuid::now_v7(), Uuid::now_v7());
        let delete = Action::Delete {
            kind: ResourceKind::User,
            name: "Alice@Example.com".into(),
            resource_id: old,
            aws_id: "aws-old".into(),
            reason: "deleted at the IdP",
        };
        let mut recreate = create(ResourceKind::User, new);
        if let Action::Create { name, .. } = &mut recreate {
            *name = "alice@example.com".into();
        }
        let (urgent, rest) =
            prioritise(vec![delete.clone(), recreate.clone()], &HashSet::from([new]));
        assert_eq!(urgent, vec![delete, recreate]);
        assert!(rest.is_empty());
    }
}
