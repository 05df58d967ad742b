//! A dry run's drift repair: what a real run would write to the record, kept aside instead
//! (a dry run writes nothing) and laid over each read of the record its plan makes, so that the
//! plan shows the re-creates and membership repairs a real run would make. Its size follows
//! the drift found, not the directory.

use crate::store::{AwsMembership, AwsPrincipal, SyncState};
use scim_schema::schema::ResourceKind;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The record's repairs a dry run found: principals forgotten (deleted outside the bridge, so
/// re-created by the plan), memberships dropped and memberships added. A real run writes its
/// repairs and keeps an empty one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DriftOverlay {
    forgotten: HashSet<(ResourceKind, Uuid)>,
    /// (group, user) of the memberships dropped.
    dropped: HashSet<(Uuid, Uuid)>,
    /// The memberships added, by (group, user).
    added: HashMap<(Uuid, Uuid), String>,
}

impl DriftOverlay {
    pub fn is_empty(&self) -> bool {
        self.forgotten.is_empty() && self.dropped.is_empty() && self.added.is_empty()
    }

    /// The principal is forgotten, and with it every membership it is an end of.
    pub fn forget(&mut self, p: &AwsPrincipal) {
        self.forgotten.insert((p.kind, p.resource_id));
    }

    pub fn is_forgotten(&self, kind: ResourceKind, resource_id: Uuid) -> bool {
        self.forgotten.contains(&(kind, resource_id))
    }

    pub fn drop_membership(&mut self, group_id: Uuid, user_id: Uuid) {
        self.added.remove(&(group_id, user_id));
        self.dropped.insert((group_id, user_id));
    }

    pub fn add_membership(&mut self, m: AwsMembership) {
        self.dropped.remove(&(m.group_id, m.user_id));
        self.added.insert((m.group_id, m.user_id), m.membership_id);
    }

