//! The organisation's tree, read whole from its roots down: each account with the units above
//! it, so that "every account under this unit, recursively" is a walk of the account's own
//! path, and the tags only when a rule asks for them (one call per account).

use crate::sync::target::{AccountState, AwsError, Organizations};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// An account as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeAccount {
    pub name: String,
    pub state: AccountState,
    /// The root and units above it, the root first.
    pub path: Vec<String>,
    /// Its tags; empty when they were not read.
    pub tags: BTreeMap<String, String>,
}

/// The organisation as one read found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgTree {
    pub management_account: Option<String>,
    /// Every root and unit id.
    pub parents: BTreeSet<String>,
    /// By account id.
    pub accounts: BTreeMap<String, TreeAccount>,
    /// Whether the tags were read.
    pub with_tags: bool,
}

impl OrgTree {
    /// Reads the tree from its roots, breadth first: per root or unit, its units and its
    /// accounts (paged by the adapter), then each active account's tags when `with_tags`.
    pub async fn read(org: &dyn Organizations, with_tags: bool) -> Result<OrgTree, AwsError> {
        let mut tree = OrgTree {
            management_account: Some(org.management_account().await?),
            with_tags,
            ..OrgTree::default()
        };
        // (parent id, the path down to it, itself included).
        let mut queue: VecDeque<(String, Vec<String>)> =
            org.roots().await?.into_iter().map(|r| (r.clone(), vec![r])).collect();
        while let Some((parent, path)) = queue.pop_front() {
            if !tree.parents.insert(parent.clone()) {
                // A unit listed twice would loop: AWS never does, an emulator might.
                continue;
            }
            for unit in org.units_under(&parent).await? {
                let mut below = path.clone();
                below.push(unit.id.clone());
                queue.push_back((unit.id, below));
            }
            for account in org.accounts_under(&parent).await? {
                tree.accounts.insert(
                    account.id,
                    TreeAccount {
                        name: account.name,
                        state: account.state,
                        path: path.clone(),
                        tags: BTreeMap::new(),
                    },
                );
            }
        }
        if with_tags {
            // Only an active account can be a target: the others' tags are not read.
            let active: Vec<String> = tree.active().map(|(id, _)| id.to_owned()).collect();
            for id in active {
                let tags = org.account_tags(&id).await?;
                if let Some(account) = tree.accounts.get_mut(&id) {
                    account.tags = tags;
                }
            }
        }
        Ok(tree)
    }

    /// The active accounts, by id.
    pub fn active(&self) -> impl Iterator<Item = (&str, &TreeAccount)> {
        self.accounts
            .iter()
            .filter(|(_, a)| a.state == AccountState::Active)
            .map(|(id, a)| (id.as_str(), a))
    }

    pub fn is_management(&self, account: &str) -> bool {
        self.management_account.as_deref() == Some(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::target::fake::FakeAws;
    use crate::sync::target::fake::organizations::FAKE_ROOT;

    #[tokio::test]
    async fn an_account_three_units_down_carries_every_unit_above_it() {
        let aws = FakeAws::new();
        aws.seed_organization("000000000001");
        let top = aws.seed_unit(FAKE_ROOT, "workloads");
        let mid = aws.seed_unit(&top, "prod");
        let deep = aws.seed_unit(&mid, "payments");
        aws.seed_account("111111111111", "payments-prod", &deep, &[("env", "prod")]);
        let tree = OrgTree::read(&aws, false).await.unwrap();
        let account = &tree.accounts["111111111111"];
        assert_eq!(account.path, vec![FAKE_ROOT.to_owned(), top, mid, deep]);
        assert!(account.tags.is_empty(), "tags are read only when asked for");
        assert_eq!(aws.calls_of("ListTagsForResource"), 0);
        assert!(tree.is_management("000000000001"));
        // One listing of units and one of accounts per root and unit.
        assert_eq!(aws.calls_of("ListOrganizationalUnitsForParent"), 4);
        assert_eq!(aws.calls_of("ListAccountsForParent"), 4);
    }

    #[tokio::test]
    async fn tags_are_read_for_active_accounts_only() {
        let aws = FakeAws::new();
        aws.seed_organization("000000000001");
        aws.seed_account("111111111111", "a", FAKE_ROOT, &[("env", "prod")]);
        aws.seed_account("222222222222", "b", FAKE_ROOT, &[("env", "prod")]);
        aws.set_account_state("222222222222", AccountState::Inactive);
        let tree = OrgTree::read(&aws, true).await.unwrap();
        assert_eq!(tree.accounts["111111111111"].tags["env"], "prod");
        assert!(tree.accounts["222222222222"].tags.is_empty());
        // The management account and the active one.
        assert_eq!(aws.calls_of("ListTagsForResource"), 2);
    }

    #[tokio::test]
    async fn an_account_in_no_organisation_is_a_configuration_error() {
        let aws = FakeAws::new();
        let err = OrgTree::read(&aws, false).await.unwrap_err();
        assert!(matches!(err, AwsError::Configuration { .. }), "{err:?}");
    }
}
