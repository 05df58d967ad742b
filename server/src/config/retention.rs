//! `[retention]`: how long the change journal, the audit log and the run records are kept.
//! `crate::sync::retention` checks the ranges and prunes (docs/operations.md, "Retention").

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Change-journal rows older than this many days go, once a finished run has covered them.
    pub journal_days: u64,
    /// Audit-log rows older than this many days go.
    pub audit_days: u64,
    /// Run records kept, newest first (and beyond them, every run something still reads).
    pub runs_keep: u64,
    /// Advanced: how often `serve` prunes (the first time a minute after start, or sooner).
    pub interval_seconds: u64,
}

/// A month of the journal: what the IdPs sent stays readable for investigations long after
/// AWS has it, and a month of rows is small next to the resources themselves.
pub const DEFAULT_JOURNAL_DAYS: u64 = 30;
/// A year of the audit log, what audits usually ask for.
pub const DEFAULT_AUDIT_DAYS: u64 = 365;
/// About a month of hourly change runs, or three years of daily full runs.
pub const DEFAULT_RUNS_KEEP: u64 = 1000;
pub const DEFAULT_RETENTION_INTERVAL_SECONDS: u64 = 3600;

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            journal_days: DEFAULT_JOURNAL_DAYS,
            audit_days: DEFAULT_AUDIT_DAYS,
            runs_keep: DEFAULT_RUNS_KEEP,
            interval_seconds: DEFAULT_RETENTION_INTERVAL_SECONDS,
        }
    }
}
