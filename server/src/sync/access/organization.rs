//! What a run reads of the AWS organisation before it plans the assignments: the tree, with
//! its management account (assignments into it are flagged), when a rule targets units, tags
//! or account names. Rules of explicit accounts alone cost no Organizations call. A read that
//! fails leaves the tree unknown: the rules that need it are then unresolved and delete
//! nothing ([`super::plan`]).

use super::rules::AssignmentSettings;
use super::run::AccessRun;
use crate::sync::organization::{Freshness, OrganizationCache};
use crate::sync::target::Organizations;

impl AccessRun<'_> {
    pub async fn read_organization(
        &mut self,
        org: &dyn Organizations,
        cache: &OrganizationCache,
        rules: &AssignmentSettings,
        freshness: Freshness,
    ) {
        if !rules.reads_organization() {
            return;
        }
        match cache.tree(org, rules.reads_account_tags(), freshness).await {
            Ok(tree) => {
                self.management_account = tree.management_account.clone();
                self.organization = Some(tree);
            }
            Err(e) => self.fail("(organisation)".to_owned(), e.to_string()),
        }
    }
}
