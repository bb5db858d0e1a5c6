//! Maps SQLite failures onto [`StoreError`], so callers can tell "retry later" from "bug" from
//! "bad data" without knowing the backend.

use std::time::Duration;

use rusqlite::ErrorCode;

use crate::StoreError;

/// How long a caller should wait after the database was busy or unreachable. Lock waits are
/// already absorbed by the busy timeout, so anything that still fails is worth a short pause.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

pub(super) fn store_error(err: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match &err {
        E::SqliteFailure(failure, _) => match failure.code {
            // Contention or a filesystem problem: the data is fine, the request may succeed later.
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull => StoreError::Unavailable {
                reason: err.to_string(),
                retry_after: RETRY_AFTER,
            },
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                StoreError::Corrupt(err.to_string())
            }
            _ => StoreError::Internal(err.to_string()),
        },
        // A stored value of the wrong type or range: the file holds something we never write.
        E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..) => StoreError::Corrupt(err.to_string()),
        _ => StoreError::Internal(err.to_string()),
    }
}

/// `?` on rusqlite results inside the adapter, without a public `From` impl on [`StoreError`].
pub(super) trait SqlResultExt<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> SqlResultExt<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(store_error)
    }
}

/// Whether `err` is a UNIQUE (or primary key) violation on the given `table.column` list, as
/// SQLite names it in the message, e.g. `events.order_id, events.version`.
pub(super) fn is_unique_violation(err: &rusqlite::Error, columns: &str) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(failure, Some(message)) => {
            (failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
                && message.ends_with(columns)
        }
        _ => false,
    }
}

/// Converts an unsigned domain number to SQLite's signed integer; larger values are a caller bug.
pub(super) fn to_sql_int(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Internal(format!("{what} {value} is too large")))
}

/// Converts a stored integer back; a negative one means the file holds data we never wrote.
pub(super) fn from_sql_int(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("stored {what} {value} is negative")))
}
