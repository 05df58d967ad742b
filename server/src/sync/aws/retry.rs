//! One AWS operation, as the adapter makes it: the rate limiter before every attempt, the
//! count of calls and throttles, the classification of SDK errors into [`AwsError`]s, and the
//! retries (jittered exponential backoff, honouring `RetryAfterSeconds`) of what is worth
//! retrying; paging of list operations; and the `scimbridge_aws_calls_total` metric.

use super::{AwsDirectory, Service};
use crate::sync::target::AwsError;
use aws_sdk_identitystore::error::{ProvideErrorMetadata, SdkError};
use serde_json::Value;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Attempts per call before the error is reported (the first try included).
const MAX_ATTEMPTS: u32 = 8;

/// Attempts of an operation AWS answers with ConflictException (waits from 0.4 s doubling to
/// 20 s: about a minute in all, as long as a provisioning of the same permission set may run).
const CONFLICT_ATTEMPTS: u32 = 8;

impl AwsDirectory {
    /// One AWS operation: waits for the limiter before every attempt, counts it, and retries
    /// what is worth retrying.
    pub(super) async fn call<T>(
        &self,
        operation: &'static str,
        mut send: impl Attempt<T>,
    ) -> Result<T, AwsError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.until_ready().await;
            self.count(operation);
            let err = match send.send().await {
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

    /// [`AwsDirectory::call`], with ConflictException retried after a backoff; the last
    /// attempt's answer, whatever it is, is the call's.
    pub(super) async fn call_settling<T>(
        &self,
        operation: &'static str,
        mut send: impl Attempt<T>,
    ) -> Result<T, AwsError> {
        for attempt in 1..CONFLICT_ATTEMPTS {
            match self.call(operation, || send.send()).await {
                Err(AwsError::Conflict { message, .. }) => {
                    let wait = backoff(attempt + 1, None, 0.5 + rand::random::<f64>() / 2.0);
                    tracing::debug!(operation, attempt, ?wait, %message, "conflict; retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
        self.call(operation, || send.send()).await
    }

    /// Every page of a list operation: `send` fetches the page after a token, `take` keeps
    /// its items and returns the next token.
    pub(super) async fn all_pages<T, P, E, F, Fut>(
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

/// One attempt of an SDK request (`|| req.clone().send()`), sent anew on every retry.
pub(super) trait Attempt<T> {
    type Error: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static;
    type Sent: Future<Output = Result<T, SdkError<Self::Error>>>;

    fn send(&mut self) -> Self::Sent;
}

impl<T, E, F, Fut> Attempt<T> for F
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    type Error = E;
    type Sent = Fut;

    fn send(&mut self) -> Fut {
        self()
    }
}

/// Backoff before retry `attempt` (1-based): exponential from 200 ms, capped at 20 s, with full
/// jitter, and never shorter than what the service asked for.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let base_ms = 200u64.saturating_mul(1 << attempt.min(10).saturating_sub(1));
    let capped = base_ms.min(20_000) as f64;
    let jittered = Duration::from_millis((capped * jitter.clamp(0.0, 1.0)) as u64);
    retry_after.map_or(jittered, |r| jittered.max(r))
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
        // Organizations: the account is in no organisation, or the caller may not read it (a
        // member account that is no delegated administrator).
        "AWSOrganizationsNotInUseException" => Outcome::Fail(AwsError::Configuration {
            operation,
            message: format!(
                "{described} — rules that target organisational units, tags or account names \
                 need AWS Organizations"
            ),
        }),
        "ParentNotFoundException"
        | "OrganizationalUnitNotFoundException"
        | "AccountNotFoundException"
        | "TargetNotFoundException"
        | "ChildNotFoundException" => Outcome::Fail(AwsError::NotFound { operation, message }),
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
    let service = Service::of(operation).iam_prefix();
    format!("{message} — the credentials lack the IAM permission {service}:{operation}")
}

pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `Ok(None)` for NotFound.
pub(super) fn found<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(AwsError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `Ok(())` for NotFound: deleting what is gone is done.
pub(super) fn gone(r: Result<(), AwsError>) -> Result<(), AwsError> {
    found(r).map(|_| ())
}

/// `scimbridge_aws_calls_total{operation, outcome}`: every attempt, by how it ended: `ok`;
/// `throttled` or `retried` (a throttle, 5xx or timeout, tried again); `rejected` (AWS said no
/// to this principal: a conflict, not found, an invalid value); `error` (access denied, a
/// configuration error, or retries exhausted).
fn aws_call_metric(operation: &'static str, outcome: &'static str) {
    metrics::counter!("scimbridge_aws_calls_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
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
