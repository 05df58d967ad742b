//! The fake's AWS Organizations: a tree of units and accounts under one root, seeded and
//! changed by tests (an account created, tagged, renamed, moved or closed), read through
//! [`Organizations`] as the adapter reads AWS.

use super::{FakeAws, lock, not_found};
use crate::sync::target::{AccountState, AwsError, OrgAccount, OrgUnit, Organizations};
use async_trait::async_trait;
use std::collections::BTreeMap;

pub const FAKE_ROOT: &str = "r-fake";

#[derive(Debug, Clone, PartialEq)]
pub struct FakeAccount {
    pub name: String,
    pub parent: String,
    pub state: AccountState,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeOrganization {
    pub management_account: String,
    /// Unit id → (parent id, name).
    pub units: BTreeMap<String, (String, String)>,
    /// By account id.
    pub accounts: BTreeMap<String, FakeAccount>,
}

impl FakeAws {
    /// An organisation with only its root, managed from `management_account` (itself an
    /// account under the root).
    pub fn seed_organization(&self, management_account: &str) {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            management_account.to_owned(),
            FakeAccount {
                name: "management".into(),
                parent: FAKE_ROOT.into(),
                state: AccountState::Active,
                tags: BTreeMap::new(),
            },
        );
        lock(&self.world).organization = Some(FakeOrganization {
            management_account: management_account.to_owned(),
            units: BTreeMap::new(),
            accounts,
        });
    }

    /// A unit under `parent` (the root or a unit); returns its id.
    pub fn seed_unit(&self, parent: &str, name: &str) -> String {
        let mut w = lock(&self.world);
        // Shaped as AWS's ids are (`ou-<root>-<8 or more>`), so the rules' checks accept them.
        w.next_id += 1;
        let id = format!("ou-fake-{:08}", w.next_id);
        let org = w.organization.as_mut().expect("seed_organization first");
        org.units.insert(id.clone(), (parent.to_owned(), name.to_owned()));
        id
    }

    /// An active account under `parent`, or changes one: moved, renamed, re-tagged.
    pub fn seed_account(&self, id: &str, name: &str, parent: &str, tags: &[(&str, &str)]) {
        let mut w = lock(&self.world);
        let org = w.organization.as_mut().expect("seed_organization first");
        let tags = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let account = FakeAccount {
            name: name.to_owned(),
            parent: parent.to_owned(),
            state: AccountState::Active,
            tags,
        };
        org.accounts.insert(id.to_owned(), account);
    }

    pub fn set_account_state(&self, id: &str, state: AccountState) {
        let mut w = lock(&self.world);
        let org = w.organization.as_mut().expect("seed_organization first");
        if let Some(a) = org.accounts.get_mut(id) {
            a.state = state;
        }
    }

    /// The organisation, or the error AWS gives an account in none.
    fn organization<T>(
        &self,
        operation: &'static str,
        args: &[&str],
        read: impl FnOnce(&FakeOrganization) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        self.enter(operation, args)?;
        let w = lock(&self.world);
        match &w.organization {
            Some(org) => read(org),
            None => Err(AwsError::Configuration {
                operation,
                message: "AWSOrganizationsNotInUseException".into(),
            }),
        }
    }
}

/// Whether `parent` names the root or a unit of `org`.
fn is_parent(org: &FakeOrganization, parent: &str) -> bool {
    parent == FAKE_ROOT || org.units.contains_key(parent)
}

#[async_trait]
impl Organizations for FakeAws {
    async fn management_account(&self) -> Result<String, AwsError> {
        self.organization("DescribeOrganization", &[], |org| Ok(org.management_account.clone()))
    }

    async fn roots(&self) -> Result<Vec<String>, AwsError> {
        self.organization("ListRoots", &[], |_| Ok(vec![FAKE_ROOT.to_owned()]))
    }

    async fn units_under(&self, parent: &str) -> Result<Vec<OrgUnit>, AwsError> {
        const OP: &str = "ListOrganizationalUnitsForParent";
        self.organization(OP, &[parent], |org| {
            if !is_parent(org, parent) {
                return Err(not_found(OP, parent));
            }
            Ok(org
                .units
                .iter()
                .filter(|(_, (p, _))| p == parent)
                .map(|(id, (_, name))| OrgUnit { id: id.clone(), name: name.clone() })
                .collect())
        })
    }

    async fn accounts_under(&self, parent: &str) -> Result<Vec<OrgAccount>, AwsError> {
        const OP: &str = "ListAccountsForParent";
        self.organization(OP, &[parent], |org| {
            if !is_parent(org, parent) {
                return Err(not_found(OP, parent));
            }
            Ok(org
                .accounts
                .iter()
                .filter(|(_, a)| a.parent == parent)
                .map(|(id, a)| OrgAccount { id: id.clone(), name: a.name.clone(), state: a.state })
                .collect())
        })
    }

    async fn account_tags(&self, account: &str) -> Result<BTreeMap<String, String>, AwsError> {
        const OP: &str = "ListTagsForResource";
        self.organization(OP, &[account], |org| {
            org.accounts.get(account).map(|a| a.tags.clone()).ok_or_else(|| not_found(OP, account))
        })
    }
}
