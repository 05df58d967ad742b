//! The target port: what the sync engine needs of IAM Identity Center, as three traits and the
//! types they speak. [`Directory`] is the Identity Store (users, groups, memberships);
//! [`SsoAdmin`] is SSO Admin (permission sets and assignments) and [`Organizations`] AWS
//! Organizations (read only: the accounts rules target), reached through [`Directory::sso`]
//! and [`Directory::organizations`] so that all share one rate limiter. The AWS adapter
//! ([`super::aws::AwsDirectory`]) implements them over the SDK; unit tests use the in-memory
//! one in `fake`.
//!
//! This module depends on nothing else of the sync engine, so that the engine, the access
//! applier and the adapter all depend on it and never on each other.

#[cfg(test)]
pub mod fake;

use crate::mapping::aws_profile::AwsAttributes;
use crate::store::PrincipalType;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// An AWS error after the adapter's retries, classified for the engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsError {
    /// The name (userName, displayName, email) is taken: adopt, or report.
    #[error("{operation}: already exists ({message})")]
    Conflict { operation: &'static str, message: String },
    #[error("{operation}: not found ({message})")]
    NotFound { operation: &'static str, message: String },
    /// The request itself is wrong (e.g. a value AWS refuses): no retry, per-principal error.
    #[error("{operation}: rejected: {message}")]
    Invalid { operation: &'static str, message: String },
    /// Missing IAM permission or KMS access: the run cannot go on.
    #[error("{operation}: access denied: {message}")]
    AccessDenied { operation: &'static str, message: String },
    /// The setup is wrong (the identity store does not exist, its KMS key is gone): the run
    /// cannot go on, and nothing may be taken for deleted.
    #[error("{operation}: {message}")]
    Configuration { operation: &'static str, message: String },
    /// Throttling, 5xx and unreadable answers that outlasted the retries: AWS answered.
    #[error("{operation}: still failing after {attempts} attempts: {message}")]
    Unavailable { operation: &'static str, attempts: u32, message: String },
    /// No answer at all: connection refused, unknown host, timeouts, no credentials to sign
    /// with — after the retries, or at once when no call had been answered yet (a wrong
    /// endpoint or no network is not worth retrying). The message names the endpoint and the
    /// Region (`/admin/v1/status` tells this `unreachable` from `failing`).
    #[error("{operation}: {message}")]
    Unreachable { operation: &'static str, attempts: u32, message: String },
}

impl AwsError {
    /// Errors that stop the run (the next principal would fail the same way).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            AwsError::AccessDenied { .. }
                | AwsError::Configuration { .. }
                | AwsError::Unavailable { .. }
                | AwsError::Unreachable { .. }
        )
    }
}

/// One attribute change of an UpdateUser / UpdateGroup: a new value, or None to remove it.
pub type AttributeChange = (String, Option<Value>);

/// A user or group as listed by the Identity Store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub name: String,
}

/// What the sync engine needs of the Identity Store.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn create_user(&self, attrs: &AwsAttributes) -> Result<String, AwsError>;
    async fn update_user(&self, id: &str, changes: &[AttributeChange]) -> Result<(), AwsError>;
    /// Deleting what is already gone is success.
    async fn delete_user(&self, id: &str) -> Result<(), AwsError>;
    /// The id of the user with this userName (GetUserId), if any.
    async fn find_user(&self, user_name: &str) -> Result<Option<String>, AwsError>;
    async fn list_users(&self) -> Result<Vec<Listed>, AwsError>;

    async fn create_group(&self, attrs: &AwsAttributes) -> Result<String, AwsError>;
    async fn update_group(&self, id: &str, changes: &[AttributeChange]) -> Result<(), AwsError>;
    async fn delete_group(&self, id: &str) -> Result<(), AwsError>;
    async fn find_group(&self, display_name: &str) -> Result<Option<String>, AwsError>;
    async fn list_groups(&self) -> Result<Vec<Listed>, AwsError>;

    /// (membership id, user id) of every member of the group.
    async fn list_memberships(&self, group_id: &str) -> Result<Vec<(String, String)>, AwsError>;
    /// Adds the user; an existing membership is success. Returns the membership id.
    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<String, AwsError>;
    async fn remove_member(&self, membership_id: &str) -> Result<(), AwsError>;

    /// SSO Admin (permission sets and assignments), through the same limiter.
    fn sso(&self) -> &dyn SsoAdmin;

    /// AWS Organizations (read only), through the same limiter.
    fn organizations(&self) -> &dyn Organizations;

    /// Calls made so far (attempts, retries included), by operation name.
    fn calls(&self) -> BTreeMap<String, u64>;
    /// Throttling answers received so far.
    fn throttles(&self) -> u64;
}

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

/// A customer-managed policy a permission set references: by name and path in each account.
/// Declared in `[[permission_sets]]` (the config owns the type) and read from AWS.
pub use crate::config::CustomerManagedPolicy;

/// A permission set's content as the bridge compares it: what `[[permission_sets]]` declares,
/// and what AWS holds. How two shapes compare is the access applier's business
/// (`access::permission_sets`).
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

/// One account assignment as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAssignment {
    pub account: String,
    pub permission_set_arn: String,
    pub principal_type: PrincipalType,
    pub principal_id: String,
}

/// One change to a permission set's policies: each is one SSO Admin operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PolicyChange<'a> {
    /// An AWS managed policy, by ARN.
    AttachManaged(&'a str),
    DetachManaged(&'a str),
    AttachCustomerManaged(&'a CustomerManagedPolicy),
    DetachCustomerManaged(&'a CustomerManagedPolicy),
    PutInline(&'a Value),
    DeleteInline,
}

impl PolicyChange<'_> {
    /// The SSO Admin operation that makes the change.
    pub fn operation(&self) -> &'static str {
        match self {
            PolicyChange::AttachManaged(_) => "AttachManagedPolicyToPermissionSet",
            PolicyChange::DetachManaged(_) => "DetachManagedPolicyFromPermissionSet",
            PolicyChange::AttachCustomerManaged(_) => {
                "AttachCustomerManagedPolicyReferenceToPermissionSet"
            }
            PolicyChange::DetachCustomerManaged(_) => {
                "DetachCustomerManagedPolicyReferenceFromPermissionSet"
            }
            PolicyChange::PutInline(_) => "PutInlinePolicyToPermissionSet",
            PolicyChange::DeleteInline => "DeleteInlinePolicyFromPermissionSet",
        }
    }
}

/// One application assignment as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationAssignment {
    pub application_arn: String,
    pub principal_type: PrincipalType,
    pub principal_id: String,
}

/// Whether an assignment is created or deleted (SSO Admin's two operations of each pair take
/// the same fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Remove,
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
    /// Attaches or detaches one of its policies, or puts or deletes its inline policy.
    async fn change_policy(&self, arn: &str, change: PolicyChange<'_>) -> Result<(), AwsError>;
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
    /// Creates or deletes the assignment: an asynchronous operation in AWS.
    async fn account_assignment(
        &self,
        a: &AccountAssignment,
        change: Change,
    ) -> Result<OpStatus, AwsError>;
    async fn account_assignment_status(
        &self,
        request_id: &str,
        deletion: bool,
    ) -> Result<OpStatus, AwsError>;

    async fn list_application_assignments(
        &self,
        application_arn: &str,
    ) -> Result<Vec<(PrincipalType, String)>, AwsError>;
    /// Creates or deletes the assignment (synchronous in AWS).
    async fn application_assignment(
        &self,
        a: &ApplicationAssignment,
        change: Change,
    ) -> Result<(), AwsError>;
    async fn set_assignment_required(
        &self,
        application_arn: &str,
        required: bool,
    ) -> Result<(), AwsError>;
}

/// An organisational unit, as listed under its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUnit {
    pub id: String,
    pub name: String,
}

/// Where an account stands in its organisation. Only an active account is a target: a
/// suspended or closing one cannot be signed in to, and one still being created has no
/// permission set provisioned yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Active,
    /// Suspended, closing, closed, still being created, or a state this build does not know.
    Inactive,
}

/// An account, as listed under its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub name: String,
    pub state: AccountState,
}

/// What the sync engine reads of AWS Organizations: the tree of roots, organisational units and
/// accounts that `[[assignments.account]]` targets name, and the accounts' tags. Read only:
/// the bridge never changes the organisation.
#[async_trait]
pub trait Organizations: Send + Sync {
    /// The management account's id (DescribeOrganization).
    async fn management_account(&self) -> Result<String, AwsError>;
    /// The ids of the organisation's roots (one today).
    async fn roots(&self) -> Result<Vec<String>, AwsError>;
    /// The organisational units directly under a root or unit.
    async fn units_under(&self, parent: &str) -> Result<Vec<OrgUnit>, AwsError>;
    /// The accounts directly under a root or unit.
    async fn accounts_under(&self, parent: &str) -> Result<Vec<OrgAccount>, AwsError>;
    /// An account's tags.
    async fn account_tags(&self, account: &str) -> Result<BTreeMap<String, String>, AwsError>;
}
