//! Maps SDK failures onto [`StoreError`], with the `Retry-After` of each kind.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::StoreError;
pub(super) use crate::aws::is_throttling;
use crate::aws::{self, SdkFailure};

/// `Retry-After` for throttling: DynamoDB's capacity recovers within about a second.
pub(super) const THROTTLED_RETRY_AFTER: Duration = Duration::from_secs(1);
/// `Retry-After` when DynamoDB did not answer (connection refused, timeout, 5xx).
pub(super) const UNREACHABLE_RETRY_AFTER: Duration = Duration::from_secs(2);
/// `Retry-After` when transactions kept colliding: the contention is short-lived.
pub(super) const CONTENDED_RETRY_AFTER: Duration = Duration::from_millis(200);

/// Whether a conditional write's condition held: `Ok(false)` for a failed condition, an error
/// for any other failure. Each caller names its own outcome (a put's, a delete's).
pub(super) fn condition_held<T, E>(
    op: &str,
    result: Result<T, SdkError<E>>,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if err.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
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
