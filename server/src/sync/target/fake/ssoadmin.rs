//! The fake's SSO Admin: permission sets held whole, account assignments and provisioning as
//! asynchronous operations ([`FakeAws::set_async_polls`]), applications by ARN.

use super::{Effect, FakeAws, lock, not_found};
use crate::store::PrincipalType;
use crate::sync::target::{
    AccountAssignment, ApplicationAssignment, AwsError, Change, OpStatus, PermissionSetShape,
    PolicyChange, SsoAdmin,
};
use async_trait::async_trait;

#[async_trait]
impl SsoAdmin for FakeAws {
    async fn list_permission_sets(&self) -> Result<Vec<String>, AwsError> {
        self.enter("ListPermissionSets", &[])?;
        Ok(lock(&self.world).permission_sets.keys().cloned().collect())
    }

    async fn permission_set_name(&self, arn: &str) -> Result<String, AwsError> {
        self.with_set("DescribePermissionSet", arn, |s| s.name.clone())
    }

    async fn read_permission_set(&self, arn: &str) -> Result<PermissionSetShape, AwsError> {
        self.with_set("DescribePermissionSet", arn, |s| s.shape.clone())
    }

    async fn create_permission_set(
        &self,
        name: &str,
        shape: &PermissionSetShape,
    ) -> Result<String, AwsError> {
        const OP: &str = "CreatePermissionSet";
        self.enter(OP, &[name])?;
        if lock(&self.world).permission_sets.values().any(|s| s.name == name) {
            let message = format!("permission set {name} already exists");
            return Err(AwsError::Conflict { operation: OP, message });
        }
        // Attributes only: policies are attached by their own calls.
        let attributes = PermissionSetShape {
            description: shape.description.clone(),
            session_duration: shape.session_duration.clone(),
            relay_state: shape.relay_state.clone(),
            ..Default::default()
        };
        Ok(self.seed_permission_set(name, attributes))
    }

    async fn update_permission_set(
        &self,
        arn: &str,
        shape: &PermissionSetShape,
    ) -> Result<(), AwsError> {
        self.with_set("UpdatePermissionSet", arn, |s| {
            s.shape.description = shape.description.clone();
            s.shape.session_duration = shape.session_duration.clone();
            s.shape.relay_state = shape.relay_state.clone();
        })
    }

    async fn change_policy(&self, arn: &str, change: PolicyChange<'_>) -> Result<(), AwsError> {
        self.with_set(change.operation(), arn, |s| {
            let shape = &mut s.shape;
            match change {
                PolicyChange::AttachManaged(p) => {
                    shape.managed_policies.insert(p.to_owned());
                }
                PolicyChange::DetachManaged(p) => {
                    shape.managed_policies.remove(p);
                }
                PolicyChange::AttachCustomerManaged(p) => {
                    shape.customer_managed_policies.insert(p.clone());
                }
                PolicyChange::DetachCustomerManaged(p) => {
                    shape.customer_managed_policies.remove(p);
                }
                PolicyChange::PutInline(document) => shape.inline_policy = Some(document.clone()),
                PolicyChange::DeleteInline => shape.inline_policy = None,
            }
        })
    }

    async fn provision_permission_set(&self, arn: &str) -> Result<OpStatus, AwsError> {
        self.with_set("ProvisionPermissionSet", arn, |s| s.provisions += 1)?;
        Ok(self.start(Effect::Provision, None))
    }

    async fn provisioning_status(&self, request_id: &str) -> Result<OpStatus, AwsError> {
        const OP: &str = "DescribePermissionSetProvisioningStatus";
        self.enter(OP, &[request_id])?;
        self.poll(OP, request_id)
    }

    async fn provisioned_accounts(&self, arn: &str) -> Result<Vec<String>, AwsError> {
        self.with_set("ListAccountsForProvisionedPermissionSet", arn, |s| {
            s.provisioned.iter().cloned().collect()
        })
    }

    async fn list_account_assignments(
        &self,
        account: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<(PrincipalType, String)>, AwsError> {
        const OP: &str = "ListAccountAssignments";
        self.enter(OP, &[account, permission_set_arn])?;
        let w = lock(&self.world);
        if !w.permission_sets.contains_key(permission_set_arn) {
            return Err(not_found(OP, permission_set_arn));
        }
        let held =
            w.account_assignments.iter().filter(|t| t.0 == account && t.1 == permission_set_arn);
        Ok(held.map(|t| (t.2, t.3.clone())).collect())
    }

    async fn account_assignment(
        &self,
        a: &AccountAssignment,
        change: Change,
    ) -> Result<OpStatus, AwsError> {
        match change {
            Change::Add => self.assignment_operation("CreateAccountAssignment", a, false),
            Change::Remove => self.assignment_operation("DeleteAccountAssignment", a, true),
        }
    }

    async fn account_assignment_status(
        &self,
        request_id: &str,
        deletion: bool,
    ) -> Result<OpStatus, AwsError> {
        let operation = if deletion {
            "DescribeAccountAssignmentDeletionStatus"
        } else {
            "DescribeAccountAssignmentCreationStatus"
        };
        self.enter(operation, &[request_id])?;
        self.poll(operation, request_id)
    }

    async fn list_application_assignments(
        &self,
        application_arn: &str,
    ) -> Result<Vec<(PrincipalType, String)>, AwsError> {
        self.with_application("ListApplicationAssignments", &[application_arn], |a| {
            a.assignments.iter().cloned().collect()
        })
    }

    async fn application_assignment(
        &self,
        a: &ApplicationAssignment,
        change: Change,
    ) -> Result<(), AwsError> {
        let args = [a.application_arn.as_str(), a.principal_id.as_str()];
        let principal = (a.principal_type, a.principal_id.clone());
        match change {
            Change::Add => self.with_application("CreateApplicationAssignment", &args, |app| {
                app.assignments.insert(principal);
            }),
            Change::Remove => self.with_application("DeleteApplicationAssignment", &args, |app| {
                app.assignments.remove(&principal);
            }),
        }
    }

    async fn set_assignment_required(
        &self,
        application_arn: &str,
        required: bool,
    ) -> Result<(), AwsError> {
        self.with_application("PutApplicationAssignmentConfiguration", &[application_arn], |a| {
            a.assignment_required = Some(required);
        })
    }
}
