//! What AWS holds already: who holds each permission set in an account (or each application),
//! read once per run; assignments recorded and since removed by hand (drift); and creates a
//! rule wants that AWS holds already, which are recorded as foreign and never deleted.

use super::plan::Assign;
use super::record::{detail, kind_name, label_assign};
use super::run::AccessRun;
use crate::store::{
    AssignmentKey, AssignmentKind, AssignmentRecord, AssignmentState, PrincipalType,
};
use crate::sync::target::AwsError;
use std::collections::{BTreeSet, HashMap, HashSet};

impl AccessRun<'_> {
    /// Who holds the permission set in the account (or the application), read once per run.
    pub(super) async fn holders(
        &mut self,
        kind: AssignmentKind,
        target: &str,
        permission_set_arn: &str,
    ) -> Result<&HashSet<(PrincipalType, String)>, AwsError> {
        let key = (target.to_owned(), permission_set_arn.to_owned());
        if !self.listings.contains_key(&key) {
            let listed = match kind {
                AssignmentKind::Account => {
                    self.sso.list_account_assignments(target, permission_set_arn).await?
                }
                AssignmentKind::Application => {
                    self.sso.list_application_assignments(target).await?
                }
            };
            self.listings.insert(key.clone(), listed.into_iter().collect());
        }
        Ok(&self.listings[&key])
    }

    /// A full run: assignments recorded but no longer in AWS (removed by hand) are forgotten,
    /// so the plan creates those still wanted again.
    pub async fn repair_drift(&mut self) -> anyhow::Result<()> {
        let pairs: BTreeSet<(AssignmentKind, String, String)> = self
            .state
            .assignments
            .iter()
            .filter(|r| matches!(r.state, AssignmentState::Created | AssignmentState::Foreign))
            .map(|r| (r.key.kind, r.key.target.clone(), r.key.permission_set_arn.clone()))
            .collect();
        for (kind, target, arn) in pairs {
            let holders = match self.holders(kind, &target, &arn).await {
                Ok(h) => h.clone(),
                // The permission set is gone: so are its assignments.
                Err(AwsError::NotFound { .. }) => HashSet::new(),
                Err(e) => return Err(e.into()),
            };
            let vanished: Vec<AssignmentKey> = self
                .state
                .assignments
                .iter()
                .filter(|r| {
                    r.key.kind == kind && r.key.target == target && r.key.permission_set_arn == arn
                })
                .filter(|r| matches!(r.state, AssignmentState::Created | AssignmentState::Foreign))
                .filter(|r| !holders.contains(&(r.key.principal_type, r.key.principal_id.clone())))
                .map(|r| r.key.clone())
                .collect();
            for key in vanished {
                tracing::warn!(
                    ?key,
                    "assignment removed outside the bridge; it will be made again if a rule wants it"
                );
                self.count("drift_recreated_assignment");
                self.remove_row(&key).await?;
            }
        }
        Ok(())
    }

    /// The creates that AWS does not hold already. One it holds existed before any rule wanted
    /// it (the bridge records what it creates before creating it): recorded as foreign, never
    /// deleted. Nothing is assigned yet to a principal or permission set this run created, and a
    /// permission set not provisioned to an account has no assignment there, so only the rest
    /// is looked up, one listing per account and permission set. A look-up AWS refuses (an
    /// application that does not exist, a permission set deleted meanwhile) fails the
    /// assignments it was for, not the run.
    pub(super) async fn claim_existing(
        &mut self,
        assign: &[Assign],
    ) -> anyhow::Result<Vec<(Assign, AssignmentKey)>> {
        let mut provisioned: HashMap<String, Result<HashSet<String>, AwsError>> = HashMap::new();
        let mut out = Vec::new();
        for a in assign {
            // A principal or permission set whose create failed: reported already.
            let Some(key) = a.key() else { continue };
            let new_set = a.permission_set.as_ref().is_some_and(|n| self.created_sets.contains(n));
            let new_principal = self.created_principals.contains(&key.principal_id);
            let may_exist = match key.kind {
                _ if new_principal => Ok(false),
                AssignmentKind::Application => Ok(true),
                AssignmentKind::Account if new_set => Ok(false),
                AssignmentKind::Account => {
                    if !provisioned.contains_key(&key.permission_set_arn) {
                        let accounts = self
                            .sso
                            .provisioned_accounts(&key.permission_set_arn)
                            .await
                            .map(|a| a.into_iter().collect());
                        provisioned.insert(key.permission_set_arn.clone(), accounts);
                    }
                    match &provisioned[&key.permission_set_arn] {
                        Ok(accounts) => Ok(accounts.contains(&key.target)),
                        Err(e) => Err(e.clone()),
                    }
                }
            };
            let held = match may_exist {
                Ok(false) => Ok(false),
                Ok(true) => self
                    .holders(key.kind, &key.target, &key.permission_set_arn)
                    .await
                    .map(|h| h.contains(&(key.principal_type, key.principal_id.clone()))),
                Err(e) => Err(e),
            };
            match held {
                Ok(false) => out.push((a.clone(), key)),
                Ok(true) => {
                    self.put_row(AssignmentRecord {
                        key: key.clone(),
                        state: AssignmentState::Foreign,
                        request_id: None,
                    })
                    .await?;
                    self.count("found_existing_assignment");
                    self.audit(
                        "found_existing",
                        kind_name(key.kind),
                        &label_assign(a),
                        Some(&key.principal_id),
                        detail(a, &key),
                    )
                    .await?;
                }
                Err(e) => {
                    if matches!(e, AwsError::NotFound { .. }) {
                        self.forget_permission_set_arn(&key.permission_set_arn).await?;
                    }
                    self.create_failed.insert(key.principal_id.clone());
                    self.absorb_item(label_assign(a), e)?;
                }
            }
        }
        Ok(out)
    }
}
