//! The SSO Admin side of the adapter: [`SsoAdmin`] over aws-sdk-ssoadmin (permission sets,
//! account and application assignments) and the instance ARN they name — through the same
//! limiter and retries as the Identity Store ([`super::retry`]). Writes go through
//! `call_settling`, which also retries ConflictException ("a conflict with a previous
//! successful write", typically an operation still running on the same permission set or
//! account).

use super::AwsDirectory;
use super::retry::gone;
use crate::store::PrincipalType;
use crate::sync::target::{
    AccountAssignment, AwsError, CustomerManagedPolicy, OpState, OpStatus, PermissionSetShape,
    SsoAdmin,
};
use async_trait::async_trait;

use aws_sdk_ssoadmin::types::{
    self as sso, CustomerManagedPolicyReference, ProvisionTargetType, StatusValues, TargetType,
};
use serde_json::Value;

impl AwsDirectory {
    /// The Identity Center instance: from the config, else discovered (ListInstances).
    async fn instance_arn(&self) -> Result<&str, AwsError> {
        self.instance_arn
            .get_or_try_init(|| async {
                let out = self.call("ListInstances", || self.sso.list_instances().send()).await?;
                let store = &self.identity_store_id;
                let arns: Vec<&str> = out
                    .instances()
                    .iter()
                    .filter(|i| store.is_empty() || i.identity_store_id() == Some(store.as_str()))
                    .filter_map(|i| i.instance_arn())
                    .collect();
                match arns.as_slice() {
                    [one] => Ok((*one).to_owned()),
                    _ => Err(AwsError::Configuration {
                        operation: "ListInstances",
                        message: format!(
                            "{} Identity Center instances match identity store {store:?}: set [aws] instance_arn",
                            arns.len()
                        ),
                    }),
                }
            })
            .await
            .map(String::as_str)
    }
}

fn sdk_principal(t: PrincipalType) -> sso::PrincipalType {
    match t {
        PrincipalType::User => sso::PrincipalType::User,
        PrincipalType::Group => sso::PrincipalType::Group,
    }
}

fn our_principal(t: Option<&sso::PrincipalType>) -> Option<PrincipalType> {
    match t? {
        sso::PrincipalType::User => Some(PrincipalType::User),
        sso::PrincipalType::Group => Some(PrincipalType::Group),
        _ => None,
    }
}

fn op_status(
    operation: &'static str,
    status: Option<&StatusValues>,
    request_id: Option<&str>,
    failure: Option<&str>,
) -> Result<OpStatus, AwsError> {
    let state = match status {
        Some(StatusValues::Succeeded) => OpState::Succeeded,
        Some(StatusValues::InProgress) => OpState::InProgress,
        Some(StatusValues::Failed) => OpState::Failed(failure.unwrap_or_default().to_owned()),
        other => {
            return Err(AwsError::Invalid {
                operation,
                message: format!("unexpected status {other:?}"),
            });
        }
    };
    Ok(OpStatus { request_id: request_id.unwrap_or_default().to_owned(), state })
}

fn assignment_status(
    operation: &'static str,
    s: Option<&sso::AccountAssignmentOperationStatus>,
) -> Result<OpStatus, AwsError> {
    let s = s.ok_or(AwsError::Invalid { operation, message: "no status in the answer".into() })?;
    op_status(operation, s.status(), s.request_id(), s.failure_reason())
}

fn provisioning_status(
    operation: &'static str,
    s: Option<&sso::PermissionSetProvisioningStatus>,
) -> Result<OpStatus, AwsError> {
    let s = s.ok_or(AwsError::Invalid { operation, message: "no status in the answer".into() })?;
    op_status(operation, s.status(), s.request_id(), s.failure_reason())
}

fn reference(
    operation: &'static str,
    p: &CustomerManagedPolicy,
) -> Result<CustomerManagedPolicyReference, AwsError> {
    CustomerManagedPolicyReference::builder()
        .name(&p.name)
        .path(&p.path)
        .build()
        .map_err(|e| AwsError::Invalid { operation, message: e.to_string() })
}

