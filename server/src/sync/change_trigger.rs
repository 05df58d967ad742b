//! When the serving scheduler starts a change run: the pending set (the SCIM resources changed
//! and not yet covered by a successful run, `sync_pending`) is not empty and has been quiet for
//! `debounce_seconds`.
//!
//! The pending set replaces a cursor over the change journal's head: on PostgreSQL a write
//! holding seq 10 can commit after seq 11 is visible, and a head that moved to 11 never shows
//! 10. A pending row stays until a run that read it succeeds, so a late commit is simply still
//! pending; this trigger only has to notice that the set is not empty.

use crate::store::{PendingSummary, RunStatus, Timestamp};
use std::time::{Duration, Instant};

/// Watches the pending set across scheduler ticks.
#[derive(Debug)]
pub struct ChangeTrigger {
    debounce: Duration,
    /// The pending set as last seen, and when this replica saw it change (set back by the
    /// newest change's age when first seen: a replica that looks in late need not wait again).
    seen: PendingSummary,
    changed_at: Instant,
    /// The pending set a run of this replica left as it found it (`partial` or `refused`: it
    /// clears nothing): no change run for it again until it changes. A full run, an admin's
    /// run or the next change retries it.
    attempted: Option<PendingSummary>,
}

impl ChangeTrigger {
    pub fn new(debounce: Duration, now: Instant) -> ChangeTrigger {
        ChangeTrigger {
            debounce,
            seen: PendingSummary::default(),
            changed_at: now,
            attempted: None,
        }
    }

    /// Records the pending set as read now (`wall` is the time of the read, to age the newest
    /// change by).
    pub fn observe(&mut self, pending: PendingSummary, wall: Timestamp, now: Instant) {
        if pending == self.seen {
            return;
        }
        let age = pending
            .newest_at
            .and_then(|t| (wall - t).to_std().ok())
            .unwrap_or_default()
            .min(self.debounce);
        self.seen = pending;
        self.changed_at = now.checked_sub(age).unwrap_or(now);
    }

    /// The pending set as last observed.
    pub fn seen(&self) -> PendingSummary {
        self.seen
    }

    /// Whether a change run is due: something is pending, quiet for the debounce, and not what
    /// a run of this replica already left pending.
    pub fn due(&self, now: Instant) -> bool {
        !self.seen.is_empty()
            && self.attempted != Some(self.seen)
            && now.duration_since(self.changed_at) >= self.debounce
    }

    /// A run (of any kind) ended with `status`, having started when the pending set was
    /// `before`. A failed run is retried by the scheduler's own pause, not here.
    pub fn ran(&mut self, before: PendingSummary, status: RunStatus) {
        self.attempted = match status {
            RunStatus::Partial | RunStatus::Refused => Some(before),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBOUNCE: Duration = Duration::from_secs(5);

    fn pending(count: i64, newest_mark: i64, newest_at: Timestamp) -> PendingSummary {
        PendingSummary { count, newest_mark, newest_at: Some(newest_at) }
    }

    #[test]
    fn due_once_the_pending_set_has_been_quiet_for_the_debounce() {
        let (t0, wall) = (Instant::now(), crate::store::now());
        let mut trigger = ChangeTrigger::new(DEBOUNCE, t0);
        trigger.observe(PendingSummary::default(), wall, t0);
        assert!(!trigger.due(t0 + DEBOUNCE * 2), "nothing pending");
        trigger.observe(pending(1, 10, wall), wall, t0);
        assert!(!trigger.due(t0 + Duration::from_secs(4)));
        // Another change restarts the wait.
        trigger.observe(pending(2, 11, wall), wall, t0 + Duration::from_secs(4));
        assert!(!trigger.due(t0 + Duration::from_secs(8)));
        assert!(trigger.due(t0 + Duration::from_secs(9)));
    }

    #[test]
    fn a_change_already_old_when_first_seen_is_due_at_once() {
        let (t0, wall) = (Instant::now() + DEBOUNCE, crate::store::now());
        let mut trigger = ChangeTrigger::new(DEBOUNCE, t0);
        let old = wall - chrono::TimeDelta::seconds(60);
        trigger.observe(pending(1, 10, old), wall, t0);
        assert!(trigger.due(t0));
        // A change 2 s old waits 3 s more; one from a clock ahead of ours waits the debounce.
        trigger.observe(pending(2, 11, wall - chrono::TimeDelta::seconds(2)), wall, t0);
        assert!(!trigger.due(t0 + Duration::from_secs(2)));
        assert!(trigger.due(t0 + Duration::from_secs(3)));
        trigger.observe(pending(3, 12, wall + chrono::TimeDelta::seconds(30)), wall, t0);
        assert!(!trigger.due(t0 + Duration::from_secs(4)));
        assert!(trigger.due(t0 + DEBOUNCE));
    }

    #[test]
    fn a_set_a_partial_or_refused_run_left_waits_for_a_change_but_a_late_commit_is_due() {
        let (t0, wall) = (Instant::now(), crate::store::now());
        let old = wall - chrono::TimeDelta::seconds(60);
        let mut trigger = ChangeTrigger::new(DEBOUNCE, t0);
        let before = pending(2, 11, old);
        trigger.observe(before, wall, t0);
        assert!(trigger.due(t0));
        trigger.ran(before, RunStatus::Refused);
        assert!(!trigger.due(t0 + DEBOUNCE * 10), "the same set again");
        // A write with a lower seq (10) that committed late: the set changed, so it is due.
        let late = PendingSummary { count: 3, ..before };
        trigger.observe(late, wall, t0 + DEBOUNCE);
        assert!(trigger.due(t0 + DEBOUNCE));
        // A succeeded run that left something pending (a change made while it ran) is followed.
        trigger.ran(late, RunStatus::Succeeded);
        let during = pending(1, 12, old);
        trigger.observe(during, wall, t0 + DEBOUNCE);
        assert!(trigger.due(t0 + DEBOUNCE));
    }
}
