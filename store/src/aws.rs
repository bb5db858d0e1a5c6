//! How every AWS SDK client of the service is configured: DynamoDB here, EventBridge and
//! DynamoDB Streams in `orders-projections`. One place for the timeouts, the bounded retries,
//! the emulator conveniences (a default region and dummy credentials on loopback) and the
//! HTTPS client (`https.rs`).

mod https;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Connect timeout: a dead endpoint is noticed in about this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One HTTP attempt. Every call this adapter makes is small (at most 1 MB of response).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// One operation, all of the SDK's retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
/// The SDK's own attempts per operation (standard mode: throttling, 5xx, timeouts and
/// connection errors are retried with jittered exponential backoff and a retry quota).
pub(crate) const SDK_MAX_ATTEMPTS: u32 = 3;

/// The timeouts every client of this adapter should have.
pub(crate) fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Bounded, jittered retries with a short first backoff: a request that is throttled three
/// times is better answered with a 503 and `Retry-After` than held for many seconds.
pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(SDK_MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(1))
}

/// The SDK configuration for one service: the standard AWS config chain (region, credentials,
/// `AWS_ENDPOINT_URL` or the service's own `endpoint_var`, e.g. `AWS_ENDPOINT_URL_DYNAMODB`),
/// with these timeouts and retries. `endpoint_url` overrides the endpoint (e.g. DynamoDB Local,
/// or the moto server for EventBridge).
///
/// For an emulator, so that it works without any AWS configuration: when an endpoint is set
/// (by `endpoint_url` or the env vars) and no region is configured, the region is `us-east-1`;
/// when the endpoint is on loopback and neither `AWS_ACCESS_KEY_ID` nor `AWS_PROFILE` is set,
/// the credentials are a fixed dummy pair (`local`/`local`). DynamoDB Local keeps a separate
/// database per access key and region unless it runs with `-sharedDb`, so every process that
/// shares one should agree on both.
pub async fn sdk_config(endpoint_url: Option<&str>, endpoint_var: &str) -> SdkConfig {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let endpoint = endpoint_url
        .map(str::to_owned)
        .or_else(|| env(endpoint_var))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeout_config())
        .retry_config(retry_config());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(url) = &endpoint {
        let region = aws_config::meta::region::RegionProviderChain::default_provider()
            .or_else(aws_config::Region::from_static("us-east-1"));
        loader = loader.region(region);
        if is_loopback(url) && env("AWS_ACCESS_KEY_ID").is_none() && env("AWS_PROFILE").is_none() {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "orders-local-endpoint",
            ));
        }
    }
    if let Some(http_client) = https::client_trusting_the_system_bundle() {
        loader = loader.http_client(http_client);
    }
    let config = loader.load().await;
    tracing::debug!(endpoint = ?endpoint, region = ?config.region(), endpoint_var, "loaded the AWS SDK configuration");
    config
}

/// What a failed SDK call means for its caller, whichever the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkFailure {
    /// Throttled: capacity recovers within about a second.
    Throttled,
    /// No answer (connection refused, timeout, a broken response), or the service failed or
    /// was busy: retrying later can succeed.
    Unavailable,
    /// Refused (validation, permissions, a missing resource): the same call fails again.
    Rejected,
}

/// Classifies a failed call (after the SDK's own retries).
pub fn classify<E>(err: &SdkError<E>) -> SdkFailure
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SdkFailure::Unavailable
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if is_throttling(code) {
                SdkFailure::Throttled
            } else if is_transient(code) || service.raw().status().is_server_error() {
                SdkFailure::Unavailable
            } else {
                SdkFailure::Rejected
            }
        }
        _ => SdkFailure::Rejected,
    }
}

/// One line for logs and errors: "`what`: Code: message", or the whole error context when no
/// answer came back.
pub fn describe<E>(what: &str, err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err.code() {
        Some(code) => format!("{what}: {code}: {}", err.message().unwrap_or("no message")),
        None => format!("{what}: {}", DisplayErrorContext(err)),
    }
}

/// Error codes (of a whole call, or of one DynamoDB transaction item's cancellation reason)
/// that mean "throttled, try later".
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "ThrottlingError"
            | "Throttling"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceeded"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "LimitExceededException"
            | "SlowDown"
    )
}

/// Codes that mean the service itself failed or was busy, not that the request was wrong.
fn is_transient(code: &str) -> bool {
    matches!(
        code,
        "InternalServerError"
            | "InternalFailure"
            | "InternalException"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            // DynamoDB: a non-transactional write that collided with an ongoing transaction.
            | "TransactionConflictException"
            // DynamoDB: the SDK retried a transaction whose first attempt is still running.
            | "TransactionInProgressException"
    )
}

/// The SDK's own default HTTPS client (hyper, rustls with aws-lc, the platform's roots), for
/// wrapping where a configuration has none of its own.
pub fn default_http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https()
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_endpoints_are_recognised() {
        for url in [
            "http://localhost:8000",
            "http://127.0.0.1:8000/",
            "http://[::1]:8000",
            "LOCALHOST",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://dynamodb.eu-west-1.amazonaws.com",
            "http://10.0.0.5:8000",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
