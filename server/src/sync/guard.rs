//! The delete guard: a run that would take away more than `max_delete_fraction` of what the
//! bridge manages is refused (exit 3, status `refused`) unless forced. It weighs access taken
//! away, not only principals deleted:
//! - users and groups deleted, of the managed principals;
//! - memberships removed (a group emptied by a `PUT` without `members`, an IdP push of `[]`,
//!   deactivations under `remove_memberships`), of the recorded memberships, and of each group
//!   of at least `min_principals_for_guard` members on its own;
//! - assignments deleted, of those the bridge made.
//!
//! What the runs of the last `guard_window` deleted counts together with the run's own, so
//! that deletes spaced further apart than the debounce are still seen together; a forced run
//! ends the window (the admin accepted what it deleted).

use super::access::plan::AccessPlan;
use super::plan::{Action, Plan};
use crate::config::SyncSettings;
use crate::store::Removals;
use std::collections::HashMap;
use uuid::Uuid;

/// At most this many names are listed in a refusal.
const NAMES_SHOWN: usize = 5;

/// Why the principal and membership changes of `plan` must not be applied, if they must not.
/// `window`: what recent runs (and this run, before a re-plan) already deleted and removed.
pub fn principals(
    plan: &Plan,
    window: &Removals,
    settings: &SyncSettings,
    force: bool,
) -> Option<String> {
    if force {
        return None;
    }
    let deleted: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let deletes = Share {
        take: Take::Delete("managed principals"),
        planned: &deleted,
        window: window.principals,
        before: plan.managed as u64,
    };
    if !deleted.is_empty()
        && let Some(refusal) = deletes.refusal(settings)
    {
        return Some(refusal);
    }
    let mut removed: Vec<String> = Vec::new();
    let mut per_group: HashMap<Uuid, (&str, Vec<&str>)> = HashMap::new();
    for a in &plan.actions {
        if let Action::RemoveMember { group, user, group_id, .. } = a {
            removed.push(format!("{user} from {group}"));
            per_group.entry(*group_id).or_insert_with(|| (group, Vec::new())).1.push(user);
        }
    }
    if removed.is_empty() {
        return None;
    }
    let names: Vec<&str> = removed.iter().map(String::as_str).collect();
    let overall = Share {
        take: Take::Remove("recorded group memberships"),
        planned: &names,
        window: window.memberships,
        before: plan.memberships as u64,
    };
    if let Some(refusal) = overall.refusal(settings) {
        return Some(refusal);
    }
    // One group emptied in a large directory is still a mass removal for that group.
    let mut groups: Vec<_> = per_group.into_iter().collect();
    groups.sort_by_key(|(_, (_, users))| std::cmp::Reverse(users.len()));
    for (id, (group, users)) in groups {
        let unit = format!("members of group {group:?}");
        let share = Share {
            take: Take::Remove(&unit),
            planned: &users,
            window: 0,
            before: plan.members_per_group.get(&id).copied().unwrap_or(0) as u64,
        };
        if let Some(refusal) = share.refusal(settings) {
            return Some(refusal);
        }
    }
    None
}

/// Why the assignment deletes of `plan` must not be applied, if they must not.
pub fn assignments(
    plan: &AccessPlan,
    window: &Removals,
    settings: &SyncSettings,
    force: bool,
) -> Option<String> {
    if force || plan.unassign.is_empty() {
        return None;
    }
    let names: Vec<String> = plan
        .unassign
        .iter()
        .map(|u| match &u.permission_set {
            Some(set) => format!("{set} of {} in {}", u.principal, u.key.target),
            None => format!("{} in {}", u.principal, u.key.target),
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Share {
        take: Take::Delete("assignments the bridge made"),
        planned: &names,
        window: window.assignments,
        before: plan.managed as u64,
    }
    .refusal(settings)
}

/// A share of something the bridge manages that a run would take away.
struct Share<'a> {
    take: Take<'a>,
    /// What this run would take away, by name.
    planned: &'a [&'a str],
    /// What recent runs took away already.
    window: u64,
    /// How many there are now.
    before: u64,
}

/// What a run would do, and to what (a plural noun: `managed principals`).
enum Take<'a> {
    Delete(&'a str),
    Remove(&'a str),
}

impl Take<'_> {
    fn verb(&self) -> &'static str {
        match self {
            Take::Delete(_) => "delete",
            Take::Remove(_) => "remove",
        }
    }

    fn unit(&self) -> &str {
        match self {
            Take::Delete(unit) | Take::Remove(unit) => unit,
        }
    }
}