    /// Lays the repairs over `state`, a read of the record (all of it, or a page's part): the
    /// forgotten principals and the memberships of which they are an end go, the dropped
    /// memberships go, and each added membership is put in when `state` holds the record of
    /// both its ends (a read that covers a membership reads both of its principals). Applying
    /// it twice changes nothing more.
    pub fn apply_to(&self, state: &mut SyncState) {
        if self.is_empty() {
            return;
        }
        let forgotten = |kind, id| self.forgotten.contains(&(kind, id));
        state.principals.retain(|p| !forgotten(p.kind, p.resource_id));
        let held: HashSet<(ResourceKind, Uuid)> =
            state.principals.iter().map(|p| (p.kind, p.resource_id)).collect();
        let mut added: Vec<AwsMembership> = self
            .added
            .iter()
            .filter(|((g, u), _)| {
                held.contains(&(ResourceKind::Group, *g))
                    && held.contains(&(ResourceKind::User, *u))
            })
            .map(|((group_id, user_id), membership_id)| AwsMembership {
                group_id: *group_id,
                user_id: *user_id,
                membership_id: membership_id.clone(),
            })
            .collect();
        // In a stable order, whatever the map's.
        added.sort_by_key(|m| (m.group_id, m.user_id));
        let replaced: HashSet<(Uuid, Uuid)> =
            added.iter().map(|m| (m.group_id, m.user_id)).collect();
        state.memberships.retain(|m| {
            let key = (m.group_id, m.user_id);
            !self.dropped.contains(&key)
                && !replaced.contains(&key)
                && !forgotten(ResourceKind::Group, m.group_id)
                && !forgotten(ResourceKind::User, m.user_id)
        });
        state.memberships.extend(added);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Ownership;
    use serde_json::json;

    fn principal(kind: ResourceKind, n: u128) -> AwsPrincipal {
        AwsPrincipal {
            kind,
            resource_id: Uuid::from_u128(n),
            aws_id: format!("aws-{n}"),
            ownership: Ownership::Created,
            name: format!("p{n}"),
            pushed: json!({}),
        }
    }

    fn membership(g: u128, u: u128, id: &str) -> AwsMembership {
        AwsMembership {
            group_id: Uuid::from_u128(g),
            user_id: Uuid::from_u128(u),
            membership_id: id.into(),
        }
    }

    fn pairs(state: &SyncState) -> Vec<(u128, u128, String)> {
        let mut out: Vec<_> = state
            .memberships
            .iter()
            .map(|m| (m.group_id.as_u128(), m.user_id.as_u128(), m.membership_id.clone()))
            .collect();
        out.sort();
        out
    }

    /// Users 1, 2, 3; groups 10, 11. Recorded: 10 ∋ 1, 2; 11 ∋ 1, 3.
    fn record() -> SyncState {
        SyncState {
            principals: vec![
                principal(ResourceKind::User, 1),
                principal(ResourceKind::User, 2),
                principal(ResourceKind::User, 3),
                principal(ResourceKind::Group, 10),
                principal(ResourceKind::Group, 11),
            ],
            memberships: vec![
                membership(10, 1, "m1"),
                membership(10, 2, "m2"),
                membership(11, 1, "m3"),
                membership(11, 3, "m4"),
            ],
        }
    }

    #[test]
    fn forgotten_dropped_and_added_are_laid_over_the_record() {
        let mut overlay = DriftOverlay::default();
        assert!(overlay.is_empty());
        // User 2 was deleted by hand; 11 lost 3 by hand; 10 gained 3 by hand.
        overlay.forget(&principal(ResourceKind::User, 2));
        overlay.drop_membership(Uuid::from_u128(11), Uuid::from_u128(3));
        overlay.add_membership(membership(10, 3, "m9"));
        assert!(!overlay.is_empty());
        assert!(overlay.is_forgotten(ResourceKind::User, Uuid::from_u128(2)));
        assert!(!overlay.is_forgotten(ResourceKind::Group, Uuid::from_u128(2)));

        let mut state = record();
        overlay.apply_to(&mut state);
        let ids: Vec<u128> = state.principals.iter().map(|p| p.resource_id.as_u128()).collect();
        assert_eq!(ids, [1, 3, 10, 11]);
        assert_eq!(
            pairs(&state),
            [(10, 1, "m1".to_string()), (10, 3, "m9".to_string()), (11, 1, "m3".to_string())],
            "2's membership went with it, 11 ∌ 3, 10 ∋ 3"
        );
        // Idempotent: a second application changes nothing.
        let once = pairs(&state);
        overlay.apply_to(&mut state);
        assert_eq!(pairs(&state), once);
    }

    #[test]
    fn a_page_gets_only_what_it_holds_both_ends_of() {
        let mut overlay = DriftOverlay::default();
        overlay.add_membership(membership(10, 3, "m9"));
        overlay.forget(&principal(ResourceKind::Group, 11));
        // A page holding user 1 and group 11 only: 10 ∋ 3 is not its to hold; 11 is
        // forgotten, and its membership with it.
        let mut page = SyncState {
            principals: vec![principal(ResourceKind::User, 1), principal(ResourceKind::Group, 11)],
            memberships: vec![membership(11, 1, "m3")],
        };
        overlay.apply_to(&mut page);
        assert_eq!(page.principals.len(), 1);
        assert!(page.memberships.is_empty());
        // A page with both ends gets it.
        let mut page = SyncState {
            principals: vec![principal(ResourceKind::User, 3), principal(ResourceKind::Group, 10)],
            memberships: Vec::new(),
        };
        overlay.apply_to(&mut page);
        assert_eq!(pairs(&page), [(10, 3, "m9".to_string())]);
    }

    #[test]
    fn the_later_of_a_drop_and_an_add_wins_and_nothing_is_a_no_op() {
        let mut overlay = DriftOverlay::default();
        overlay.add_membership(membership(10, 2, "new"));
        overlay.drop_membership(Uuid::from_u128(10), Uuid::from_u128(2));
        let mut state = record();
        overlay.apply_to(&mut state);
        assert!(!pairs(&state).iter().any(|(g, u, _)| (*g, *u) == (10, 2)));
        overlay.add_membership(membership(10, 2, "new"));
        let mut state = record();
        overlay.apply_to(&mut state);
        assert!(pairs(&state).contains(&(10, 2, "new".to_string())), "replaced, not doubled");
        assert_eq!(pairs(&state).len(), 4);

        let mut state = record();
        DriftOverlay::default().apply_to(&mut state);
        assert_eq!(pairs(&state), pairs(&record()));
    }
}
