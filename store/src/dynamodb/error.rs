//! Maps SDK failures onto [`StoreError`], and the backoff of the adapter's own retries.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::StoreError;
pub(super) use crate::aws::is_throttling;
use crate::aws::{self, SdkFailure};

/// `Retry-After` for throttling: DynamoDB's capacity recovers within about a second.
pub(super) const THROTTLED_RETRY_AFTER: Duration = Duration::from_secs(1);
/// `Retry-After` when DynamoDB did not answer (connection refused, timeout, 5xx).
pub(super) const UNREACHABLE_RETRY_AFTER: Duration = Duration::from_secs(2);
/// `Retry-After` when transactions kept colliding: the contention is short-lived.
pub(super) const CONTENDED_RETRY_AFTER: Duration = Duration::from_millis(200);

/// The outcome of a conditional write: a failed condition is
/// [`PutOutcome::VersionMismatch`](crate::PutOutcome), any other failure an error.
pub(super) fn conditional<T, E>(
    op: &str,
    result: Result<T, SdkError<E>>,
) -> Result<crate::PutOutcome, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(crate::PutOutcome::Written),
        Err(err)
            if err.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(crate::PutOutcome::VersionMismatch)
        }
        Err(err) => Err(sdk_error(op, err)),
    }
}

/// Maps any failed SDK call. `op` names the call for the message.
pub(super) fn sdk_error<E>(op: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let reason = aws::describe(&format!("DynamoDB {op}"), &err);
    match aws::classify(&err) {
        SdkFailure::Throttled => StoreError::Unavailable {
            reason,
            retry_after: THROTTLED_RETRY_AFTER,
        },
        SdkFailure::Unavailable => StoreError::Unavailable {
            reason,
            retry_after: UNREACHABLE_RETRY_AFTER,
        },
        // ResourceNotFoundException (a missing table), ValidationException (a request we
        // built wrongly), AccessDenied...: a bug or a misconfiguration.
        SdkFailure::Rejected => StoreError::Internal(reason),
    }
}

pub(super) fn internal(what: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(what.to_string())
}

/// The adapter's own retries (transaction conflicts, unprocessed batch keys): jittered
/// exponential backoff, "equal jitter": half the step fixed, half random.
pub(super) fn backoff(attempt: u32) -> Duration {
    const BASE_MICROS: u64 = 20_000;
    const MAX_MICROS: u64 = 1_000_000;
    let step = BASE_MICROS
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_MICROS);
    Duration::from_micros(step / 2 + rand::random_range(0..=step / 2))
}

pub(super) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A string attribute of a stored item; absent or of another type is corrupt data.
pub(super) fn get_s<'a>(item: &'a Item, name: &str, what: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        other => Err(StoreError::Corrupt(format!(
            "{what}: attribute {name} is not a string: {other:?}"
        ))),
    }
}

/// A numeric attribute of a stored item, parsed.
pub(super) fn get_n<T: std::str::FromStr>(
    item: &Item,
    name: &str,
    what: &str,
) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| {
            StoreError::Corrupt(format!("{what}: attribute {name} is out of range: {value}"))
        }),
        other => Err(StoreError::Corrupt(format!(
            "{what}: attribute {name} is not a number: {other:?}"
        ))),
    }
}
