//! The AWS adapter: the Identity Store (users, groups, memberships) over aws-sdk-identitystore
//! ([`identitystore`]), instance discovery, permission sets and assignments over
//! aws-sdk-ssoadmin ([`ssoadmin`]), the organisation's accounts over aws-sdk-organizations
//! ([`organizations`]), all behind the target port ([`crate::sync::target`]).
//! Every attempt — retries included — waits for the one rate limiter; the SDK's own retries
//! are off and [`retry`] retries inside the limiter with jittered backoff (honouring
//! `RetryAfterSeconds`) on throttling, 5xx, stale revisions, timeouts and connection errors.
//! This module builds the adapter: Region, credentials, clients, limiter, identity store.

mod convert;
mod identitystore;
mod organizations;
mod preflight;
pub mod retry;
mod ssoadmin;

pub use preflight::Check;

use crate::config::AwsSettings;
use anyhow::Context;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use retry::error_chain;
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

pub struct AwsDirectory {
    /// Where the calls go, for the messages that say so.
    target: Target,
    /// Set by the first call that got an answer: before it, a connection that cannot be made
    /// means a wrong endpoint or no network, and fails at once instead of being retried.
    reached: std::sync::atomic::AtomicBool,
    ids: aws_sdk_identitystore::Client,
    sso: aws_sdk_ssoadmin::Client,
    org: aws_sdk_organizations::Client,
    identity_store_id: String,
    /// From `[aws] instance_arn`, else discovered when first needed.
    instance_arn: tokio::sync::OnceCell<String>,
    limiter: DefaultDirectRateLimiter,
    calls: Mutex<BTreeMap<String, u64>>,
    throttles: AtomicU64,
}

/// The Region and endpoints the adapter calls.
struct Target {
    region: String,
    /// `[aws] endpoint_url` or `AWS_ENDPOINT_URL`; None: AWS's own endpoints.
    endpoint: Option<String>,
}

impl Target {
    /// The endpoint an operation goes to: the configured one, or the AWS service endpoint.
    fn endpoint(&self, operation: &str) -> String {
        match (&self.endpoint, Service::of(operation)) {
            (Some(url), _) => url.clone(),
            (None, Service::SsoAdmin) => format!("https://sso.{}.amazonaws.com", self.region),
            (None, Service::IdentityStore) => {
                format!("https://identitystore.{}.amazonaws.com", self.region)
            }
            // A global service: one endpoint per partition, whatever the Region.
            (None, Service::Organizations) => {
                "https://organizations.us-east-1.amazonaws.com".into()
            }
        }
    }

    /// `AWS endpoint URL (Region R)`.
    fn describe(&self, operation: &str) -> String {
        format!("AWS endpoint {} (Region {})", self.endpoint(operation), self.region)
    }
}

/// The AWS service an operation belongs to (what its endpoint and IAM actions are named by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    IdentityStore,
    SsoAdmin,
    Organizations,
}

impl Service {
    /// The operations of Organizations are named one by one: `ListAccountsForParent` would
    /// otherwise pass for SSO Admin's.
    fn of(operation: &str) -> Service {
        const ORGANIZATIONS: [&str; 5] = [
            "DescribeOrganization",
            "ListRoots",
            "ListOrganizationalUnitsForParent",
            "ListAccountsForParent",
            "ListTagsForResource",
        ];
        if ORGANIZATIONS.contains(&operation) {
            Service::Organizations
        } else if ["Instance", "PermissionSet", "Account", "Application"]
            .iter()
            .any(|w| operation.contains(w))
        {
            Service::SsoAdmin
        } else {
            Service::IdentityStore
        }
    }

    /// The prefix of its IAM actions.
    fn iam_prefix(self) -> &'static str {
        match self {
            Service::IdentityStore => "identitystore",
            Service::SsoAdmin => "sso",
            Service::Organizations => "organizations",
        }
    }
}

/// The Region the adapter uses, resolved the same way for `sync`, `serve` and `check`:
/// `[aws] region`, else the SDK's own chain (`AWS_REGION`, `AWS_DEFAULT_REGION`, the `region`
/// of the profile in `~/.aws/config` chosen by `AWS_PROFILE`, EC2 instance metadata).
pub async fn resolve_region(settings: &AwsSettings) -> Option<Region> {
    if let Some(region) = &settings.region {
        return Some(Region::new(region.clone()));
    }
    use aws_config::meta::region::ProvideRegion;
    use tracing::instrument::WithSubscriber;
    // Each provider of the chain that finds nothing logs a WARN with the SDK's error dump;
    // a missing Region is the caller's one clear error instead.
    aws_config::default_provider::region::default_provider()
        .region()
        .with_subscriber(tracing::subscriber::NoSubscriber::default())
        .await
}

/// The error for no Region anywhere the SDK looks.
pub const NO_REGION: &str = "no AWS Region: set [aws] region (SCIMBRIDGE_AWS__REGION), AWS_REGION, \
     or region in the AWS_PROFILE's section of ~/.aws/config to the Identity Center instance's Region";

