//! Moves committed pages from the WAL into the database file on a background thread.
//!
//! By default SQLite checkpoints inside the commit that crosses the threshold, so every
//! thousandth commit or so also copies the WAL and fsyncs the file: measured, that tripled the
//! writer's p99 latency. A PASSIVE checkpoint here runs beside the writer and the readers
//! without blocking either. The writer keeps a much higher auto-checkpoint threshold as a
//! safety net, should this thread ever fall behind.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

use super::error::SqlResultExt;
use crate::StoreError;

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(200);

/// The writer's own auto-checkpoint threshold in pages (about 40 MiB of WAL): reached only if
/// the background checkpoints cannot keep up.
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Stops the thread when dropped (with the store).
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = super::open_connection(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpointer".into())
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(INTERVAL) {
                        Err(RecvTimeoutError::Timeout) => checkpoint(&conn),
                        // The store is gone: one last pass, so the WAL is small for the next open.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                            checkpoint(&conn);
                            break;
                        }
                    }
                }
            })
            .map_err(|err| {
                StoreError::Internal(format!("cannot start the checkpointer thread: {err}"))
            })?;
        Ok(Self { _stop: stop })
    }
}

fn checkpoint(conn: &Connection) {
    let result = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        })
        .db();
    match result {
        Ok((wal_frames, checkpointed)) => {
            tracing::trace!(wal_frames, checkpointed, "checkpointed the WAL")
        }
        Err(err) => tracing::warn!(error = %err, "a WAL checkpoint failed; retrying later"),
    }
}
