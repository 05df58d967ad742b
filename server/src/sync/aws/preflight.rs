//! `scimbridge check`: which Identity Store operations these credentials may call, found
//! without changing anything — reads are made for real, and writes are made on ids that cannot
//! exist, so AWS answers "not found" when the permission is there and "access denied" when it
//! is not. CreateUser and CreateGroup cannot be probed that way (they would create) and are
//! reported as not checked; nor can the SSO Admin writes that create (permission sets,
//! assignments, provisioning).
//!
//! With assignment rules configured, the permission sets they name must exist in AWS (or be
//! declared in `[[permission_sets]]`), and each application is read.

use super::AwsDirectory;
use crate::store::PrincipalType;
use crate::sync::access::rules::{AssignmentSettings, PermissionSetSettings, referenced_only};
use crate::sync::target::{AccountAssignment, AwsError, Change, Directory, SsoAdmin};
use serde_json::json;
use std::collections::BTreeSet;

/// One preflight check: its name and, when it failed, why.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub problem: Option<String>,
}

/// None when AWS authorised the call: it succeeded, or refused it as not found or invalid.
fn permitted(outcome: Result<(), AwsError>) -> Option<String> {
    match outcome {
        Ok(()) | Err(AwsError::NotFound { .. } | AwsError::Invalid { .. }) => None,
        Err(e) => Some(e.to_string()),
    }
}

impl AwsDirectory {
    pub async fn preflight(&self) -> Vec<Check> {
        let nobody = uuid::Uuid::new_v4().to_string();
        let nothing = uuid::Uuid::new_v4().to_string();
        let probe_name = format!("scimbridge-preflight-{nobody}");
        let change = vec![("displayName".to_owned(), Some(json!("scimbridge preflight")))];
        let mut checks = Vec::new();
        let mut record = |operation: &str, outcome: Result<(), AwsError>| {
            let problem = permitted(outcome);
            checks.push(Check { name: format!("identitystore:{operation}"), problem });
        };
        // One page each: the permission is the question, not the directory.
        let (ids, store) = (&self.ids, self.identity_store_id.as_str());
        let users = self
            .call("ListUsers", || ids.list_users().identity_store_id(store).max_results(1).send())
            .await;
        record("ListUsers", users.map(drop));
        let groups = self
            .call("ListGroups", || ids.list_groups().identity_store_id(store).max_results(1).send())
            .await;
        record("ListGroups", groups.map(drop));
        record("ListGroupMemberships", self.list_memberships(&nothing).await.map(drop));
        record("GetUserId", self.find_user(&probe_name).await.map(drop));
        record("GetGroupId", self.find_group(&probe_name).await.map(drop));
        record("UpdateUser", self.update_user(&nobody, &change).await);
        record("DeleteUser", self.delete_user(&nobody).await);
        record("UpdateGroup", self.update_group(&nothing, &change).await);
        record("DeleteGroup", self.delete_group(&nothing).await);
        record("CreateGroupMembership", self.add_member(&nothing, &nobody).await.map(drop));
        record("DeleteGroupMembership", self.remove_member(&nothing).await);
        checks
    }
}

impl AwsDirectory {
    /// The SSO Admin side: permissions, and that what the rules name exists.
    pub async fn access_preflight(
        &self,
        sets: &[PermissionSetSettings],
        rules: &AssignmentSettings,
    ) -> Vec<Check> {
        let mut checks = Vec::new();
        let record = |checks: &mut Vec<Check>, name: &str, outcome: Result<(), AwsError>| {
            checks.push(Check { name: name.to_owned(), problem: permitted(outcome) });
        };
        let arns = match self.list_permission_sets().await {
            Ok(arns) => arns,
            Err(e) => {
                record(&mut checks, "sso:ListPermissionSets", Err(e));
                return checks;
            }
        };
        record(&mut checks, "sso:ListPermissionSets", Ok(()));
        // Names of every permission set (one DescribePermissionSet each).
        let mut names = std::collections::HashMap::new();
        for arn in &arns {
            match self.permission_set_name(arn).await {
                Ok(name) => {
                    names.insert(name, arn.clone());
                }
                Err(e) => {
                    record(&mut checks, "sso:DescribePermissionSet", Err(e));
                    return checks;
                }
            }
        }
        record(&mut checks, "sso:DescribePermissionSet", Ok(()));
        for (name, key) in referenced_only(sets, rules) {
            let problem = (!names.contains_key(&name)).then(|| {
                format!(
                    "{key}: no permission set named {name:?} in the instance; declare it in \
                     [[permission_sets]] to have it created"
                )
            });
            checks.push(Check { name: format!("permission set {name}"), problem });
        }
        let nobody = uuid::Uuid::new_v4().to_string();
        record(
            &mut checks,
            "sso:DescribeAccountAssignmentCreationStatus",
            self.account_assignment_status(&nobody, false).await.map(drop),
        );
        let probe = rules.account.iter().find_map(|r| {
            let arn = names.get(&r.permission_set)?;
            Some(AccountAssignment {
                account: r.accounts.first()?.clone(),
                permission_set_arn: arn.clone(),
                principal_type: PrincipalType::Group,
                principal_id: nobody.clone(),
            })
        });
        if let Some(probe) = probe {
            let arn = &probe.permission_set_arn;
            record(
                &mut checks,
                "sso:ListAccountsForProvisionedPermissionSet",
                self.provisioned_accounts(arn).await.map(drop),
            );
            record(
                &mut checks,
                "sso:ListAccountAssignments",
                self.list_account_assignments(&probe.account, arn).await.map(drop),
            );
            record(
                &mut checks,
                "sso:DeleteAccountAssignment",
                self.account_assignment(&probe, Change::Remove).await.map(drop),
            );
        }
        let applications: BTreeSet<&str> =
            rules.application.iter().map(|r| r.application_arn.as_str()).collect();
        for arn in applications {
            let read = self.list_application_assignments(arn).await;
            let problem = match read {
                Ok(_) => None,
                Err(AwsError::NotFound { message, .. }) => {
                    Some(format!("no application {arn} in the instance ({message})"))
                }
                Err(e) => Some(e.to_string()),
            };
            checks.push(Check { name: format!("sso:ListApplicationAssignments {arn}"), problem });
        }
        checks
    }
}