impl Share<'_> {
    fn refusal(&self, settings: &SyncSettings) -> Option<String> {
        // What there was when the window began: what is left plus what the window took.
        let base = self.before + self.window;
        let taken = self.planned.len() as u64 + self.window;
        if base == 0 || base < settings.min_principals_for_guard {
            return None;
        }
        let fraction = taken as f64 / base as f64;
        if fraction <= settings.max_delete_fraction {
            return None;
        }
        let mut shown: Vec<String> =
            self.planned.iter().take(NAMES_SHOWN).map(|n| format!("{n:?}")).collect();
        if self.planned.len() > NAMES_SHOWN {
            shown.push(format!("and {} more", self.planned.len() - NAMES_SHOWN));
        }
        let recent = if self.window > 0 {
            format!(
                ", counted with the {} that runs of the last {} took away",
                self.window, settings.guard_window
            )
        } else {
            String::new()
        };
        Some(format!(
            "refused: the run would {} {} of {base} {}{recent} ({:.0}% > max_delete_fraction \
             {:.0}%): {}. Nothing was changed. Check the IdP and the rules; if it is meant, run \
             `scimbridge sync --force` or POST /admin/v1/sync with {{\"force\": true}}",
            self.take.verb(),
            self.planned.len(),
            self.take.unit(),
            fraction * 100.0,
            settings.max_delete_fraction * 100.0,
            shown.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::Skipped;

    fn remove(group: &str, group_id: u128, user: &str) -> Action {
        Action::RemoveMember {
            group: group.into(),
            user: user.into(),
            group_id: Uuid::from_u128(group_id),
            user_id: Uuid::now_v7(),
            membership_id: "m".into(),
        }
    }

    fn plan(actions: Vec<Action>, memberships: usize, groups: &[(u128, usize)]) -> Plan {
        Plan {
            actions,
            skipped: Vec::<Skipped>::new(),
            filter_failures: Vec::new(),
            managed: 100,
            memberships,
            members_per_group: groups.iter().map(|(g, n)| (Uuid::from_u128(*g), *n)).collect(),
        }
    }

    #[test]
    fn emptying_one_large_group_is_refused_in_a_large_directory() {
        let settings = SyncSettings::default();
        let actions = (0..25).map(|i| remove("Engineering", 1, &format!("u{i}"))).collect();
        // 25 of 10,000 memberships overall is little; all 25 of the group is not.
        let p = plan(actions, 10_000, &[(1, 25)]);
        let refusal = principals(&p, &Removals::default(), &settings, false).expect("refused");
        assert!(refusal.contains("remove 25 of 25 members of group \"Engineering\""), "{refusal}");
        assert!(refusal.contains("and 20 more"), "{refusal}");
        assert!(refusal.contains("--force"), "{refusal}");
        assert!(principals(&p, &Removals::default(), &settings, true).is_none());
    }

    #[test]
    fn a_small_group_is_judged_with_all_memberships() {
        let settings = SyncSettings::default();
        let actions: Vec<Action> = (0..12).map(|i| remove("Team", 1, &format!("u{i}"))).collect();
        // 12 members: below min_principals_for_guard for the group alone, but 12 of 22
        // memberships overall.
        let p = plan(actions.clone(), 22, &[(1, 12), (2, 10)]);
        let refusal = principals(&p, &Removals::default(), &settings, false).expect("refused");
        assert!(refusal.contains("remove 12 of 22 recorded group memberships"), "{refusal}");
        // One removal of 22 is within the fraction.
        let p = plan(actions[..1].to_vec(), 22, &[(1, 12), (2, 10)]);
        assert!(principals(&p, &Removals::default(), &settings, false).is_none());
    }

    #[test]
    fn removals_spaced_out_count_together_within_the_window() {
        let settings = SyncSettings::default();
        // One membership of 100 now; 10 removed by earlier runs of the window.
        let p = plan(vec![remove("Team", 1, "u")], 100, &[(1, 5)]);
        assert!(principals(&p, &Removals::default(), &settings, false).is_none());
        let window = Removals { memberships: 12, ..Removals::default() };
        let refusal = principals(&p, &window, &settings, false).expect("refused");
        assert!(refusal.contains("counted with the 12 that runs of the last 24h"), "{refusal}");
    }
}
