//! A full run's drift repair: the Identity Store is read (pushing the IdP's changes in
//! between, since reading a large one takes minutes) and the record is brought to what AWS
//! has, so that the plan that follows repairs what was changed outside the bridge.

use super::options::Progress;
use super::state::Run;
use crate::store::{AwsMembership, SyncState};
use crate::sync::counts::{self, ActionKind, Counts};
use crate::sync::error::SyncError;
use crate::sync::target::AwsError;
use scim_schema::schema::ResourceKind;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// What a full run read of the Identity Store.
struct Listing {
    users: HashSet<String>,
    groups: HashSet<String>,
    /// Per listed group (AWS id): (membership id, AWS user id).
    memberships: HashMap<String, Vec<(String, String)>>,
}

impl Run<'_> {
    /// Reads the Identity Store (pushing changes in between: reading a large one takes minutes)
    /// and repairs drift: a managed principal deleted outside the bridge is forgotten (and so
    /// re-created), and the memberships of managed groups are taken from AWS (so missing ones
    /// are added again and foreign additions of managed users removed). Users the bridge does
    /// not manage keep their memberships; what this run itself changed after a listing is left
    /// as recorded.
    pub async fn repair_drift(
        &mut self,
        counts: &mut Counts,
        progress: &dyn Progress,
    ) -> Result<(), SyncError> {
        let before = self.state.clone();
        let listing = self.read_directory(&before, progress).await?;
        let mut state = if self.dry_run { before.clone() } else { self.store.sync_state().await? };
        let vanished = forget_vanished(&mut state, &before, &listing);
        for p in &vanished {
            counts::add(counts, ActionKind::DriftRecreated, 1);
            tracing::warn!(name = %p.name, aws_id = %p.aws_id, "managed principal deleted outside the bridge; it will be re-created");
            if !self.dry_run {
                self.store.remove_principal(p.kind, p.resource_id).await?;
            }
        }
        self.repair_memberships(&mut state, &listing).await?;
        self.state = state;
        Ok(())
    }

    /// Takes the memberships of the listed managed groups from AWS into `state` (and the store).
    async fn repair_memberships(
        &mut self,
        state: &mut SyncState,
        listing: &Listing,
    ) -> Result<(), SyncError> {
        let managed = |kind: ResourceKind| -> HashMap<String, Uuid> {
            state
                .principals
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| (p.aws_id.clone(), p.resource_id))
                .collect()
        };
        let (user_of_aws, group_of_aws) =
            (managed(ResourceKind::User), managed(ResourceKind::Group));
        let listed_groups: HashSet<Uuid> =
            listing.memberships.keys().filter_map(|g| group_of_aws.get(g).copied()).collect();
        let mut actual = HashMap::new();
        for (aws_group, members) in &listing.memberships {
            let Some(group_id) = group_of_aws.get(aws_group) else { continue };
            for (membership_id, aws_user) in members {
                if let Some(user_id) = user_of_aws.get(aws_user) {
                    actual.insert((*group_id, *user_id), membership_id.clone());
                }
            }
        }
        let touched = &self.apply.touched_memberships;
        let users: HashSet<Uuid> = user_of_aws.values().copied().collect();
        let groups: HashSet<Uuid> = group_of_aws.values().copied().collect();
        let mut memberships = Vec::new();
        for m in &state.memberships {
            let key = (m.group_id, m.user_id);
            let ends_gone = !groups.contains(&m.group_id) || !users.contains(&m.user_id);
            let judged = listed_groups.contains(&m.group_id) && !touched.contains(&key);
            if ends_gone || (judged && !actual.contains_key(&key)) {
                if !self.dry_run {
                    self.store.remove_membership(m.group_id, m.user_id).await?;
                }
            } else {
                memberships.push(m.clone());
            }
        }
        let recorded: HashSet<(Uuid, Uuid)> =
            state.memberships.iter().map(|m| (m.group_id, m.user_id)).collect();
        for ((group_id, user_id), membership_id) in actual {
            if recorded.contains(&(group_id, user_id)) || touched.contains(&(group_id, user_id)) {
                continue;
            }
            let m = AwsMembership { group_id, user_id, membership_id };
            if !self.dry_run {
                self.store.put_membership(&m).await?;
            }
            memberships.push(m);
        }
        state.memberships = memberships;
        Ok(())
    }

    async fn read_directory(
        &mut self,
        state: &SyncState,
        progress: &dyn Progress,
    ) -> Result<Listing, SyncError> {
        let groups_to_read = state.principals.iter().filter(|p| p.kind == ResourceKind::Group);
        progress.phase("reading AWS", 2 + groups_to_read.count() as u64);
        let users = self.directory.list_users().await?.into_iter().map(|l| l.id).collect();
        let groups: HashSet<String> =
            self.directory.list_groups().await?.into_iter().map(|l| l.id).collect();
        progress.step();
        progress.step();
        let mut memberships = HashMap::new();
        for g in state.principals.iter().filter(|p| p.kind == ResourceKind::Group) {
            self.check_stop()?;
            if self.lane.due(self.store).await? {
                self.push_changes().await?;
            }
            // A group this run deleted meanwhile (a pushed change) is not read.
            let still_managed = self.dry_run
                || self.state.principals.iter().any(|p| p.kind == g.kind && p.aws_id == g.aws_id);
            if groups.contains(&g.aws_id) && still_managed {
                match self.directory.list_memberships(&g.aws_id).await {
                    Ok(members) => {
                        memberships.insert(g.aws_id.clone(), members);
                    }
                    // Deleted since the group list was read: not judged now; the next full run
                    // sees it gone.
                    Err(AwsError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            progress.step();
        }
        Ok(Listing { users, groups, memberships })
    }
}

/// Drops from `state` the principals recorded `before` the listing that AWS no longer lists
/// (deleted outside the bridge), and returns them.
fn forget_vanished(
    state: &mut SyncState,
    before: &SyncState,
    listing: &Listing,
) -> Vec<crate::store::AwsPrincipal> {
    let existed: HashSet<(ResourceKind, &str)> =
        before.principals.iter().map(|p| (p.kind, p.aws_id.as_str())).collect();
    let mut vanished = Vec::new();
    state.principals.retain(|p| {
        let listed = match p.kind {
            ResourceKind::User => &listing.users,
            ResourceKind::Group => &listing.groups,
        };
        let gone = existed.contains(&(p.kind, p.aws_id.as_str())) && !listed.contains(&p.aws_id);
        if gone {
            vanished.push(p.clone());
        }
        !gone
    });
    vanished
}
