//! Access from rules: managed permission sets, account assignments (permission set × account ×
//! principal) and application assignments, kept as `[[permission_sets]]` and `[assignments]`
//! declare them. [`rules`] holds the declarations, [`plan`] works out what must change (pure),
//! [`apply`] makes AWS match through the [`SsoAdmin`] operations, which the AWS adapter
//! implements over aws-sdk-ssoadmin.
//!
//! The bridge owns what it creates: it deletes only assignments it recorded as created; one
//! that existed before a rule wanted it is recorded as foreign and never deleted. Assignments
//! are keyed by the AWS principal id, so a principal renamed in place keeps them.

pub mod apply;
pub mod plan;
pub mod rules;

use super::directory::AwsError;
use crate::store::PrincipalType;
use async_trait::async_trait;
use rules::{CustomerManagedPolicy, PermissionSetSettings};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// How an asynchronous SSO Admin operation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpState {
    InProgress,
    Succeeded,
    /// With AWS's reason (often empty).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpStatus {
    pub request_id: String,
    pub state: OpState,
}

/// A permission set's content as the bridge compares it: what `[[permission_sets]]` declares,
/// and what AWS holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PermissionSetShape {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_state: Option<String>,
    #[serde(default)]
    pub managed_policies: BTreeSet<String>,
    #[serde(default)]
    pub customer_managed_policies: BTreeSet<CustomerManagedPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_policy: Option<Value>,
}

impl PermissionSetShape {
    pub fn declared(set: &PermissionSetSettings) -> PermissionSetShape {
        PermissionSetShape {
            description: set.description.clone(),
            session_duration: set.session_duration.clone(),
            relay_state: set.relay_state.clone(),
            managed_policies: set.managed_policies.iter().cloned().collect(),
            customer_managed_policies: set.customer_managed_policies.iter().cloned().collect(),
            inline_policy: set.inline_policy.clone(),
        }
    }

    /// The names of what differs from `actual` and must be pushed to reach `self` (declared).
    /// An attribute the declaration leaves unset is left as AWS has it.
    pub fn changes_from(&self, actual: &PermissionSetShape) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.description.is_some() && self.description != actual.description {
            out.push("description");
        }
        let seconds = |d: &Option<String>| d.as_deref().and_then(rules::parse_duration);
        if self.session_duration.is_some()
            && seconds(&self.session_duration) != seconds(&actual.session_duration)
        {
            out.push("session_duration");
        }
        if self.relay_state.is_some() && self.relay_state != actual.relay_state {
            out.push("relay_state");
        }
        if self.managed_policies != actual.managed_policies {
            out.push("managed_policies");
        }
        if self.customer_managed_policies != actual.customer_managed_policies {
            out.push("customer_managed_policies");
        }
        if self.inline_policy != actual.inline_policy {
            out.push("inline_policy");
        }
        out
    }
}

/// One account assignment as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAssignment {
    pub account: String,
    pub permission_set_arn: String,
    pub principal_type: PrincipalType,
    pub principal_id: String,
}

/// What the sync engine needs of SSO Admin (IAM Identity Center's permission sets and
/// assignments) — the same adapter, limiter and retries as the Identity Store.
#[async_trait]
pub trait SsoAdmin: Send + Sync {
    /// The ARN of every permission set in the instance.
    async fn list_permission_sets(&self) -> Result<Vec<String>, AwsError>;
    async fn permission_set_name(&self, arn: &str) -> Result<String, AwsError>;
    /// Its attributes and policies.
    async fn read_permission_set(&self, arn: &str) -> Result<PermissionSetShape, AwsError>;
    /// Creates it with the shape's attributes (not its policies); returns its ARN.
    async fn create_permission_set(
        &self,
        name: &str,
        shape: &PermissionSetShape,
    ) -> Result<String, AwsError>;
    /// Sets the shape's description, session duration and relay state.
    async fn update_permission_set(
        &self,
        arn: &str,
        shape: &PermissionSetShape,
    ) -> Result<(), AwsError>;
    async fn attach_managed_policy(&self, arn: &str, policy_arn: &str) -> Result<(), AwsError>;
    async fn detach_managed_policy(&self, arn: &str, policy_arn: &str) -> Result<(), AwsError>;
    async fn attach_customer_managed_policy(
        &self,
        arn: &str,
        policy: &CustomerManagedPolicy,
    ) -> Result<(), AwsError>;
    async fn detach_customer_managed_policy(
        &self,
        arn: &str,
        policy: &CustomerManagedPolicy,
    ) -> Result<(), AwsError>;
    async fn put_inline_policy(&self, arn: &str, document: &Value) -> Result<(), AwsError>;
    async fn delete_inline_policy(&self, arn: &str) -> Result<(), AwsError>;
    /// Re-provisions it to every account it is provisioned to.
    async fn provision_permission_set(&self, arn: &str) -> Result<OpStatus, AwsError>;
    async fn provisioning_status(&self, request_id: &str) -> Result<OpStatus, AwsError>;
    /// The accounts it is provisioned to (an account holding one of its assignments is).
    async fn provisioned_accounts(&self, arn: &str) -> Result<Vec<String>, AwsError>;

    /// The principals assigned the permission set in the account.
    async fn list_account_assignments(
        &self,
        account: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<(PrincipalType, String)>, AwsError>;
    async fn create_account_assignment(&self, a: &AccountAssignment) -> Result<OpStatus, AwsError>;
    async fn delete_account_assignment(&self, a: &AccountAssignment) -> Result<OpStatus, AwsError>;
    async fn account_assignment_status(
        &self,
        request_id: &str,
        deletion: bool,
    ) -> Result<OpStatus, AwsError>;

    async fn list_application_assignments(
        &self,
        application_arn: &str,
    ) -> Result<Vec<(PrincipalType, String)>, AwsError>;
    async fn create_application_assignment(
        &self,
        application_arn: &str,
        principal_type: PrincipalType,
        principal_id: &str,
    ) -> Result<(), AwsError>;
    async fn delete_application_assignment(
        &self,
        application_arn: &str,
        principal_type: PrincipalType,
        principal_id: &str,
    ) -> Result<(), AwsError>;
    async fn set_assignment_required(
        &self,
        application_arn: &str,
        required: bool,
    ) -> Result<(), AwsError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_attributes_are_left_and_durations_compare_by_length() {
        let declared = PermissionSetShape {
            session_duration: Some("PT480M".into()),
            managed_policies: BTreeSet::from(["arn:aws:iam::aws:policy/ReadOnlyAccess".into()]),
            ..Default::default()
        };
        let mut actual = PermissionSetShape {
            description: Some("set by hand".into()),
            session_duration: Some("PT8H".into()),
            managed_policies: declared.managed_policies.clone(),
            ..Default::default()
        };
        assert!(declared.changes_from(&actual).is_empty());
        actual.inline_policy = Some(serde_json::json!({"Version": "2012-10-17"}));
        actual.session_duration = Some("PT1H".into());
        assert_eq!(declared.changes_from(&actual), vec!["session_duration", "inline_policy"]);
    }
}
