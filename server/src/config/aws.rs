//! `[aws]`: where and how the sync engine reaches IAM Identity Center.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    /// The Identity Center instance's (primary) Region; unset: the SDK's own chain
    /// (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Emulators and tests only.
    pub endpoint_url: Option<String>,
    /// Discovered with sso-admin `ListInstances` when unset.
    pub identity_store_id: Option<String>,
    pub instance_arn: Option<String>,
    /// Optional STS AssumeRole.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// One limiter for every AWS attempt, retries included (AWS allows ~20/s in total).
    pub max_requests_per_second: u32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            identity_store_id: None,
            instance_arn: None,
            role_arn: None,
            external_id: None,
            max_requests_per_second: 10,
        }
    }
}
