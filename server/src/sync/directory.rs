//! What the sync engine needs of the Identity Store, as a trait: the AWS adapter
//! ([`super::aws::AwsDirectory`]) implements it over the SDK; unit tests use an in-memory one.

use crate::mapping::aws_profile::AwsAttributes;
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

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
    fn sso(&self) -> &dyn super::access::SsoAdmin;

    /// Calls made so far (attempts, retries included), by operation name.
    fn calls(&self) -> std::collections::BTreeMap<String, u64>;
    /// Throttling answers received so far.
    fn throttles(&self) -> u64;
}

/// Backoff before retry `attempt` (1-based): exponential from 200 ms, capped at 20 s, with full
/// jitter, and never shorter than what the service asked for.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let base_ms = 200u64.saturating_mul(1 << attempt.min(10).saturating_sub(1));
    let capped = base_ms.min(20_000) as f64;
    let jittered = Duration::from_millis((capped * jitter.clamp(0.0, 1.0)) as u64);
    retry_after.map_or(jittered, |r| jittered.max(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        assert_eq!(backoff(1, None, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(3, None, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(30, None, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(3, None, 0.5), Duration::from_millis(400));
        assert_eq!(backoff(1, Some(Duration::from_secs(2)), 1.0), Duration::from_secs(2));
    }
}
