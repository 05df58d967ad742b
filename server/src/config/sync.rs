//! `[sync]`: when and how carefully the sync engine pushes (the schedule is parsed by the
//! scheduler, the filters compiled by `mapping::rules`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What happens in AWS to a user the IdP deactivated (`active = false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDeactivate {
    /// The user stays (same AWS id, reversible) but leaves every group.
    RemoveMemberships,
    Delete,
    Ignore,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// Whether `serve` syncs into AWS by itself (at start-up, on the schedule, after changes).
    /// Off unless set: an AWS Region in the shell (`AWS_REGION`) must never start pushing into
    /// a real Identity Store. `scimbridge sync` runs whatever this says.
    pub enabled: bool,
    /// Hold principal deletes, membership removals and assignment deletes until an admin
    /// approves them (`scimbridge sync approve RUN_ID`); the rest of each plan still applies.
    pub approve_destructive: bool,
    /// Full reconcile schedule: 6-field cron with seconds, UTC.
    pub schedule: String,
    /// A change reaches AWS this long after the IdP's last request.
    pub debounce_seconds: u64,
    pub on_deactivate: OnDeactivate,
    /// A run that would delete more than this share of the managed principals refuses.
    pub max_delete_fraction: f64,
    /// Below this many managed principals (recorded memberships, assignments) the fraction
    /// guard is off; a group with at least this many members is also guarded on its own.
    pub min_principals_for_guard: u64,
    /// The deletes and removals of the runs in this window (`24h`, `90m`, `7d`) count together
    /// with the run's own, so that spacing them out does not get around the guard.
    pub guard_window: String,
    /// How often `serve` reads AWS Organizations to find accounts created, moved, tagged or
    /// renamed under what the rules target (`10m`; at least `10s`). Change runs reuse a read
    /// this recent.
    pub organization_poll: String,
    /// userNames never adopted, changed or deleted.
    pub protected_users: Vec<String>,
    /// Group displayNames never adopted, changed or deleted.
    pub protected_groups: Vec<String>,
    /// CEL predicates choosing what is synced (`users`, `groups`).
    pub filter: BTreeMap<String, String>,
    /// Advanced: how long a run's sync lease lasts without renewal (5 to 3600).
    pub lease_seconds: u64,
    /// Advanced: how often a running run looks at the change journal (50 to 60000).
    pub journal_poll_milliseconds: u64,
    /// Advanced: how often `serve`'s scheduler looks for pending changes and due runs (50 to
    /// 60000).
    pub scheduler_tick_milliseconds: u64,
}

/// The defaults of the advanced timings (`crate::sync::run::SyncTimings` checks their ranges).
pub const DEFAULT_LEASE_SECONDS: u64 = 60;
pub const DEFAULT_JOURNAL_POLL_MILLISECONDS: u64 = 500;
pub const DEFAULT_SCHEDULER_TICK_MILLISECONDS: u64 = 500;

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            enabled: false,
            approve_destructive: false,
            schedule: "0 0 3 * * *".to_owned(),
            debounce_seconds: 5,
            on_deactivate: OnDeactivate::RemoveMemberships,
            max_delete_fraction: 0.10,
            min_principals_for_guard: 20,
            guard_window: "24h".to_owned(),
            organization_poll: "10m".to_owned(),
            protected_users: Vec::new(),
            protected_groups: Vec::new(),
            filter: BTreeMap::new(),
            lease_seconds: DEFAULT_LEASE_SECONDS,
            journal_poll_milliseconds: DEFAULT_JOURNAL_POLL_MILLISECONDS,
            scheduler_tick_milliseconds: DEFAULT_SCHEDULER_TICK_MILLISECONDS,
        }
    }
}

impl SyncSettings {
    /// `organization_poll` as a duration (validated at load).
    pub fn organization_poll(&self) -> std::time::Duration {
        humantime::parse_duration(&self.organization_poll)
            .unwrap_or(std::time::Duration::from_secs(600))
    }

    /// `guard_window` as a duration (validated at load).
    pub fn guard_window(&self) -> std::time::Duration {
        humantime::parse_duration(&self.guard_window)
            .unwrap_or(std::time::Duration::from_secs(86_400))
    }
}
