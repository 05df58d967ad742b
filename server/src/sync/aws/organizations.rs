//! The Organizations side of the adapter: [`Organizations`] over aws-sdk-organizations, read
//! only, through the same limiter and retries as the other services ([`super::retry`]). The
//! list operations page by 20 (AWS's most for accounts and units).

use super::AwsDirectory;
use crate::sync::target::{AccountState, AwsError, OrgAccount, OrgUnit, Organizations};
use async_trait::async_trait;
use aws_sdk_organizations::operation::list_accounts_for_parent::ListAccountsForParentOutput;
use aws_sdk_organizations::operation::list_organizational_units_for_parent::ListOrganizationalUnitsForParentOutput;
use aws_sdk_organizations::operation::list_roots::ListRootsOutput;
use aws_sdk_organizations::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_organizations::types::{Account, AccountState as SdkState, AccountStatus};
use std::collections::BTreeMap;

/// AWS's largest page for ListAccountsForParent and ListOrganizationalUnitsForParent.
const PAGE: i32 = 20;

/// The account's state: `State` where AWS sends it (since 2025), else the older `Status`.
fn state_of(account: &Account) -> AccountState {
    let active = match (account.state(), account.status()) {
        (Some(state), _) => *state == SdkState::Active,
        (None, Some(status)) => *status == AccountStatus::Active,
        (None, None) => false,
    };
    if active { AccountState::Active } else { AccountState::Inactive }
}

#[async_trait]
impl Organizations for AwsDirectory {
    async fn management_account(&self) -> Result<String, AwsError> {
        const OP: &str = "DescribeOrganization";
        let out = self.call(OP, || self.org.describe_organization().send()).await?;
        out.organization().and_then(|o| o.master_account_id()).map(str::to_owned).ok_or_else(|| {
            AwsError::Invalid {
                operation: OP,
                message: "the answer names no management account".into(),
            }
        })
    }

    async fn roots(&self) -> Result<Vec<String>, AwsError> {
        let list = self.org.list_roots();
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListRoots", send, |page: ListRootsOutput, all| {
            all.extend(page.roots().iter().filter_map(|r| r.id().map(str::to_owned)));
            page.next_token().map(str::to_owned)
        })
        .await
    }

    async fn units_under(&self, parent: &str) -> Result<Vec<OrgUnit>, AwsError> {
        let list =
            self.org.list_organizational_units_for_parent().parent_id(parent).max_results(PAGE);
        let send = |token| list.clone().set_next_token(token).send();
        let take = |page: ListOrganizationalUnitsForParentOutput, all: &mut Vec<OrgUnit>| {
            all.extend(page.organizational_units().iter().filter_map(|u| {
                Some(OrgUnit {
                    id: u.id()?.to_owned(),
                    name: u.name().unwrap_or_default().to_owned(),
                })
            }));
            page.next_token().map(str::to_owned)
        };
        self.all_pages("ListOrganizationalUnitsForParent", send, take).await
    }

    async fn accounts_under(&self, parent: &str) -> Result<Vec<OrgAccount>, AwsError> {
        let list = self.org.list_accounts_for_parent().parent_id(parent).max_results(PAGE);
        let send = |token| list.clone().set_next_token(token).send();
        let take = |page: ListAccountsForParentOutput, all: &mut Vec<OrgAccount>| {
            all.extend(page.accounts().iter().filter_map(|a| {
                Some(OrgAccount {
                    id: a.id()?.to_owned(),
                    name: a.name().unwrap_or_default().to_owned(),
                    state: state_of(a),
                })
            }));
            page.next_token().map(str::to_owned)
        };
        self.all_pages("ListAccountsForParent", send, take).await
    }

    async fn account_tags(&self, account: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let list = self.org.list_tags_for_resource().resource_id(account);
        let send = |token| list.clone().set_next_token(token).send();
        let tags = self
            .all_pages("ListTagsForResource", send, |page: ListTagsForResourceOutput, all| {
                all.extend(page.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())));
                page.next_token().map(str::to_owned)
            })
            .await?;
        Ok(tags.into_iter().collect())
    }
}
