//! Moves committed pages from the WAL into the database file on a background thread.
//!
//! By default SQLite checkpoints inside the commit that crosses the threshold, so every
//! thousandth commit or so also copies the WAL and fsyncs the file. A PASSIVE checkpoint here
//! runs beside the writer and the readers without blocking either. The writer keeps a much
//! higher auto-checkpoint threshold as a safety net, should this thread ever fall behind.
//!
//! What it buys, measured against the plain way (no thread; SQLite's own auto-checkpoint every
//! 1 000 pages) by the `sqlite_load` bench (medians of 3 alternated runs on a 2-core machine at
//! load average 5-7, 2026-12-01): as fast as 64 writers go, 22 500 creates/s at p99 14 ms
//! against 15 700 at p99 21 ms (1.4x the rate, two thirds of the p99); paced at 5 000/s, no
//! difference within the noise (p99 17 ms and 19 ms). So it pays under saturation only, which
//! is where the README's HTTP figures are taken.
//!
//! A checkpoint fsyncs the WAL and then the database file, whatever the [`SyncMode`]. Under
//! `Full` each commit has fsynced the WAL already, so that costs the writer nothing more;
//! under `Normal` it is the only time the WAL reaches the disk, so [`INTERVAL`] bounds the
//! acknowledged writes an OS crash or a power cut can lose.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

use super::SyncMode;
use super::error::SqlResultExt;
use crate::StoreError;

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(200);

/// The longest a checkpoint waits for the write lock or for readers to leave the WAL.
const RESTART_MAX_WAIT: Duration = Duration::from_millis(5);

/// The WAL length (in pages) at which the WAL is restarted, about 16 MiB.
const RESTART_AFTER_FRAMES: i64 = 4_096;

/// The writer's own auto-checkpoint threshold in pages (about 40 MiB of WAL): reached only if
/// the background checkpoints cannot keep up.
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Stops the thread when dropped (with the store).
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path, sync: SyncMode) -> Result<Self, StoreError> {
        let conn = super::open_connection(path, sync)?;
        // A RESTART holds the write lock while it waits for readers: keep that wait short, and
        // rather try again on the next round.
        conn.busy_timeout(RESTART_MAX_WAIT).db()?;
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
    match run(conn, "PASSIVE") {
        Ok(Checkpoint {
            wal_frames,
            checkpointed,
            ..
        }) => {
            tracing::trace!(wal_frames, checkpointed, "checkpointed the WAL");
            // Readers come and go all the time, so the writer rarely finds the WAL free to
            // start over from its beginning, and the file would only grow. Once it is long and
            // (nearly) all copied, RESTART waits for a moment with no reader in it and makes the
            // writer start over; it blocks the writer only for the few frames still to copy.
            if wal_frames >= RESTART_AFTER_FRAMES {
                match run(conn, "RESTART") {
                    Ok(Checkpoint { busy: false, .. }) => {
                        tracing::debug!(wal_frames, "restarted the WAL")
                    }
                    Ok(Checkpoint { busy: true, .. }) => {
                        tracing::debug!(wal_frames, "the WAL is busy; restarting it later")
                    }
                    Err(err) => tracing::debug!(error = %err, "cannot restart the WAL yet"),
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "a WAL checkpoint failed; retrying later"),
    }
}

/// What `PRAGMA wal_checkpoint` reports.
struct Checkpoint {
    /// The checkpoint could not finish (a RESTART found the lock or a reader in its way).
    busy: bool,
    /// The WAL's length, in pages.
    wal_frames: i64,
    /// How many of them are now copied into the database.
    checkpointed: i64,
}

fn run(conn: &Connection, mode: &str) -> Result<Checkpoint, StoreError> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Checkpoint {
            busy: row.get::<_, i64>(0)? != 0,
            wal_frames: row.get(1)?,
            checkpointed: row.get(2)?,
        })
    })
    .db()
}
