//! The SSO Admin side of the adapter: [`SsoAdmin`] over aws-sdk-ssoadmin (permission sets,
//! account and application assignments) and the instance ARN they name — through the same
//! limiter and retries as the Identity Store ([`super::retry`]). Writes go through
//! `call_settling`, which also retries ConflictException ("a conflict with a previous
//! successful write", typically an operation still running on the same permission set or
//! account).

use super::AwsDirectory;
use super::retry::{Attempt, gone};
use crate::store::PrincipalType;
use crate::sync::target::{
    AccountAssignment, ApplicationAssignment, AwsError, Change, CustomerManagedPolicy, OpState,
    OpStatus, PermissionSetShape, PolicyChange, SsoAdmin,
};
use async_trait::async_trait;

use aws_sdk_ssoadmin::Client;
use aws_sdk_ssoadmin::operation::list_account_assignments::ListAccountAssignmentsOutput;
use aws_sdk_ssoadmin::operation::list_accounts_for_provisioned_permission_set::ListAccountsForProvisionedPermissionSetOutput as ProvisionedAccounts;
use aws_sdk_ssoadmin::operation::list_application_assignments::ListApplicationAssignmentsOutput;
use aws_sdk_ssoadmin::operation::list_customer_managed_policy_references_in_permission_set::ListCustomerManagedPolicyReferencesInPermissionSetOutput as CustomerManagedPolicies;
use aws_sdk_ssoadmin::operation::list_managed_policies_in_permission_set::ListManagedPoliciesInPermissionSetOutput as ManagedPolicies;
use aws_sdk_ssoadmin::operation::list_permission_sets::ListPermissionSetsOutput;
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

    /// The SSO Admin client and the instance ARN, which every permission-set and
    /// account-assignment request names.
    async fn on_instance(&self) -> Result<(&Client, &str), AwsError> {
        Ok((&self.sso, self.instance_arn().await?))
    }

    /// A write: ConflictException retried ([`AwsDirectory::call_settling`]), the answer dropped.
    async fn write<T>(
        &self,
        operation: &'static str,
        send: impl Attempt<T>,
    ) -> Result<(), AwsError> {
        self.call_settling(operation, send).await.map(drop)
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

/// `$request` (CreateAccountAssignment or DeleteAccountAssignment: two SDK types with the
/// same fields) for the [`AccountAssignment`] `$a`.
macro_rules! assignment_of {
    ($request:expr, $a:expr) => {
        $request
            .target_id(&$a.account)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(&$a.permission_set_arn)
            .principal_type(sdk_principal($a.principal_type))
            .principal_id(&$a.principal_id)
    };
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
        let (sso, instance) = self.on_instance().await?;
        let list = sso.list_permission_sets().instance_arn(instance).max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListPermissionSets", send, |page: ListPermissionSetsOutput, all| {
            all.extend(page.permission_sets().iter().cloned());
            page.next_token().map(str::to_owned)
        })
        .await
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DescribePermissionSet", permission_set = arn))]
    async fn permission_set_name(&self, arn: &str) -> Result<String, AwsError> {
        let (sso, instance) = self.on_instance().await?;
        let req = sso.describe_permission_set().instance_arn(instance).permission_set_arn(arn);
        let out = self.call("DescribePermissionSet", || req.clone().send()).await?;
        Ok(out.permission_set().and_then(|p| p.name()).unwrap_or_default().to_owned())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DescribePermissionSet", permission_set = arn))]
    async fn read_permission_set(&self, arn: &str) -> Result<PermissionSetShape, AwsError> {
        let (sso, instance) = self.on_instance().await?;
        let req = sso.describe_permission_set().instance_arn(instance).permission_set_arn(arn);
        let out = self.call("DescribePermissionSet", || req.clone().send()).await?;
        let set = out.permission_set();
        let mut shape = PermissionSetShape {
            description: set.and_then(|s| s.description()).map(str::to_owned),
            session_duration: set.and_then(|s| s.session_duration()).map(str::to_owned),
            relay_state: set.and_then(|s| s.relay_state()).map(str::to_owned),
            ..Default::default()
        };
        let list = sso.list_managed_policies_in_permission_set().instance_arn(instance);
        let list = list.permission_set_arn(arn).max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        let op = "ListManagedPoliciesInPermissionSet";
        let managed = self.all_pages(op, send, |page: ManagedPolicies, all| {
            let arns = page.attached_managed_policies().iter().filter_map(|p| p.arn());
            all.extend(arns.map(str::to_owned));
            page.next_token().map(str::to_owned)
        });
        shape.managed_policies = managed.await?.into_iter().collect();
        let list = sso.list_customer_managed_policy_references_in_permission_set();
        let list = list.instance_arn(instance).permission_set_arn(arn).max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        let op = "ListCustomerManagedPolicyReferencesInPermissionSet";
        let customer = self.all_pages(op, send, |page: CustomerManagedPolicies, all| {
            all.extend(page.customer_managed_policy_references().iter().map(|p| {
                CustomerManagedPolicy {
                    name: p.name().to_owned(),
                    path: p.path().unwrap_or("/").to_owned(),
                }
            }));
            page.next_token().map(str::to_owned)
        });
        shape.customer_managed_policies = customer.await?.into_iter().collect();
        let req = sso.get_inline_policy_for_permission_set().instance_arn(instance);
        let req = req.permission_set_arn(arn);
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
        let (sso, instance) = self.on_instance().await?;
        let req = sso.create_permission_set().instance_arn(instance).name(name);
        let req = req
            .set_description(shape.description.clone())
            .set_session_duration(shape.session_duration.clone())
            .set_relay_state(shape.relay_state.clone());
        let out = self.call_settling("CreatePermissionSet", || req.clone().send()).await?;
        let arn = out.permission_set().and_then(|p| p.permission_set_arn());
        let message = "no ARN in the answer".into();
        let invalid = AwsError::Invalid { operation: "CreatePermissionSet", message };
        arn.map(str::to_owned).ok_or(invalid)
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "UpdatePermissionSet", permission_set = arn))]
    async fn update_permission_set(
        &self,
        arn: &str,
        shape: &PermissionSetShape,
    ) -> Result<(), AwsError> {
        let (sso, instance) = self.on_instance().await?;
        let req = sso.update_permission_set().instance_arn(instance).permission_set_arn(arn);
        let req = req
            .set_description(shape.description.clone())
            .set_session_duration(shape.session_duration.clone())
            .set_relay_state(shape.relay_state.clone());
        self.write("UpdatePermissionSet", || req.clone().send()).await
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = change.operation(), permission_set = arn))]
    async fn change_policy(&self, arn: &str, change: PolicyChange<'_>) -> Result<(), AwsError> {
        let operation = change.operation();
        let (sso, instance) = self.on_instance().await?;
        match change {
            PolicyChange::AttachManaged(policy) => {
                let req = sso.attach_managed_policy_to_permission_set().instance_arn(instance);
                let req = req.permission_set_arn(arn).managed_policy_arn(policy);
                self.write(operation, || req.clone().send()).await
            }
            PolicyChange::DetachManaged(policy) => {
                let req = sso.detach_managed_policy_from_permission_set().instance_arn(instance);
                let req = req.permission_set_arn(arn).managed_policy_arn(policy);
                self.write(operation, || req.clone().send()).await
            }
            PolicyChange::AttachCustomerManaged(policy) => {
                let req = sso.attach_customer_managed_policy_reference_to_permission_set();
                let req = req.customer_managed_policy_reference(reference(operation, policy)?);
                let req = req.instance_arn(instance).permission_set_arn(arn);
                self.write(operation, || req.clone().send()).await
            }
            PolicyChange::DetachCustomerManaged(policy) => {
                let req = sso.detach_customer_managed_policy_reference_from_permission_set();
                let req = req.customer_managed_policy_reference(reference(operation, policy)?);
                let req = req.instance_arn(instance).permission_set_arn(arn);
                self.write(operation, || req.clone().send()).await
            }
            PolicyChange::PutInline(document) => {
                let req = sso.put_inline_policy_to_permission_set().instance_arn(instance);
                let req = req.permission_set_arn(arn).inline_policy(document.to_string());
                self.write(operation, || req.clone().send()).await
            }
            PolicyChange::DeleteInline => {
                let req = sso.delete_inline_policy_from_permission_set().instance_arn(instance);
                self.write(operation, || req.clone().permission_set_arn(arn).send()).await
            }
        }
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ProvisionPermissionSet", permission_set = arn))]
    async fn provision_permission_set(&self, arn: &str) -> Result<OpStatus, AwsError> {
        const OP: &str = "ProvisionPermissionSet";
        let (sso, instance) = self.on_instance().await?;
        let req = sso.provision_permission_set().instance_arn(instance).permission_set_arn(arn);
        let req = req.target_type(ProvisionTargetType::AllProvisionedAccounts);
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
        let (sso, instance) = self.on_instance().await?;
        let req = sso.describe_permission_set_provisioning_status().instance_arn(instance);
        let req = req.provision_permission_set_request_id(request_id);
        let out = self.call(OP, || req.clone().send()).await?;
        provisioning_status(OP, out.permission_set_provisioning_status())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ListAccountsForProvisionedPermissionSet", permission_set = arn))]
    async fn provisioned_accounts(&self, arn: &str) -> Result<Vec<String>, AwsError> {
        let (sso, instance) = self.on_instance().await?;
        let list = sso.list_accounts_for_provisioned_permission_set().instance_arn(instance);
        let list = list.permission_set_arn(arn).max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        let op = "ListAccountsForProvisionedPermissionSet";
        self.all_pages(op, send, |page: ProvisionedAccounts, all| {
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
        let (sso, instance) = self.on_instance().await?;
        let list = sso.list_account_assignments().instance_arn(instance).account_id(account);
        let list = list.permission_set_arn(permission_set_arn).max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListAccountAssignments", send, |page: ListAccountAssignmentsOutput, all| {
            all.extend(page.account_assignments().iter().filter_map(|a| {
                Some((our_principal(a.principal_type())?, a.principal_id()?.to_owned()))
            }));
            page.next_token().map(str::to_owned)
        })
        .await
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = match change { Change::Add => "CreateAccountAssignment", Change::Remove => "DeleteAccountAssignment" }, account = %a.account, permission_set = %a.permission_set_arn, principal_type = ?a.principal_type, principal_id = %a.principal_id))]
    async fn account_assignment(
        &self,
        a: &AccountAssignment,
        change: Change,
    ) -> Result<OpStatus, AwsError> {
        let (sso, instance) = self.on_instance().await?;
        match change {
            Change::Add => {
                const OP: &str = "CreateAccountAssignment";
                let req = assignment_of!(sso.create_account_assignment().instance_arn(instance), a);
                let out = self.call_settling(OP, || req.clone().send()).await?;
                assignment_status(OP, out.account_assignment_creation_status())
            }
            Change::Remove => {
                const OP: &str = "DeleteAccountAssignment";
                let req = assignment_of!(sso.delete_account_assignment().instance_arn(instance), a);
                let out = self.call_settling(OP, || req.clone().send()).await?;
                assignment_status(OP, out.account_assignment_deletion_status())
            }
        }
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = if deletion { "DescribeAccountAssignmentDeletionStatus" } else { "DescribeAccountAssignmentCreationStatus" }, request_id = request_id))]
    async fn account_assignment_status(
        &self,
        request_id: &str,
        deletion: bool,
    ) -> Result<OpStatus, AwsError> {
        let (sso, instance) = self.on_instance().await?;
        if deletion {
            const OP: &str = "DescribeAccountAssignmentDeletionStatus";
            let req = sso.describe_account_assignment_deletion_status().instance_arn(instance);
            let req = req.account_assignment_deletion_request_id(request_id);
            let out = self.call(OP, || req.clone().send()).await?;
            assignment_status(OP, out.account_assignment_deletion_status())
        } else {
            const OP: &str = "DescribeAccountAssignmentCreationStatus";
            let req = sso.describe_account_assignment_creation_status().instance_arn(instance);
            let req = req.account_assignment_creation_request_id(request_id);
            let out = self.call(OP, || req.clone().send()).await?;
            assignment_status(OP, out.account_assignment_creation_status())
        }
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ListApplicationAssignments", application = application_arn))]
    async fn list_application_assignments(
        &self,
        application_arn: &str,
    ) -> Result<Vec<(PrincipalType, String)>, AwsError> {
        let list = self.sso.list_application_assignments().application_arn(application_arn);
        let list = list.max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        let op = "ListApplicationAssignments";
        self.all_pages(op, send, |page: ListApplicationAssignmentsOutput, all| {
            all.extend(page.application_assignments().iter().filter_map(|a| {
                Some((our_principal(Some(a.principal_type()))?, a.principal_id().to_owned()))
            }));
            page.next_token().map(str::to_owned)
        })
        .await
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = match change { Change::Add => "CreateApplicationAssignment", Change::Remove => "DeleteApplicationAssignment" }, application = %a.application_arn, principal_type = ?a.principal_type, principal_id = %a.principal_id))]
    async fn application_assignment(
        &self,
        a: &ApplicationAssignment,
        change: Change,
    ) -> Result<(), AwsError> {
        let principal_type = sdk_principal(a.principal_type);
        match change {
            Change::Add => {
                let req = self.sso.create_application_assignment();
                let req = req.application_arn(&a.application_arn).principal_type(principal_type);
                let req = req.principal_id(&a.principal_id);
                self.write("CreateApplicationAssignment", || req.clone().send()).await
            }
            Change::Remove => {
                let req = self.sso.delete_application_assignment();
                let req = req.application_arn(&a.application_arn).principal_type(principal_type);
                let req = req.principal_id(&a.principal_id);
                gone(self.write("DeleteApplicationAssignment", || req.clone().send()).await)
            }
        }
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "PutApplicationAssignmentConfiguration", application = application_arn, required = required))]
    async fn set_assignment_required(
        &self,
        application_arn: &str,
        required: bool,
    ) -> Result<(), AwsError> {
        let req = self.sso.put_application_assignment_configuration();
        let req = req.application_arn(application_arn).assignment_required(required);
        self.write("PutApplicationAssignmentConfiguration", || req.clone().send()).await
    }
}
