//! What a run needs of the configuration ([`SyncConfig`]), compiled once from the settings,
//! and the engine's timings ([`SyncTimings`]): `[sync]`'s advanced keys, which tests shorten.

use super::super::access::rules::{AssignmentSettings, PermissionSetSettings};
use super::super::error::SyncError;
use crate::config::SyncSettings;
use crate::mapping::rules::Rules;
use crate::names::NameKey;
use crate::sync::organization::OrganizationCache;
use crate::sync::plan::Policy;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What a run needs of the configuration: `[sync]`, the compiled `[sync.filter]` and
/// `[mapping]`, `[[permission_sets]]` and `[assignments]`.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub sync: SyncSettings,
    pub rules: Arc<Rules>,
    pub permission_sets: Arc<Vec<PermissionSetSettings>>,
    pub assignments: Arc<AssignmentSettings>,
    /// Sources with `adopt_existing` (see [`crate::sync::plan::Policy::adopt_existing`]).
    pub adopt_existing: HashSet<String>,
    /// The fingerprint of these rules, recorded with every run.
    pub rules_fingerprint: String,
    /// How long the lease lasts, how often the journal and the scheduler look.
    pub timings: SyncTimings,
    /// Ids per page of a run that plans everything ([`super::paged`]); not a setting: the
    /// tests make it small so that a small directory spans many pages.
    pub page_size: u32,
    /// The organisation as the latest run read it, shared by the runs of this process.
    pub organization: Arc<OrganizationCache>,
}

impl SyncConfig {
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<SyncConfig> {
        Ok(SyncConfig {
            sync: settings.sync.clone(),
            rules: Arc::new(Rules::compile(&settings.sync.filter, &settings.mapping)?),
            permission_sets: Arc::new(settings.permission_sets.clone()),
            assignments: Arc::new(settings.assignments.clone()),
            adopt_existing: settings
                .sources
                .iter()
                .filter(|(_, s)| s.adopt_existing)
                .map(|(name, _)| name.clone())
                .collect(),
            rules_fingerprint: crate::sync::fingerprint::of(settings),
            timings: SyncTimings::from_settings(&settings.sync)?,
            page_size: super::paged::PAGE_SIZE,
            organization: Arc::new(OrganizationCache::default()),
        })
    }

    /// What the planner needs of it.
    pub fn policy(&self) -> Policy {
        let keys = |names: &[String]| names.iter().map(|n| NameKey::of(n)).collect();
        Policy {
            on_deactivate: self.sync.on_deactivate,
            protected_users: keys(&self.sync.protected_users),
            protected_groups: keys(&self.sync.protected_groups),
            rules: self.rules.clone(),
            adopt_existing: self.adopt_existing.clone(),
        }
    }
}

/// The engine's clocks. The defaults suit production; `[sync]` may change them (advanced:
/// the tests shorten them so that what takes a minute takes seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTimings {
    /// How long a run's lease lasts without renewal (a crashed holder blocks others this
    /// long); it is renewed every third of it. `[sync] lease_seconds`.
    pub lease: Duration,
    /// How often a running run looks at the change journal for changes made while it lasts.
    /// `[sync] journal_poll_milliseconds`.
    pub look_every: Duration,
    /// How often `serve`'s scheduler looks at the change journal's head.
    /// `[sync] scheduler_tick_milliseconds`.
    pub tick: Duration,
}

/// The defaults (the config's), and the ranges `[sync]` may set.
pub use crate::config::{
    DEFAULT_JOURNAL_POLL_MILLISECONDS, DEFAULT_LEASE_SECONDS, DEFAULT_SCHEDULER_TICK_MILLISECONDS,
};
const LEASE_SECONDS: std::ops::RangeInclusive<u64> = 5..=3_600;
const INTERVAL_MILLISECONDS: std::ops::RangeInclusive<u64> = 50..=60_000;

impl Default for SyncTimings {
    fn default() -> Self {
        SyncTimings {
            lease: Duration::from_secs(DEFAULT_LEASE_SECONDS),
            look_every: Duration::from_millis(DEFAULT_JOURNAL_POLL_MILLISECONDS),
            tick: Duration::from_millis(DEFAULT_SCHEDULER_TICK_MILLISECONDS),
        }
    }
}

impl SyncTimings {
    /// The timings `[sync]` sets; a value out of its range is a configuration error naming
    /// the key and the range.
    pub fn from_settings(sync: &SyncSettings) -> Result<SyncTimings, SyncError> {
        let check = |key: &str, value: u64, range: &std::ops::RangeInclusive<u64>, unit: &str| {
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(SyncError::Config(format!(
                    "sync.{key} = {value} is out of range: it must be from {} to {} {unit}",
                    range.start(),
                    range.end()
                )))
            }
        };
        let lease = check("lease_seconds", sync.lease_seconds, &LEASE_SECONDS, "seconds")?;
        let look = check(
            "journal_poll_milliseconds",
            sync.journal_poll_milliseconds,
            &INTERVAL_MILLISECONDS,
            "milliseconds",
        )?;
        let tick = check(
            "scheduler_tick_milliseconds",
            sync.scheduler_tick_milliseconds,
            &INTERVAL_MILLISECONDS,
            "milliseconds",
        )?;
        Ok(SyncTimings {
            lease: Duration::from_secs(lease),
            look_every: Duration::from_millis(look),
            tick: Duration::from_millis(tick),
        })
    }

    /// The lease in whole seconds, as the store takes it.
    pub fn lease_seconds(&self) -> u32 {
        u32::try_from(self.lease.as_secs()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_engines_constants() {
        let timings = SyncTimings::from_settings(&SyncSettings::default()).unwrap();
        assert_eq!(timings, SyncTimings::default());
        assert_eq!(timings.lease, Duration::from_secs(60));
        assert_eq!(timings.look_every, Duration::from_millis(500));
        assert_eq!(timings.tick, Duration::from_millis(500));
        assert_eq!(timings.lease_seconds(), 60);
    }

    #[test]
    fn careless_values_are_refused_naming_the_key() {
        let with = |f: fn(&mut SyncSettings)| {
            let mut s = SyncSettings::default();
            f(&mut s);
            SyncTimings::from_settings(&s).map_err(|e| e.to_string())
        };
        let err = with(|s| s.lease_seconds = 1).unwrap_err();
        assert_eq!(
            err,
            "config: sync.lease_seconds = 1 is out of range: it must be from 5 to 3600 seconds"
        );
        let err = with(|s| s.journal_poll_milliseconds = 0).unwrap_err();
        assert!(err.contains("sync.journal_poll_milliseconds = 0"), "{err}");
        let err = with(|s| s.scheduler_tick_milliseconds = 10).unwrap_err();
        assert!(err.contains("from 50 to 60000 milliseconds"), "{err}");
        let short = with(|s| {
            s.lease_seconds = 5;
            s.journal_poll_milliseconds = 50;
            s.scheduler_tick_milliseconds = 50;
        })
        .unwrap();
        assert_eq!(short.lease, Duration::from_secs(5));
        assert_eq!(short.tick, Duration::from_millis(50));
    }
}
