//! The AWS adapter: the Identity Store (users, groups, memberships) over aws-sdk-identitystore,
//! instance discovery, permission sets and assignments over aws-sdk-ssoadmin ([`sso`]). Every
//! attempt — retries included — waits for the one rate limiter; the SDK's own retries are off
//! and [`AwsDirectory::call`] retries inside the limiter with jittered backoff (honouring
//! `RetryAfterSeconds`) on throttling, 5xx, stale revisions, timeouts and connection errors.

mod convert;
mod preflight;
mod sso;

pub use preflight::Check;

use super::directory::{AttributeChange, AwsError, Directory, Listed, backoff};
use crate::config::AwsSettings;
use crate::mapping::aws_profile::AwsAttributes;
use anyhow::Context;
use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_identitystore::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_identitystore::operation::list_group_memberships::ListGroupMembershipsOutput;
use aws_sdk_identitystore::operation::list_groups::ListGroupsOutput;
use aws_sdk_identitystore::operation::list_users::ListUsersOutput;
use aws_sdk_identitystore::types::{AlternateIdentifier, MemberId, UniqueAttribute};
use aws_smithy_types::Document;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Attempts per call before the error is reported (the first try included).
const MAX_ATTEMPTS: u32 = 8;

pub struct AwsDirectory {
    /// Where the calls go, for the messages that say so.
    target: Target,
    /// Set by the first call that got an answer: before it, a connection that cannot be made
    /// means a wrong endpoint or no network, and fails at once instead of being retried.
    reached: std::sync::atomic::AtomicBool,
    ids: aws_sdk_identitystore::Client,
    sso: aws_sdk_ssoadmin::Client,
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
    /// The endpoint an operation goes to: the configured one, or the AWS service endpoint
    /// (SSO Admin for instances, permission sets and assignments; else the Identity Store).
    fn endpoint(&self, operation: &str) -> String {
        match &self.endpoint {
            Some(url) => url.clone(),
            None if is_sso_admin(operation) => format!("https://sso.{}.amazonaws.com", self.region),
            None => format!("https://identitystore.{}.amazonaws.com", self.region),
        }
    }

    /// `AWS endpoint URL (Region R)`.
    fn describe(&self, operation: &str) -> String {
        format!("AWS endpoint {} (Region {})", self.endpoint(operation), self.region)
    }
}