impl AwsDirectory {
    /// Clients for the configured Region and credentials; the identity store id from the
    /// config, else from sso-admin `ListInstances` (the one instance there must be). The
    /// Region and the credentials are resolved first, so that a missing one is one clear
    /// error, before any call is made.
    pub async fn connect(settings: &AwsSettings) -> anyhow::Result<AwsDirectory> {
        let region = resolve_region(settings).await.ok_or_else(|| anyhow::anyhow!(NO_REGION))?;
        let loader = || {
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .retry_config(RetryConfig::disabled())
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(10))
                        .operation_attempt_timeout(Duration::from_secs(30))
                        .build(),
                );
            loader = loader.region(region.clone());
            if let Some(url) = &settings.endpoint_url {
                loader = loader.endpoint_url(url);
            }
            loader
        };
        let mut shared = loader().load().await;
        if let Some(role) = &settings.role_arn {
            // The provider caches the role's credentials and refreshes them before they expire.
            let mut assume = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("scimbridge")
                .configure(&shared);
            if let Some(external_id) = &settings.external_id {
                assume = assume.external_id(external_id);
            }
            shared = loader().credentials_provider(assume.build().await).load().await;
        }
        let target = Target {
            region: region.to_string(),
            endpoint: shared.endpoint_url().map(str::to_owned),
        };
        credentials(&shared, &target).await?;
        // No burst, and 2% slack: calls are spaced evenly and a little apart, so no one-second
        // window ever holds more than `rate` calls even when the network delays one and not
        // the next (AWS counts per second, collectively).
        let rate = f64::from(settings.max_requests_per_second.max(1));
        let quota = Quota::with_period(Duration::from_secs_f64(1.02 / rate))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        let mut directory = AwsDirectory {
            target,
            reached: std::sync::atomic::AtomicBool::new(false),
            ids: aws_sdk_identitystore::Client::new(&shared),
            sso: aws_sdk_ssoadmin::Client::new(&shared),
            org: aws_sdk_organizations::Client::new(&shared),
            identity_store_id: settings.identity_store_id.clone().unwrap_or_default(),
            instance_arn: tokio::sync::OnceCell::new_with(settings.instance_arn.clone()),
            limiter: RateLimiter::direct(quota),
            calls: Mutex::new(BTreeMap::new()),
            throttles: AtomicU64::new(0),
        };
        if directory.identity_store_id.is_empty() {
            directory.identity_store_id = directory.discover().await?;
        }
        Ok(directory)
    }

    pub fn identity_store_id(&self) -> &str {
        &self.identity_store_id
    }

    /// The Region the calls go to.
    pub fn region(&self) -> &str {
        &self.target.region
    }

    /// The instance ARN, when configured or already discovered.
    pub fn known_instance_arn(&self) -> Option<&str> {
        self.instance_arn.get().map(String::as_str)
    }

    async fn discover(&self) -> anyhow::Result<String> {
        let out = self
            .call("ListInstances", || self.sso.list_instances().send())
            .await
            .context("discovering the Identity Center instance (sso:ListInstances)")?;
        // (identity store id, instance ARN) of each instance that has an identity store.
        let found: Vec<(&str, Option<&str>)> = out
            .instances()
            .iter()
            .filter_map(|i| i.identity_store_id().map(|id| (id, i.instance_arn())))
            .collect();
        match found.as_slice() {
            [(id, arn)] => {
                // The one instance is the one SSO Admin calls name too.
                if let Some(arn) = arn {
                    let _ = self.instance_arn.set((*arn).to_owned());
                }
                Ok((*id).to_owned())
            }
            [] => anyhow::bail!(
                "no IAM Identity Center instance in this account and Region: check [aws] region"
            ),
            many => anyhow::bail!(
                "{} Identity Center instances found: set [aws] identity_store_id (one of {})",
                many.len(),
                many.iter().map(|(id, _)| *id).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Resolves the credentials once through the SDK's chain (or the AssumeRole provider), so
/// that none found is one clear error at once, not a failure of every call after retries.
async fn credentials(shared: &aws_config::SdkConfig, target: &Target) -> anyhow::Result<()> {
    use aws_sdk_identitystore::config::ProvideCredentials;
    use tracing::instrument::WithSubscriber;
    let Some(provider) = shared.credentials_provider() else {
        anyhow::bail!("no AWS credentials provider configured");
    };
    // The chain's providers that find nothing log WARNs with SDK dumps; the error says it all.
    let found = provider
        .provide_credentials()
        .with_subscriber(tracing::subscriber::NoSubscriber::default())
        .await;
    found.map(drop).map_err(|e| {
        anyhow::anyhow!(
            "no AWS credentials found for {} (looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
             the AWS_PROFILE's ~/.aws/credentials and ~/.aws/config, web identity \
             (AWS_WEB_IDENTITY_TOKEN_FILE), the container endpoint, EC2 instance metadata; \
             with [aws] role_arn, AssumeRole): {}",
            target.describe("ListInstances"),
            error_chain(&e)
        )
    })
}
