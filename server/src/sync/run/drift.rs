//! A full run's drift repair: the Identity Store is read (pushing the IdP's changes in
//! between, since reading a large one takes minutes) and the record is brought to what AWS
//! has, so that the plan that follows repairs what was changed outside the bridge.
//!
//! It holds the AWS ids of the directory's users and groups, a page of the record and one
//! group's memberships at a time, never the whole record (issue 16): the recorded principals
//! are walked in keyed pages, the memberships group by group. A dry run writes nothing: it
//! returns its repairs as a [`DriftOverlay`] for its plan to lay over the record it reads.

use super::drift_overlay::DriftOverlay;
use super::options::Progress;
use super::state::Run;
use crate::store::{AwsMembership, AwsPrincipal, RecordedMember};
use crate::sync::counts::{self, ActionKind, Counts};
use crate::sync::error::SyncError;
use crate::sync::target::AwsError;
use scim_schema::schema::ResourceKind;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Recorded principals (or memberships) read from the store at a time.
const PAGE: usize = 1_000;
/// AWS ids looked up in the record at a time.
const LOOKUP: usize = 1_000;

/// The AWS ids of the users and groups the Identity Store lists.
struct Listed {
    users: HashSet<String>,
    groups: HashSet<String>,
}

impl Listed {
    fn has(&self, p: &AwsPrincipal) -> bool {
        match p.kind {
            ResourceKind::User => self.users.contains(&p.aws_id),
            ResourceKind::Group => self.groups.contains(&p.aws_id),
        }
    }
}