/// Whether an operation is SSO Admin's (the rest are the Identity Store's).
fn is_sso_admin(operation: &str) -> bool {
    ["Instance", "PermissionSet", "Account", "Application"].iter().any(|w| operation.contains(w))
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

    /// One AWS operation: waits for the limiter before every attempt, counts it, and retries
    /// what is worth retrying.
    async fn call<T, E, F, Fut>(&self, operation: &'static str, mut send: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.until_ready().await;
            self.count(operation);
            let err = match send().await {
                Ok(out) => {
                    self.reached.store(true, Ordering::Relaxed);
                    aws_call_metric(operation, "ok");
                    return Ok(out);
                }
                Err(err) => err,
            };
            if !matches!(err, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) {
                // An answer, even an error, proves the endpoint is there.
                self.reached.store(true, Ordering::Relaxed);
            }
            if !self.reached.load(Ordering::Relaxed)
                && let Some(cause) = connection_failure(&err)
            {
                aws_call_metric(operation, "error");
                return Err(AwsError::Unreachable {
                    operation,
                    attempts: attempt,
                    message: format!(
                        "{} is not reachable: {cause}",
                        self.target.describe(operation)
                    ),
                });
            }
            match classify(operation, &err) {
                Outcome::Retry { message, retry_after, throttled } => {
                    if throttled {
                        self.throttles.fetch_add(1, Ordering::Relaxed);
                    }
                    if attempt >= MAX_ATTEMPTS {
                        aws_call_metric(operation, "error");
                        let attempts = attempt;
                        let at = self.target.describe(operation);
                        // Sent nowhere, or no answer in time: AWS was not reached at all.
                        let unanswered =
                            matches!(err, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_));
                        return Err(if unanswered {
                            let message =
                                format!("{at} not reachable after {attempts} attempts: {message}");
                            AwsError::Unreachable { operation, attempts, message }
                        } else {
                            AwsError::Unavailable {
                                operation,
                                attempts,
                                message: format!("{message} ({at})"),
                            }
                        });
                    }
                    aws_call_metric(operation, if throttled { "throttled" } else { "retried" });
                    let wait = backoff(attempt, retry_after, rand::random::<f64>());
                    tracing::debug!(operation, attempt, ?wait, %message, "retrying an AWS call");
                    tokio::time::sleep(wait).await;
                }
                Outcome::Fail(e) => {
                    aws_call_metric(operation, if e.is_fatal() { "error" } else { "rejected" });
                    return Err(e);
                }
            }
        }
    }

    /// Every page of a list operation: `send` fetches the page after a token, `take` keeps
    /// its items and returns the next token.
    async fn all_pages<T, P, E, F, Fut>(
        &self,
        operation: &'static str,
        mut send: F,
        mut take: impl FnMut(P, &mut Vec<T>) -> Option<String>,
    ) -> Result<Vec<T>, AwsError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<P, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self.call(operation, || send(token.clone())).await?;
            token = take(page, &mut all).filter(|t| !t.is_empty());
            match &token {
                None => return Ok(all),
                // A service that hands out a token twice would page forever.
                Some(t) if !seen.insert(t.clone()) => {
                    return Err(AwsError::Unavailable {
                        operation,
                        attempts: 1,
                        message: "the same NextToken came back twice; stopped paging".into(),
                    });
                }
                Some(_) => {}
            }
        }
    }

    fn count(&self, operation: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(operation.to_owned()).or_default() += 1;
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

/// Why a connection could not be made (the request never reached AWS): `connection refused`,
/// `unknown host …`; None for every other error (an answer, a timeout, a broken response).
fn connection_failure<E: std::error::Error + 'static>(err: &SdkError<E>) -> Option<String> {
    let SdkError::DispatchFailure(failure) = err else { return None };
    if !failure.is_io() {
        return None;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut deepest = err.to_string();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return Some("connection refused".to_owned());
        }
        let text = e.to_string();
        // hyper's resolver says "dns error"; getaddrinfo "failed to lookup address".
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return Some(format!("unknown host ({text})"));
        }
        deepest = text;
        source = e.source();
    }
    Some(deepest)
}

enum Outcome {
    Retry { message: String, retry_after: Option<Duration>, throttled: bool },
    Fail(AwsError),
}

/// What an SDK error means for the caller. Classified by the error code (`__type`), never by
/// the HTTP status, which differs between AWS (409 Conflict) and emulators (400).
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    err: &SdkError<E>,
) -> Outcome {
    let retry = |message: String, retry_after, throttled| Outcome::Retry {
        message,
        retry_after,
        throttled,
    };
    let SdkError::ServiceError(ctx) = err else {
        return match err {
            SdkError::ConstructionFailure(_) => {
                Outcome::Fail(AwsError::Invalid { operation, message: format!("{err:?}") })
            }
            // Timeouts, connection errors, unreadable responses.
            _ => retry(error_chain(err), None, false),
        };
    };
    let raw = ctx.raw();
    let status = raw.status().as_u16();
    let body: Value =
        raw.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
    let code = ctx.err().code().unwrap_or_default().to_owned();
    let message =
        ctx.err().message().map(str::to_owned).unwrap_or_else(|| format!("HTTP {status}"));
    let reason = body.get("Reason").and_then(Value::as_str).map(str::to_owned);
    let retry_after =
        body.get("RetryAfterSeconds").and_then(Value::as_u64).map(Duration::from_secs);
    let described = format!("{code}: {message}");
    match code.as_str() {
        "ThrottlingException" | "TooManyRequestsException" => retry(described, retry_after, true),
        "InternalServerException" | "ServiceUnavailableException" => {
            retry(described, retry_after, false)
        }
        "ConflictException" if reason.as_deref() == Some("CONCURRENT_MODIFICATION") => {
            retry(described, None, false)
        }
        "ConflictException" => Outcome::Fail(AwsError::Conflict { operation, message }),
        // Only a missing user, group or membership is "gone"; a missing identity store or KMS
        // key is a setup error that must not read as "deleted".
        "ResourceNotFoundException" => {
            let resource = body.get("ResourceType").and_then(Value::as_str).unwrap_or_default();
            if reason.as_deref() == Some("KMS_KEY_NOT_FOUND")
                || matches!(resource, "IDENTITY_STORE" | "RESOURCE_POLICY")
            {
                Outcome::Fail(AwsError::Configuration {
                    operation,
                    message: format!(
                        "{message} ({resource}): check [aws] identity_store_id and the store's KMS key"
                    ),
                })
            } else {
                Outcome::Fail(AwsError::NotFound { operation, message })
            }
        }
        // Keys deactivated, a session expired, a signature refused: no principal will fare better.
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException" => Outcome::Fail(AwsError::AccessDenied {
            operation,
            message: format!(
                "{described} — the AWS credentials are invalid or expired (check the role, IRSA or keys)"
            ),
        }),
        "AccessDeniedException" => Outcome::Fail(AwsError::AccessDenied {
            operation,
            message: access_denied_hint(operation, reason.as_deref(), &message),
        }),
        "ValidationException" => Outcome::Fail(AwsError::Invalid { operation, message }),
        _ if status >= 500 => retry(described, retry_after, false),
        _ => Outcome::Fail(AwsError::Invalid { operation, message: described }),
    }
}

