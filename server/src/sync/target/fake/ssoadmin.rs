//! The fake's SSO Admin: permission sets held whole, account assignments and provisioning as
//! asynchronous operations ([`FakeAws::set_async_polls`]), applications by ARN.

use super::{Effect, FakeAws, lock, not_found};
use crate::store::PrincipalType;
use crate::sync::target::{
    AccountAssignment, AwsError, CustomerManagedPolicy, OpStatus, PermissionSetShape, SsoAdmin,
};
use async_trait::async_trait;
use serde_json::Value;

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

    async fn attach_managed_policy(&self, arn: &str, policy_arn: &str) -> Result<(), AwsError> {
        self.with_set("AttachManagedPolicyToPermissionSet", arn, |s| {
            s.shape.managed_policies.insert(policy_arn.to_owned());
        })
    }

    async fn detach_managed_policy(&self, arn: &str, policy_arn: &str) -> Result<(), AwsError> {
        self.with_set("DetachManagedPolicyFromPermissionSet", arn, |s| {
            s.shape.managed_policies.remove(policy_arn);
        })
    }

    async fn attach_customer_managed_policy(
        &self,
        arn: &str,
        policy: &CustomerManagedPolicy,
    ) -> Result<(), AwsError> {
        self.with_set("AttachCustomerManagedPolicyReferenceToPermissionSet", arn, |s| {
            s.shape.customer_managed_policies.insert(policy.clone());
        })
    }

    async fn detach_customer_managed_policy(
        &self,
        arn: &str,
        policy: &CustomerManagedPolicy,
    ) -> Result<(), AwsError> {
        self.with_set("DetachCustomerManagedPolicyReferenceFromPermissionSet", arn, |s| {
            s.shape.customer_managed_policies.remove(policy);
        })
    }

    async fn put_inline_policy(&self, arn: &str, document: &Value) -> Result<(), AwsError> {
        self.with_set("PutInlinePolicyToPermissionSet", arn, |s| {
            s.shape.inline_policy = Some(document.clone());
        })
    }

    async fn delete_inline_policy(&self, arn: &str) -> Result<(), AwsError> {
        self.with_set("DeleteInlinePolicyFromPermissionSet", arn, |s| {
            s.shape.inline_policy = None;
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

    async fn create_account_assignment(&self, a: &AccountAssignment) -> Result<OpStatus, AwsError> {
        self.assignment_operation("CreateAccountAssignment", a, false)
    }

    async fn delete_account_assignment(&self, a: &AccountAssignment) -> Result<OpStatus, AwsError> {
        self.assignment_operation("DeleteAccountAssignment", a, true)
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

    async fn create_application_assignment(
        &self,
        application_arn: &str,
        principal_type: PrincipalType,
        principal_id: &str,
    ) -> Result<(), AwsError> {
        let args = [application_arn, principal_id];
        self.with_application("CreateApplicationAssignment", &args, |a| {
            a.assignments.insert((principal_type, principal_id.to_owned()));
        })
    }

    async fn delete_application_assignment(
        &self,
        application_arn: &str,
        principal_type: PrincipalType,
        principal_id: &str,
    ) -> Result<(), AwsError> {
        let args = [application_arn, principal_id];
        self.with_application("DeleteApplicationAssignment", &args, |a| {
            a.assignments.remove(&(principal_type, principal_id.to_owned()));
        })
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