impl Run<'_> {
    /// Reads the Identity Store (pushing changes in between: reading a large one takes minutes)
    /// and repairs drift: a managed principal deleted outside the bridge is forgotten (and so
    /// re-created), and the memberships of managed groups are taken from AWS (so missing ones
    /// are added again and foreign additions of managed users removed). Users the bridge does
    /// not manage keep their memberships; what this run itself changed after a listing is left
    /// as recorded. A real run writes the repairs and returns an empty overlay; a dry run
    /// returns them.
    pub async fn repair_drift(
        &mut self,
        counts: &mut Counts,
        progress: &dyn Progress,
    ) -> Result<DriftOverlay, SyncError> {
        let mut overlay = DriftOverlay::default();
        progress.phase("reading AWS", 2);
        // The listings take minutes at 100,000 users: the IdP's changes are pushed meanwhile.
        let directory = self.directory;
        let users = self.read_following_lane(directory.list_users()).await?;
        progress.step();
        let groups = self.read_following_lane(directory.list_groups()).await?;
        progress.step();
        let ids = |listed: Vec<crate::sync::target::Listed>| listed.into_iter().map(|l| l.id);
        let listed = Listed { users: ids(users).collect(), groups: ids(groups).collect() };
        // A principal recorded before the listings that they lack was deleted outside the
        // bridge; one a push recorded during them (`newly_recorded`) may simply postdate them.
        let groups = self.forget_vanished(&listed, counts, &mut overlay).await?;
        progress.resize(2 + groups);
        self.drop_unowned(&mut overlay).await?;
        if self.repair_memberships(&listed, &mut overlay, progress).await? {
            // What was pushed meanwhile may have deleted principals with memberships left.
            self.drop_unowned(&mut overlay).await?;
        }
        Ok(overlay)
    }

    /// Forgets the recorded principals the listing lacks, page by page; returns how many
    /// recorded groups are left to read the memberships of.
    async fn forget_vanished(
        &self,
        listed: &Listed,
        counts: &mut Counts,
        overlay: &mut DriftOverlay,
    ) -> Result<u64, SyncError> {
        let mut groups = 0;
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let mut after = None;
            loop {
                let page = self.store.recorded_page(kind, after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.resource_id);
                for p in &page {
                    if listed.has(p) {
                        groups += u64::from(kind == ResourceKind::Group);
                        continue;
                    }
                    if self.apply.newly_recorded.contains(&p.aws_id) {
                        continue;
                    }
                    counts::add(counts, ActionKind::DriftRecreated, 1);
                    tracing::warn!(name = %p.name, aws_id = %p.aws_id, "managed principal deleted outside the bridge; it will be re-created");
                    if self.dry_run {
                        overlay.forget(p);
                    } else {
                        self.store.remove_principal(p.kind, p.resource_id).await?;
                    }
                }
            }
        }
        Ok(groups)
    }

    /// Drops the recorded memberships whose group or user is no longer recorded: those of the
    /// principals just forgotten (a dry run's overlay drops those itself) and any left over.
    async fn drop_unowned(&self, overlay: &mut DriftOverlay) -> Result<(), SyncError> {
        let mut after = None;
        loop {
            let page = self.store.unowned_memberships(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.group_id, last.user_id));
            for m in &page {
                if self.dry_run {
                    overlay.drop_membership(m.group_id, m.user_id);
                } else {
                    self.store.remove_membership(m.group_id, m.user_id).await?;
                }
            }
        }
        Ok(())
    }

    /// Takes the memberships of the listed managed groups from AWS, one group at a time, with
    /// the change lane looked at between groups; true when changes were pushed meanwhile.
    async fn repair_memberships(
        &mut self,
        listed: &Listed,
        overlay: &mut DriftOverlay,
        progress: &dyn Progress,
    ) -> Result<bool, SyncError> {
        let (mut pushed, mut after) = (false, None);
        loop {
            let page = self.store.recorded_page(ResourceKind::Group, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.resource_id);
            // Whether a change was pushed since this page was read.
            let mut stale = false;
            // A group the listing lacks was forgotten (a dry run's) or created by a change
            // pushed since: not judged now.
            for g in page.iter().filter(|g| listed.has(g)) {
                self.check_stop()?;
                if self.follow_lane(false).await? {
                    (stale, pushed) = (true, true);
                }
                // A group a pushed change deleted meanwhile is not read.
                if !stale || self.still_recorded(g).await? {
                    self.repair_group(g, overlay).await?;
                }
                progress.step();
            }
        }
        Ok(pushed)
    }

    async fn still_recorded(&self, g: &AwsPrincipal) -> Result<bool, SyncError> {
        let found = self.store.recorded_ids(g.kind, std::slice::from_ref(&g.aws_id)).await?;
        Ok(found.iter().any(|(_, id)| *id == g.resource_id))
    }

    /// Brings one managed group's recorded memberships to its AWS listing.
    async fn repair_group(
        &self,
        g: &AwsPrincipal,
        overlay: &mut DriftOverlay,
    ) -> Result<(), SyncError> {
        let listing = match self.directory.list_memberships(&g.aws_id).await {
            Ok(members) => Some(members),
            // Deleted since the group list was read: not judged now; the next full run sees
            // it gone.
            Err(AwsError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let recorded = self.store.recorded_members(g.resource_id).await?;
        let actual = match &listing {
            Some(listing) => Some(self.managed_members(listing, &recorded, overlay).await?),
            None => None,
        };
        // A member's end is gone when its user is no longer managed (or, in a dry run,
        // forgotten above).
        let judged: Vec<(&AwsMembership, bool)> = recorded
            .iter()
            .map(|r| {
                let user = r.membership.user_id;
                let managed =
                    r.user_aws_id.is_some() && !overlay.is_forgotten(ResourceKind::User, user);
                (&r.membership, managed)
            })
            .collect();
        let repair =
            judge(g.resource_id, &judged, actual.as_ref(), &self.apply.touched_memberships);
        for (group_id, user_id) in repair.drop {
            if self.dry_run {
                overlay.drop_membership(group_id, user_id);
            } else {
                self.store.remove_membership(group_id, user_id).await?;
            }
        }
        for m in repair.add {
            if self.dry_run {
                overlay.add_membership(m);
            } else {
                self.store.put_membership(&m).await?;
            }
        }
        Ok(())
    }

    /// The memberships of `listing` (membership id, AWS user id) whose user is managed, by
    /// SCIM user id. The group's recorded members name most of them; the rest (added by hand)
    /// are looked up in the record, a bounded number of ids at a time.
    async fn managed_members(
        &self,
        listing: &[(String, String)],
        recorded: &[RecordedMember],
        overlay: &DriftOverlay,
    ) -> Result<HashMap<Uuid, String>, SyncError> {
        let known: HashMap<&str, Uuid> = recorded
            .iter()
            .filter_map(|r| r.user_aws_id.as_deref().map(|aws| (aws, r.membership.user_id)))
            .collect();
        let unknown: Vec<String> = listing
            .iter()
            .map(|(_, aws_user)| aws_user)
            .filter(|aws_user| !known.contains_key(aws_user.as_str()))
            .collect::<HashSet<_>>()
            .into_iter()
            .cloned()
            .collect();
        let mut found = HashMap::new();
        for chunk in unknown.chunks(LOOKUP) {
            found.extend(self.store.recorded_ids(ResourceKind::User, chunk).await?);
        }
        Ok(listing
            .iter()
            .filter_map(|(membership_id, aws_user)| {
                let user = known.get(aws_user.as_str()).or_else(|| found.get(aws_user))?;
                let managed = !overlay.is_forgotten(ResourceKind::User, *user);
                managed.then(|| (*user, membership_id.clone()))
            })
            .collect())
    }
}

/// What one group's drift repair changes in its record.
#[derive(Debug, Default, PartialEq, Eq)]
struct GroupRepair {
    /// (group, user) of the recorded memberships to drop.
    drop: Vec<(Uuid, Uuid)>,
    add: Vec<AwsMembership>,
}

/// One group's repair. `recorded`: its recorded memberships, each with whether its user is
/// still managed; `actual`: the memberships AWS lists between the group and managed users, by
/// user (None: the group could not be listed, so only memberships whose end is gone are
/// dropped); `touched`: the memberships this run changed itself, which its listing may predate
/// and which are left as recorded.
fn judge(
    group_id: Uuid,
    recorded: &[(&AwsMembership, bool)],
    actual: Option<&HashMap<Uuid, String>>,
    touched: &HashSet<(Uuid, Uuid)>,
) -> GroupRepair {
    let mut repair = GroupRepair::default();
    for (m, managed) in recorded {
        let key = (m.group_id, m.user_id);
        let lacked = actual.is_some_and(|a| !a.contains_key(&m.user_id)) && !touched.contains(&key);
        if !managed || lacked {
            repair.drop.push(key);
        }
    }
    let Some(actual) = actual else { return repair };
    let recorded: HashSet<Uuid> = recorded.iter().map(|(m, _)| m.user_id).collect();
    let mut add: Vec<AwsMembership> = actual
        .iter()
        .filter(|(user_id, _)| {
            !recorded.contains(*user_id) && !touched.contains(&(group_id, **user_id))
        })
        .map(|(user_id, membership_id)| AwsMembership {
            group_id,
            user_id: *user_id,
            membership_id: membership_id.clone(),
        })
        .collect();
    add.sort_by_key(|m| m.user_id);
    repair.add = add;
    repair
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn m(g: u128, u: u128) -> AwsMembership {
        AwsMembership { group_id: id(g), user_id: id(u), membership_id: format!("m{g}-{u}") }
    }

    #[test]
    fn a_group_is_brought_to_its_listing_except_what_the_run_touched() {
        // Recorded: 1 (in AWS), 2 (removed by hand), 3 (its user no longer managed), 4 (removed
        // by hand, but this run added it after the listing). AWS: 1, 5 (added by hand), 6
        // (this run removed it after the listing).
        let recorded = [m(10, 1), m(10, 2), m(10, 3), m(10, 4)];
        let judged: Vec<(&AwsMembership, bool)> =
            recorded.iter().map(|r| (r, r.user_id != id(3))).collect();
        let actual: HashMap<Uuid, String> =
            [(id(1), "m10-1".into()), (id(5), "hand".into()), (id(6), "m10-6".into())].into();
        let touched: HashSet<(Uuid, Uuid)> = [(id(10), id(4)), (id(10), id(6))].into();
        let repair = judge(id(10), &judged, Some(&actual), &touched);
        assert_eq!(repair.drop, [(id(10), id(2)), (id(10), id(3))]);
        let hand = AwsMembership { group_id: id(10), user_id: id(5), membership_id: "hand".into() };
        assert_eq!(repair.add, [hand]);
    }

    #[test]
    fn a_group_that_could_not_be_listed_loses_only_memberships_whose_end_is_gone() {
        let recorded = [m(10, 1), m(10, 3)];
        let judged: Vec<(&AwsMembership, bool)> =
            recorded.iter().map(|r| (r, r.user_id != id(3))).collect();
        let repair = judge(id(10), &judged, None, &HashSet::new());
        assert_eq!(repair, GroupRepair { drop: vec![(id(10), id(3))], add: Vec::new() });
    }
}