/// Names what is missing: the IAM action, or KMS access to the store's customer-managed key.
fn access_denied_hint(operation: &str, reason: Option<&str>, message: &str) -> String {
    if reason.is_some_and(|r| r.starts_with("KMS")) {
        return format!(
            "{message} — the identity store is encrypted with a customer-managed KMS key: grant \
             kms:Decrypt on it to this role, via identitystore (AWS's key policy for IAM Identity \
             Center administrators)"
        );
    }
    let service = if is_sso_admin(operation) { "sso" } else { "identitystore" };
    format!("{message} — the credentials lack the IAM permission {service}:{operation}")
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn unique(path: &str, value: &str) -> Result<AlternateIdentifier, AwsError> {
    let attr = UniqueAttribute::builder()
        .attribute_path(path)
        .attribute_value(Document::String(value.to_owned()))
        .build()
        .map_err(|e| AwsError::Invalid { operation: "GetUserId", message: e.to_string() })?;
    Ok(AlternateIdentifier::UniqueAttribute(attr))
}

/// `Ok(None)` for NotFound.
fn found<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(AwsError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `Ok(())` for NotFound: deleting what is gone is done.
fn gone(r: Result<(), AwsError>) -> Result<(), AwsError> {
    found(r).map(|_| ())
}

#[async_trait]
impl Directory for AwsDirectory {
    async fn create_user(&self, attrs: &AwsAttributes) -> Result<String, AwsError> {
        let req = convert::create_user(
            self.ids.create_user().identity_store_id(&self.identity_store_id),
            attrs,
        );
        let out = self.call("CreateUser", || req.clone().send()).await?;
        Ok(out.user_id().to_owned())
    }

    async fn update_user(&self, id: &str, changes: &[AttributeChange]) -> Result<(), AwsError> {
        let ops = convert::operations(changes, "UpdateUser")?;
        let req = self
            .ids
            .update_user()
            .identity_store_id(&self.identity_store_id)
            .user_id(id)
            .set_operations(Some(ops));
        self.call("UpdateUser", || req.clone().send()).await.map(|_| ())
    }

    async fn delete_user(&self, id: &str) -> Result<(), AwsError> {
        let req = self.ids.delete_user().identity_store_id(&self.identity_store_id).user_id(id);
        gone(self.call("DeleteUser", || req.clone().send()).await.map(|_| ()))
    }

    async fn find_user(&self, user_name: &str) -> Result<Option<String>, AwsError> {
        let req = self
            .ids
            .get_user_id()
            .identity_store_id(&self.identity_store_id)
            .alternate_identifier(unique("userName", user_name)?);
        let out = found(self.call("GetUserId", || req.clone().send()).await)?;
        Ok(out.map(|o| o.user_id().to_owned()))
    }

    async fn list_users(&self) -> Result<Vec<Listed>, AwsError> {
        let list =
            self.ids.list_users().identity_store_id(&self.identity_store_id).max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListUsers", send, |page: ListUsersOutput, all| {
            all.extend(page.users().iter().map(|u| Listed {
                id: u.user_id().to_owned(),
                name: u.user_name().unwrap_or_default().to_owned(),
            }));
            page.next_token().map(str::to_owned)
        })
        .await
    }

    async fn create_group(&self, attrs: &AwsAttributes) -> Result<String, AwsError> {
        let mut req = self.ids.create_group().identity_store_id(&self.identity_store_id);
        if let Some(name) = attrs.get("displayName").and_then(Value::as_str) {
            req = req.display_name(name);
        }
        if let Some(description) = attrs.get("description").and_then(Value::as_str) {
            req = req.description(description);
        }
        let out = self.call("CreateGroup", || req.clone().send()).await?;
        Ok(out.group_id().to_owned())
    }

    async fn update_group(&self, id: &str, changes: &[AttributeChange]) -> Result<(), AwsError> {
        let ops = convert::operations(changes, "UpdateGroup")?;
        let req = self
            .ids
            .update_group()
            .identity_store_id(&self.identity_store_id)
            .group_id(id)
            .set_operations(Some(ops));
        self.call("UpdateGroup", || req.clone().send()).await.map(|_| ())
    }

    async fn delete_group(&self, id: &str) -> Result<(), AwsError> {
        let req = self.ids.delete_group().identity_store_id(&self.identity_store_id).group_id(id);
        gone(self.call("DeleteGroup", || req.clone().send()).await.map(|_| ()))
    }

    async fn find_group(&self, display_name: &str) -> Result<Option<String>, AwsError> {
        let req = self
            .ids
            .get_group_id()
            .identity_store_id(&self.identity_store_id)
            .alternate_identifier(unique("displayName", display_name)?);
        let out = found(self.call("GetGroupId", || req.clone().send()).await)?;
        Ok(out.map(|o| o.group_id().to_owned()))
    }

    async fn list_groups(&self) -> Result<Vec<Listed>, AwsError> {
        let list =
            self.ids.list_groups().identity_store_id(&self.identity_store_id).max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListGroups", send, |page: ListGroupsOutput, all| {
            all.extend(page.groups().iter().map(|g| Listed {
                id: g.group_id().to_owned(),
                name: g.display_name().unwrap_or_default().to_owned(),
            }));
            page.next_token().map(str::to_owned)
        })
        .await
    }

    async fn list_memberships(&self, group_id: &str) -> Result<Vec<(String, String)>, AwsError> {
        let list = self
            .ids
            .list_group_memberships()
            .identity_store_id(&self.identity_store_id)
            .group_id(group_id)
            .max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListGroupMemberships", send, |page: ListGroupMembershipsOutput, all| {
            for m in page.group_memberships() {
                if let Some(MemberId::UserId(user)) = m.member_id() {
                    all.push((m.membership_id().to_owned(), user.clone()));
                }
            }
            page.next_token().map(str::to_owned)
        })
        .await
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<String, AwsError> {
        let member = MemberId::UserId(user_id.to_owned());
        let req = self
            .ids
            .create_group_membership()
            .identity_store_id(&self.identity_store_id)
            .group_id(group_id)
            .member_id(member.clone());
        match self.call("CreateGroupMembership", || req.clone().send()).await {
            Ok(out) => Ok(out.membership_id().to_owned()),
            // Already a member (AWS answers a duplicate with a conflict): find its id.
            Err(AwsError::Conflict { .. }) => {
                let req = self
                    .ids
                    .get_group_membership_id()
                    .identity_store_id(&self.identity_store_id)
                    .group_id(group_id)
                    .member_id(member);
                let out = self.call("GetGroupMembershipId", || req.clone().send()).await?;
                Ok(out.membership_id().to_owned())
            }
            Err(e) => Err(e),
        }
    }

    async fn remove_member(&self, membership_id: &str) -> Result<(), AwsError> {
        let req = self
            .ids
            .delete_group_membership()
            .identity_store_id(&self.identity_store_id)
            .membership_id(membership_id);
        gone(self.call("DeleteGroupMembership", || req.clone().send()).await.map(|_| ()))
    }

    fn sso(&self) -> &dyn crate::sync::access::SsoAdmin {
        self
    }

    fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn throttles(&self) -> u64 {
        self.throttles.load(Ordering::Relaxed)
    }
}

/// `scimbridge_aws_calls_total{operation, outcome}`: every attempt, by how it ended: `ok`;
/// `throttled` or `retried` (a throttle, 5xx or timeout, tried again); `rejected` (AWS said no
/// to this principal: a conflict, not found, an invalid value); `error` (access denied, a
/// configuration error, or retries exhausted).
fn aws_call_metric(operation: &'static str, outcome: &'static str) {
    metrics::counter!("scimbridge_aws_calls_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
}
