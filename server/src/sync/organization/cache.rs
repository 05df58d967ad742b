//! The organisation as the latest read found it, kept between runs of one process: a change
//! run (an IdP request) reuses a read younger than `[sync] organization_poll` instead of
//! reading a thousand accounts again; full runs and the scheduler's organisation check read
//! it afresh. Resolving against the tree the previous run used gives the same targets it
//! planned, so a reused read never removes what a fresh one would keep.

use super::tree::OrgTree;
use crate::sync::target::{AwsError, Organizations};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct OrganizationCache {
    latest: Mutex<Option<Read>>,
}

#[derive(Debug, Clone)]
struct Read {
    at: Instant,
    tree: Arc<OrgTree>,
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Read now (a full run, the organisation check).
    Now,
    /// A read at most this old will do (a change run).
    Within(Duration),
}

impl OrganizationCache {
    /// The organisation with the tags when `with_tags`: the latest read when it is fresh
    /// enough (and has the tags if asked for), else a new one, kept for the next run.
    pub async fn tree(
        &self,
        org: &dyn Organizations,
        with_tags: bool,
        freshness: Freshness,
    ) -> Result<Arc<OrgTree>, AwsError> {
        if let Freshness::Within(max_age) = freshness
            && let Some(read) = self.latest()
            && read.at.elapsed() <= max_age
            && (read.tree.with_tags || !with_tags)
        {
            return Ok(read.tree);
        }
        let tree = Arc::new(OrgTree::read(org, with_tags).await?);
        *self.lock_latest() = Some(Read { at: Instant::now(), tree: tree.clone() });
        Ok(tree)
    }

    /// Reads the organisation afresh (the scheduler's check) and says whether it differs from
    /// the latest read in anything a rule can target: an account created, closed, moved,
    /// renamed or re-tagged, a unit created or deleted. A process that has not read it yet
    /// counts as changed.
    pub async fn refresh(
        &self,
        org: &dyn Organizations,
        with_tags: bool,
    ) -> Result<bool, AwsError> {
        let before = self.latest().map(|r| r.tree);
        let now = self.tree(org, with_tags, Freshness::Now).await?;
        Ok(before.is_none_or(|b| {
            b.parents != now.parents
                || b.accounts.len() != now.accounts.len()
                || b.accounts.iter().zip(&now.accounts).any(|((id_b, a_b), (id_n, a_n))| {
                    id_b != id_n
                        || a_b.name != a_n.name
                        || a_b.state != a_n.state
                        || a_b.path != a_n.path
                        // Tags compared only where both reads have them.
                        || (b.with_tags && now.with_tags && a_b.tags != a_n.tags)
                })
        }))
    }

    fn latest(&self) -> Option<Read> {
        self.lock_latest().clone()
    }

    fn lock_latest(&self) -> std::sync::MutexGuard<'_, Option<Read>> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::target::AccountState;
    use crate::sync::target::fake::FakeAws;
    use crate::sync::target::fake::organizations::FAKE_ROOT;

    #[tokio::test]
    async fn the_check_finds_accounts_created_moved_retagged_or_closed_and_nothing_else() {
        let aws = FakeAws::new();
        aws.seed_organization("000000000001");
        let unit = aws.seed_unit(FAKE_ROOT, "prod");
        aws.seed_account("111111111111", "a", FAKE_ROOT, &[("env", "dev")]);
        let cache = OrganizationCache::default();
        assert!(cache.refresh(&aws, true).await.unwrap(), "the first read is a change");
        assert!(!cache.refresh(&aws, true).await.unwrap());
        aws.seed_account("111111111111", "a", &unit, &[("env", "dev")]);
        assert!(cache.refresh(&aws, true).await.unwrap(), "moved");
        aws.seed_account("111111111111", "a", &unit, &[("env", "prod")]);
        assert!(cache.refresh(&aws, true).await.unwrap(), "re-tagged");
        aws.set_account_state("111111111111", AccountState::Inactive);
        assert!(cache.refresh(&aws, true).await.unwrap(), "closed");
        aws.seed_account("222222222222", "b", &unit, &[]);
        assert!(cache.refresh(&aws, true).await.unwrap(), "created");
        assert!(!cache.refresh(&aws, true).await.unwrap());
    }

    #[tokio::test]
    async fn a_change_run_reuses_a_recent_read_and_a_full_run_reads_again() {
        let aws = FakeAws::new();
        aws.seed_organization("000000000001");
        aws.seed_account("111111111111", "a", FAKE_ROOT, &[]);
        let cache = OrganizationCache::default();
        let minute = Freshness::Within(Duration::from_secs(60));
        cache.tree(&aws, false, Freshness::Now).await.unwrap();
        assert_eq!(aws.calls_of("ListAccountsForParent"), 1);
        aws.seed_account("222222222222", "b", FAKE_ROOT, &[]);
        let reused = cache.tree(&aws, false, minute).await.unwrap();
        assert_eq!(aws.calls_of("ListAccountsForParent"), 1);
        assert_eq!(reused.accounts.len(), 2, "the management account and a");
        // Tags asked for and not read: read again.
        cache.tree(&aws, true, minute).await.unwrap();
        assert_eq!(aws.calls_of("ListAccountsForParent"), 2);
        let fresh = cache.tree(&aws, false, Freshness::Now).await.unwrap();
        assert_eq!(fresh.accounts.len(), 3);
        assert_eq!(fresh.management_account.as_deref(), Some("000000000001"));
    }
}