#[async_trait]
impl SsoAdmin for AwsDirectory {
    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ListPermissionSets"))]
    async fn list_permission_sets(&self) -> Result<Vec<String>, AwsError> {
        let list = self
            .sso
            .list_permission_sets()
            .instance_arn(self.instance_arn().await?)
            .max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages(
            "ListPermissionSets",
            send,
            |page: aws_sdk_ssoadmin::operation::list_permission_sets::ListPermissionSetsOutput,
             all| {
                all.extend(page.permission_sets().iter().cloned());
                page.next_token().map(str::to_owned)
            },
        )
        .await
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DescribePermissionSet", permission_set = arn))]
    async fn permission_set_name(&self, arn: &str) -> Result<String, AwsError> {
        let req = self
            .sso
            .describe_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn);
        let out = self.call("DescribePermissionSet", || req.clone().send()).await?;
        Ok(out.permission_set().and_then(|p| p.name()).unwrap_or_default().to_owned())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DescribePermissionSet", permission_set = arn))]
    async fn read_permission_set(&self, arn: &str) -> Result<PermissionSetShape, AwsError> {
        let instance = self.instance_arn().await?;
        let req = self.sso.describe_permission_set().instance_arn(instance).permission_set_arn(arn);
        let out = self.call("DescribePermissionSet", || req.clone().send()).await?;
        let set = out.permission_set();
        let mut shape = PermissionSetShape {
            description: set.and_then(|s| s.description()).map(str::to_owned),
            session_duration: set.and_then(|s| s.session_duration()).map(str::to_owned),
            relay_state: set.and_then(|s| s.relay_state()).map(str::to_owned),
            ..Default::default()
        };
        let list = self
            .sso
            .list_managed_policies_in_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        shape.managed_policies = self
            .all_pages("ListManagedPoliciesInPermissionSet", send, |page: aws_sdk_ssoadmin::operation::list_managed_policies_in_permission_set::ListManagedPoliciesInPermissionSetOutput, all| {
                all.extend(page.attached_managed_policies().iter().filter_map(|p| p.arn()).map(str::to_owned));
                page.next_token().map(str::to_owned)
            })
            .await?
            .into_iter()
            .collect();
        let list = self
            .sso
            .list_customer_managed_policy_references_in_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        shape.customer_managed_policies = self
            .all_pages("ListCustomerManagedPolicyReferencesInPermissionSet", send, |page: aws_sdk_ssoadmin::operation::list_customer_managed_policy_references_in_permission_set::ListCustomerManagedPolicyReferencesInPermissionSetOutput, all| {
                all.extend(page.customer_managed_policy_references().iter().map(|p| CustomerManagedPolicy {
                    name: p.name().to_owned(),
                    path: p.path().unwrap_or("/").to_owned(),
                }));
                page.next_token().map(str::to_owned)
            })
            .await?
            .into_iter()
            .collect();
        let req = self
            .sso
            .get_inline_policy_for_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn);
        let out = self.call("GetInlinePolicyForPermissionSet", || req.clone().send()).await?;
        shape.inline_policy = out
            .inline_policy()
            .filter(|p| !p.trim().is_empty())
            // A document AWS holds that is not JSON differs from any declared one.
            .map(|p| serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.to_owned())));
        Ok(shape)
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "CreatePermissionSet", permission_set = name))]
    async fn create_permission_set(
        &self,
        name: &str,
        shape: &PermissionSetShape,
    ) -> Result<String, AwsError> {
        let req = self
            .sso
            .create_permission_set()
            .instance_arn(self.instance_arn().await?)
            .name(name)
            .set_description(shape.description.clone())
            .set_session_duration(shape.session_duration.clone())
            .set_relay_state(shape.relay_state.clone());
        let out = self.call_settling("CreatePermissionSet", || req.clone().send()).await?;
        out.permission_set().and_then(|p| p.permission_set_arn()).map(str::to_owned).ok_or(
            AwsError::Invalid {
                operation: "CreatePermissionSet",
                message: "no ARN in the answer".into(),
            },
        )
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "UpdatePermissionSet", permission_set = arn))]
    async fn update_permission_set(
        &self,
        arn: &str,
        shape: &PermissionSetShape,
    ) -> Result<(), AwsError> {
        let req = self
            .sso
            .update_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn)
            .set_description(shape.description.clone())
            .set_session_duration(shape.session_duration.clone())
            .set_relay_state(shape.relay_state.clone());
        self.call_settling("UpdatePermissionSet", || req.clone().send()).await.map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "AttachManagedPolicyToPermissionSet", permission_set = arn, policy = policy_arn))]
    async fn attach_managed_policy(&self, arn: &str, policy_arn: &str) -> Result<(), AwsError> {
        let req = self
            .sso
            .attach_managed_policy_to_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn)
            .managed_policy_arn(policy_arn);
        self.call_settling("AttachManagedPolicyToPermissionSet", || req.clone().send())
            .await
            .map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DetachManagedPolicyFromPermissionSet", permission_set = arn, policy = policy_arn))]
    async fn detach_managed_policy(&self, arn: &str, policy_arn: &str) -> Result<(), AwsError> {
        let req = self
            .sso
            .detach_managed_policy_from_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn)
            .managed_policy_arn(policy_arn);
        self.call_settling("DetachManagedPolicyFromPermissionSet", || req.clone().send())
            .await
            .map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "AttachCustomerManagedPolicyReferenceToPermissionSet", permission_set = arn, policy = %policy.name))]
    async fn attach_customer_managed_policy(
        &self,
        arn: &str,
        policy: &CustomerManagedPolicy,
    ) -> Result<(), AwsError> {
        const OP: &str = "AttachCustomerManagedPolicyReferenceToPermissionSet";
        let req = self
            .sso
            .attach_customer_managed_policy_reference_to_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn)
            .customer_managed_policy_reference(reference(OP, policy)?);
        self.call_settling(OP, || req.clone().send()).await.map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DetachCustomerManagedPolicyReferenceFromPermissionSet", permission_set = arn, policy = %policy.name))]
    async fn detach_customer_managed_policy(
        &self,
        arn: &str,
        policy: &CustomerManagedPolicy,
    ) -> Result<(), AwsError> {
        const OP: &str = "DetachCustomerManagedPolicyReferenceFromPermissionSet";
        let req = self
            .sso
            .detach_customer_managed_policy_reference_from_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn)
            .customer_managed_policy_reference(reference(OP, policy)?);
        self.call_settling(OP, || req.clone().send()).await.map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "PutInlinePolicyToPermissionSet", permission_set = arn))]
    async fn put_inline_policy(&self, arn: &str, document: &Value) -> Result<(), AwsError> {
        let req = self
            .sso
            .put_inline_policy_to_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn)
            .inline_policy(document.to_string());
        self.call_settling("PutInlinePolicyToPermissionSet", || req.clone().send())
            .await
            .map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DeleteInlinePolicyFromPermissionSet", permission_set = arn))]
    async fn delete_inline_policy(&self, arn: &str) -> Result<(), AwsError> {
        let req = self
            .sso
            .delete_inline_policy_from_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn);
        self.call_settling("DeleteInlinePolicyFromPermissionSet", || req.clone().send())
            .await
            .map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ProvisionPermissionSet", permission_set = arn))]
    async fn provision_permission_set(&self, arn: &str) -> Result<OpStatus, AwsError> {
        const OP: &str = "ProvisionPermissionSet";
        let req = self
            .sso
            .provision_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn)
            .target_type(ProvisionTargetType::AllProvisionedAccounts);
        let out = self.call_settling(OP, || req.clone().send()).await?;
        provisioning_status(OP, out.permission_set_provisioning_status())
    }

    #[tracing::instrument(
        skip_all,
        level = "debug",
        fields(operation = "DescribePermissionSetProvisioningStatus", request_id = request_id)
    )]
    async fn provisioning_status(&self, request_id: &str) -> Result<OpStatus, AwsError> {
        const OP: &str = "DescribePermissionSetProvisioningStatus";
        let req = self
            .sso
            .describe_permission_set_provisioning_status()
            .instance_arn(self.instance_arn().await?)
            .provision_permission_set_request_id(request_id);
        let out = self.call(OP, || req.clone().send()).await?;
        provisioning_status(OP, out.permission_set_provisioning_status())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ListAccountsForProvisionedPermissionSet", permission_set = arn))]
    async fn provisioned_accounts(&self, arn: &str) -> Result<Vec<String>, AwsError> {
        let list = self
            .sso
            .list_accounts_for_provisioned_permission_set()
            .instance_arn(self.instance_arn().await?)
            .permission_set_arn(arn)
            .max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListAccountsForProvisionedPermissionSet", send, |page: aws_sdk_ssoadmin::operation::list_accounts_for_provisioned_permission_set::ListAccountsForProvisionedPermissionSetOutput, all| {
            all.extend(page.account_ids().iter().cloned());
            page.next_token().map(str::to_owned)
        })
        .await
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ListAccountAssignments", account = account, permission_set = permission_set_arn))]
    async fn list_account_assignments(
        &self,
        account: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<(PrincipalType, String)>, AwsError> {
        let list = self
            .sso
            .list_account_assignments()
            .instance_arn(self.instance_arn().await?)
            .account_id(account)
            .permission_set_arn(permission_set_arn)
            .max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListAccountAssignments", send, |page: aws_sdk_ssoadmin::operation::list_account_assignments::ListAccountAssignmentsOutput, all| {
            all.extend(page.account_assignments().iter().filter_map(|a| {
                Some((our_principal(a.principal_type())?, a.principal_id()?.to_owned()))
            }));
            page.next_token().map(str::to_owned)
        })
        .await
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "CreateAccountAssignment", account = %a.account, permission_set = %a.permission_set_arn, principal_type = ?a.principal_type, principal_id = %a.principal_id))]
    async fn create_account_assignment(&self, a: &AccountAssignment) -> Result<OpStatus, AwsError> {
        const OP: &str = "CreateAccountAssignment";
        let req = self
            .sso
            .create_account_assignment()
            .instance_arn(self.instance_arn().await?)
            .target_id(&a.account)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(&a.permission_set_arn)
            .principal_type(sdk_principal(a.principal_type))
            .principal_id(&a.principal_id);
        let out = self.call_settling(OP, || req.clone().send()).await?;
        assignment_status(OP, out.account_assignment_creation_status())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DeleteAccountAssignment", account = %a.account, permission_set = %a.permission_set_arn, principal_type = ?a.principal_type, principal_id = %a.principal_id))]
    async fn delete_account_assignment(&self, a: &AccountAssignment) -> Result<OpStatus, AwsError> {
        const OP: &str = "DeleteAccountAssignment";
        let req = self
            .sso
            .delete_account_assignment()
            .instance_arn(self.instance_arn().await?)
            .target_id(&a.account)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(&a.permission_set_arn)
            .principal_type(sdk_principal(a.principal_type))
            .principal_id(&a.principal_id);
        let out = self.call_settling(OP, || req.clone().send()).await?;
        assignment_status(OP, out.account_assignment_deletion_status())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = if deletion { "DescribeAccountAssignmentDeletionStatus" } else { "DescribeAccountAssignmentCreationStatus" }, request_id = request_id))]
    async fn account_assignment_status(
        &self,
        request_id: &str,
        deletion: bool,
    ) -> Result<OpStatus, AwsError> {
        let instance = self.instance_arn().await?;
        if deletion {
            const OP: &str = "DescribeAccountAssignmentDeletionStatus";
            let req = self
                .sso
                .describe_account_assignment_deletion_status()
                .instance_arn(instance)
                .account_assignment_deletion_request_id(request_id);
            let out = self.call(OP, || req.clone().send()).await?;
            assignment_status(OP, out.account_assignment_deletion_status())
        } else {
            const OP: &str = "DescribeAccountAssignmentCreationStatus";
            let req = self
                .sso
                .describe_account_assignment_creation_status()
                .instance_arn(instance)
                .account_assignment_creation_request_id(request_id);
            let out = self.call(OP, || req.clone().send()).await?;
            assignment_status(OP, out.account_assignment_creation_status())
        }
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ListApplicationAssignments", application = application_arn))]
    async fn list_application_assignments(
        &self,
        application_arn: &str,
    ) -> Result<Vec<(PrincipalType, String)>, AwsError> {
        let list = self
            .sso
            .list_application_assignments()
            .application_arn(application_arn)
            .max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListApplicationAssignments", send, |page: aws_sdk_ssoadmin::operation::list_application_assignments::ListApplicationAssignmentsOutput, all| {
            all.extend(page.application_assignments().iter().filter_map(|a| {
                Some((our_principal(Some(a.principal_type()))?, a.principal_id().to_owned()))
            }));
            page.next_token().map(str::to_owned)
        })
        .await
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "CreateApplicationAssignment", application = application_arn, principal_type = ?principal_type, principal_id = principal_id))]
    async fn create_application_assignment(
        &self,
        application_arn: &str,
        principal_type: PrincipalType,
        principal_id: &str,
    ) -> Result<(), AwsError> {
        let req = self
            .sso
            .create_application_assignment()
            .application_arn(application_arn)
            .principal_type(sdk_principal(principal_type))
            .principal_id(principal_id);
        self.call_settling("CreateApplicationAssignment", || req.clone().send()).await.map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DeleteApplicationAssignment", application = application_arn, principal_type = ?principal_type, principal_id = principal_id))]
    async fn delete_application_assignment(
        &self,
        application_arn: &str,
        principal_type: PrincipalType,
        principal_id: &str,
    ) -> Result<(), AwsError> {
        let req = self
            .sso
            .delete_application_assignment()
            .application_arn(application_arn)
            .principal_type(sdk_principal(principal_type))
            .principal_id(principal_id);
        gone(
            self.call_settling("DeleteApplicationAssignment", || req.clone().send())
                .await
                .map(|_| ()),
        )
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "PutApplicationAssignmentConfiguration", application = application_arn, required = required))]
    async fn set_assignment_required(
        &self,
        application_arn: &str,
        required: bool,
    ) -> Result<(), AwsError> {
        let req = self
            .sso
            .put_application_assignment_configuration()
            .application_arn(application_arn)
            .assignment_required(required);
        self.call_settling("PutApplicationAssignmentConfiguration", || req.clone().send())
            .await
            .map(|_| ())
    }
}
