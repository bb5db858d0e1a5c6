//! What a use case can fail with. The HTTP mapping lives in `http::problem`, and only there.

use orders_domain::DomainError;
use orders_store::{FoldError, StoreError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppError {
    /// The order (or the requested version of it) does not exist.
    #[error("the order does not exist")]
    NotFound,
    /// The decider refused the command (already exists, or not allowed in this status).
    #[error(transparent)]
    Rejected(DomainError),
    /// `If-Match` did not hold against the current version.
    #[error("the order is at version {current_version}, which does not match If-Match")]
    PreconditionFailed { current_version: u64 },
    /// A concurrent writer appended first. Not retried: the client decides again.
    #[error("a concurrent request changed the order first; it is now at version {current_version}")]
    Conflict { current_version: u64 },
    /// The idempotency key was first used for a different request.
    #[error("the idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    /// Another request holds the key but its record is not readable (it expired in between).
    #[error("a concurrent request with the same idempotency key is in progress")]
    IdempotencyKeyBusy,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A broken invariant of this service: a bug.
    #[error("internal error: {0}")]
    Internal(String),
    /// The order's stored events do not fold: one does not decode, or the history skips a
    /// version. Damage or a bug, never the client's doing: an internal error.
    #[error("the stored events do not fold: {0}")]
    Corrupt(#[from] FoldError),
}

impl From<DomainError> for AppError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::NotFound => Self::NotFound,
            other => Self::Rejected(other),
        }
    }
}
