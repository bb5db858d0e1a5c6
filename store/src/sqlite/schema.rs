//! Connection settings and the schema, versioned with `PRAGMA user_version` so a newer build can
//! migrate an existing file in place.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::error::SqlResultExt;
use super::read_model::{self, LIVE_TABLE};
use crate::{StoreError, TableName};

/// How long a statement waits for another process's lock (e.g. `orders replay` next to
/// `orders serve`) before it reports the store as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One step of the schema: it moves a file from `user_version` `i` to `i + 1` (its index in
/// [`MIGRATIONS`]). Append new ones; never change what a released one does.
struct Migration {
    /// Statements on the event log, idempotency and checkpoint tables.
    tables: &'static str,
    /// Statements on the read model, for a table of any name: `orders` when the file migrates,
    /// a shadow (`orders replay --into`) when [`create_read_model`] makes one. So a shadow is
    /// made by the very statements that made `orders`, migration after migration.
    read_model: fn(&str) -> String,
}

const MIGRATIONS: &[Migration] = &[Migration {
    // 1: the tables of DESIGN §3, plus the change feed position and consumer checkpoints.
    tables: r#"
    -- One row per event. `position` is the global change feed; AUTOINCREMENT keeps positions
    -- from ever being reused, so a consumer's checkpoint can never skip a newer event.
    CREATE TABLE events (
        position       INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id       TEXT    NOT NULL,
        version        INTEGER NOT NULL CHECK (version >= 1),
        event_id       TEXT    NOT NULL UNIQUE,
        event_type     TEXT    NOT NULL,
        schema_version INTEGER NOT NULL,
        occurred_at    TEXT    NOT NULL,
        data           TEXT    NOT NULL,
        metadata       TEXT    NOT NULL,
        UNIQUE (order_id, version)
    );

    CREATE TABLE idempotency (
        key         TEXT    PRIMARY KEY NOT NULL,
        fingerprint TEXT    NOT NULL,
        order_id    TEXT    NOT NULL,
        version     INTEGER NOT NULL,
        status      INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- Lets the adapter purge expired keys, the job DynamoDB's TTL does on AWS.
    CREATE INDEX idempotency_by_expiry ON idempotency (expires_at);

    CREATE TABLE checkpoints (
        consumer TEXT    PRIMARY KEY NOT NULL,
        position INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // The read model. Timestamps are integer milliseconds so listings sort correctly; `view`
    // is the full OrderView as JSON. The indexes are named after the table (`orders_by_…`).
    read_model: |table| {
        // A validated name (letters, digits, `_.-`) in double quotes is a safe identifier.
        format!(
            r#"
    CREATE TABLE "{table}" (
        order_id    TEXT    PRIMARY KEY NOT NULL,
        customer_id TEXT    NOT NULL,
        status      TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        version     INTEGER NOT NULL,
        view        TEXT    NOT NULL
    );
    CREATE INDEX "{table}_by_customer" ON "{table}" (customer_id, created_at DESC, order_id DESC);
    CREATE INDEX "{table}_by_status" ON "{table}" (status, updated_at DESC, order_id DESC);
    "#
        )
    },
}];

/// When a commit reaches the disk: `PRAGMA synchronous` under WAL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// Every commit fsyncs the WAL before it returns, so a write is acknowledged only once it
    /// survives an OS crash or a power cut. The writer commits a whole group of queued writes
    /// at once, so the cost is one fsync per group, not per write.
    #[default]
    Full,
    /// The WAL is fsynced only when it is checkpointed (about every 200 ms under load): faster,
    /// and safe against a crash of this process, but an OS crash or a power cut can lose the
    /// writes acknowledged since the last checkpoint, idempotency records included (a client
    /// retrying with its key would then create a second order).
    Normal,
}

impl SyncMode {
    fn pragma_value(self) -> &'static str {
        match self {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
        }
    }
}

/// Settings every connection needs. WAL lets readers run while the writer commits; `sync`
/// says whether a commit waits for the disk (see [`SyncMode`]).
pub(super) fn configure(conn: &Connection, sync: SyncMode) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .db()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "the database refused WAL mode (journal_mode is {mode})"
        )));
    }
    // PRAGMA takes no bound parameters; the value is one of our own constants. `fullfsync`
    // matters on macOS only, where a plain fsync leaves the write in the drive's cache (a
    // power cut loses it); elsewhere SQLite ignores it.
    let fullfsync = if sync == SyncMode::Full { "ON" } else { "OFF" };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {};
         PRAGMA fullfsync = {fullfsync};
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16384;
         PRAGMA journal_size_limit = 67108864;",
        sync.pragma_value()
    ))
    .db()?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Brings the schema up to date. The check and the migrations run in one immediate transaction,
/// so two processes opening the same new file cannot both migrate it.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let current: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .db()?;
    let target = MIGRATIONS.len();
    let current = usize::try_from(current)
        .map_err(|_| StoreError::Corrupt(format!("negative schema version {current}")))?;
    if current > target {
        return Err(StoreError::Internal(format!(
            "the database has schema version {current}, newer than this build's {target}: \
             upgrade the binary"
        )));
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        tracing::info!(from, to = from + 1, "migrating the SQLite schema");
        tx.execute_batch(migration.tables).db()?;
        tx.execute_batch(&(migration.read_model)(LIVE_TABLE)).db()?;
    }
    if current < target {
        // PRAGMA takes no bound parameters; `target` is our own constant.
        tx.execute_batch(&format!("PRAGMA user_version = {target}"))
            .db()?;
    }
    tx.commit().db()
}

/// Creates the read-model table `table` (a shadow of `orders`), unless another process just
/// did, as the file's migrations made `orders`: every migration's read-model statements, in
/// order, in one immediate transaction.
///
/// A shadow that already exists is left as it is. With one migration that is always the
/// current schema; when a migration 2 changes the read model, a shadow made before it must be
/// dropped and rebuilt (or migrated too) before it is switched to.
pub(super) fn create_read_model(
    conn: &mut Connection,
    table: &TableName,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    if read_model::table_exists(&tx, table)? {
        return Ok(());
    }
    for migration in MIGRATIONS {
        tx.execute_batch(&(migration.read_model)(table.as_str()))
            .db()?;
    }
    tx.commit().db()
}
