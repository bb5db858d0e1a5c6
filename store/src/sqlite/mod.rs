//! SQLite adapter: the embedded default backend, one file in WAL mode (DESIGN §3).
//!
//! rusqlite is synchronous, so no call blocks the async runtime:
//! - **one writer** connection, owned by a dedicated thread (`writer.rs`) that commits queued
//!   writes in groups, each write in its own savepoint. SQLite admits one writer at a time
//!   anyway; grouping amortises the commit, which is most of a small write's cost. Being the
//!   only writer in the process also makes an append's version check authoritative; the
//!   UNIQUE (order_id, version) constraint still guards against another process on the file.
//! - **a small pool of readers** used from tokio's blocking pool: WAL lets them read a
//!   consistent snapshot while the writer commits, so queries never wait behind writes.
//!
//! A write is acknowledged once its group has committed, and by default
//! ([`SyncMode::Full`]) a commit returns only after the WAL is fsynced: an acknowledged write
//! survives a power cut. [`SyncMode::Normal`] trades that for speed; see [`SqliteOptions`].
//!
//! Tables: `events` (with the global `position` that is the change feed), `orders` (read model),
//! `idempotency`, `checkpoints`; see `schema.rs`. A store may serve another read-model table of
//! the same shape instead of `orders` (a shadow that `orders replay --into` built): see
//! [`SqliteOptions`].

mod checkpointer;
mod checkpoints;
mod error;
mod event_log;
mod read_model;
mod schema;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use orders_domain::{OrderId, Timestamp};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use self::checkpointer::Checkpointer;
use self::error::SqlResultExt;
use self::read_model::ReadModelSql;
pub use self::schema::SyncMode;
use self::writer::Writer;
use crate::{
    AppendError, AppendRequest, ChangeFeed, CheckpointStore, ConditionalPut, DeleteOutcome,
    EventKey, EventScan, EventStore, FeedEntry, IdempotencyKey, IdempotencyRecord,
    IdempotencyStore, ListQuery, OrderView, Page, PutOutcome, ReadModelScan, ReadModelStore,
    ScanPage, ScanSegment, StoreError, StoredEvent, TableName,
};

/// Readers in the pool. Reads are short point lookups and index range scans, so a few
/// connections saturate the cores of a small machine.
const READER_CONNECTIONS: usize = 4;

/// Every this many appends, the writer purges a batch of expired idempotency keys.
const PURGE_EVERY_APPENDS: u64 = 1024;
const PURGE_BATCH: usize = 512;

/// A handle on one SQLite file. Cheap to clone; all clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    read_model: Arc<ReadModelSql>,
    writer: Writer,
    readers: ReaderPool,
    /// The last change-feed position this process committed; the writer announces new ones.
    appended: Arc<watch::Sender<u64>>,
    appends: AtomicU64,
    _checkpointer: Checkpointer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("read_model", &self.inner.read_model.table)
            .finish_non_exhaustive()
    }
}

/// Which read-model table a store serves, and how it uses the file.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `orders` (the live read model) unless a shadow is named.
    pub read_model_table: TableName,
    /// Create the read-model table (with the live one's columns and indexes) if it is missing.
    /// Otherwise a missing table is an error, so that a mistyped name never serves an empty
    /// read model.
    pub create_read_model: bool,
    /// Each connection's page cache, in KiB [default: 16 MiB]. A whole-table scan (a replay)
    /// reads each page about once, so a small cache costs it nothing and keeps its memory
    /// the same whatever the file's size.
    pub page_cache_kib: Option<u32>,
    /// Whether a commit (and so an acknowledgement) waits for the disk [default: it does,
    /// [`SyncMode::Full`]].
    pub sync: SyncMode,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            read_model_table: TableName::parse(read_model::LIVE_TABLE)
                .expect("the live table's name is valid"),
            create_read_model: false,
            page_cache_kib: None,
            sync: SyncMode::default(),
        }
    }
}

impl SqliteStore {
    /// Opens (creating the file, its parent directories and the schema if needed) one SQLite
    /// file in WAL mode, serving the live read model.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`open`](Self::open), serving the read-model table of `options`.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| StoreError::Unavailable {
                reason: format!("cannot create {}: {err}", parent.display()),
                retry_after: error::RETRY_AFTER,
            })?;
        }
        let sized = |conn: Connection| -> Result<Connection, StoreError> {
            if let Some(kib) = options.page_cache_kib {
                conn.pragma_update(None, "cache_size", -i64::from(kib))
                    .db()?;
            }
            Ok(conn)
        };
        let sync = options.sync;
        let mut write_conn = sized(open_connection(path, sync)?)?;
        schema::migrate(&mut write_conn)?;
        let table = options.read_model_table;
        if !read_model::table_exists(&write_conn, &table)? {
            if !options.create_read_model {
                return Err(StoreError::Internal(format!(
                    "{} has no read-model table {table}: build it with \
                     `orders replay --into {table}`, or unset ORDERS_TABLE for the live one",
                    path.display()
                )));
            }
            schema::create_read_model(&mut write_conn, &table)?;
            tracing::info!(%table, path = %path.display(), "created the read-model table");
        }
        write_conn
            .pragma_update(
                None,
                "wal_autocheckpoint",
                checkpointer::WRITER_AUTOCHECKPOINT_PAGES,
            )
            .db()?;
        let checkpointer = Checkpointer::start(path, sync)?;
        let readers = (0..READER_CONNECTIONS)
            .map(|_| {
                let reader = sized(open_connection(path, sync)?)?;
                // A reader that tried to write would be a bug; make it fail loudly.
                reader.execute_batch("PRAGMA query_only = ON").db()?;
                Ok(reader)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let head = event_log::head_position(&write_conn)?;
        let appended = Arc::new(watch::Sender::new(head));
        let writer = Writer::start(write_conn, appended.clone())?;
        tracing::debug!(path = %path.display(), head, ?sync, "opened the SQLite store");
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                read_model: Arc::new(ReadModelSql::new(table)),
                writer,
                readers: ReaderPool::new(readers),
                appended,
                appends: AtomicU64::new(0),
                _checkpointer: checkpointer,
            }),
        })
    }

    /// The file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The read-model table this store serves.
    pub fn read_model_table(&self) -> &TableName {
        &self.inner.read_model.table
    }

    /// Runs `work` on a reader connection; waits (asynchronously) while all are busy.
    async fn read<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let permit = self.inner.readers.permit().await?;
        let inner = self.inner.clone();
        run_blocking(move || {
            let reader = inner.readers.checkout(permit)?;
            work(&reader)
        })
        .await?
    }
}

fn open_connection(path: &Path, sync: SyncMode) -> Result<Connection, StoreError> {
    // NO_MUTEX: each connection is used by one thread at a time (the reader pool, the writer
    // and checkpointer threads guarantee it), so SQLite's per-connection mutex is overhead.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).db()?;
    schema::configure(&conn, sync)?;
    Ok(conn)
}

async fn run_blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        tracing::error!(error = %err, "a SQLite task failed");
        StoreError::Internal(format!("a SQLite task failed: {err}"))
    })
}

/// Reader connections. The semaphore has one permit per idle connection, so a permit holder
/// always finds one, and waiting happens in async code rather than in blocking threads.
struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// A checked-out reader; goes back to the pool on drop (also when the work panicked).
struct PooledReader<'a> {
    pool: &'a ReaderPool,
    /// `Some` until dropped.
    conn: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl ReaderPool {
    fn new(conns: Vec<Connection>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(conns.len())),
            idle: Mutex::new(conns),
        }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, StoreError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Internal("the reader pool is closed".into()))
    }

    fn checkout(&self, permit: OwnedSemaphorePermit) -> Result<PooledReader<'_>, StoreError> {
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or_else(|| StoreError::Internal("no idle reader despite a permit".into()))?;
        Ok(PooledReader {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

impl std::ops::Deref for PooledReader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a pooled reader holds its connection until dropped")
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, request: AppendRequest) -> Result<(), AppendError> {
        event_log::validate(&request)?;
        let order_id = request.order_id;
        // Every so often the append also clears out expired idempotency keys.
        let purge = self
            .inner
            .appends
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY_APPENDS);
        let result = self
            .inner
            .writer
            .write(move |conn, effects| {
                effects.appended_up_to = event_log::append(conn, &request)?;
                if purge {
                    // A failed purge is retried with a later append; it must not fail this one.
                    match event_log::purge_expired_keys(conn, request.now.millis(), PURGE_BATCH) {
                        Ok(0) => {}
                        Ok(purged) => tracing::debug!(purged, "purged expired idempotency keys"),
                        Err(err) => tracing::warn!(error = %err, "purging idempotency keys failed"),
                    }
                }
                Ok::<_, AppendError>(())
            })
            .await;
        if let Err(AppendError::Store(err)) = &result {
            tracing::warn!(%order_id, error = %err, "append failed");
        }
        result
    }

    async fn load(
        &self,
        order_id: OrderId,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(move |conn| event_log::load(conn, order_id, up_to))
            .await
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn get(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let key = key.clone();
        self.read(move |conn| event_log::idempotency_record(conn, &key, now))
            .await
    }
}

#[async_trait]
impl ReadModelStore for SqliteStore {
    async fn get(&self, order_id: OrderId) -> Result<Option<OrderView>, StoreError> {
        let sql = self.inner.read_model.clone();
        self.read(move |conn| read_model::get(conn, &sql, order_id))
            .await
    }

    async fn put(
        &self,
        view: &OrderView,
        expected_version: Option<u64>,
    ) -> Result<PutOutcome, StoreError> {
        let view = view.clone();
        let sql = self.inner.read_model.clone();
        self.inner
            .writer
            .write(move |conn, _| read_model::put(conn, &sql, &view, expected_version))
            .await
    }

    /// One pooled read for the whole batch.
    async fn get_many(
        &self,
        order_ids: &[OrderId],
    ) -> Result<HashMap<OrderId, OrderView>, StoreError> {
        let order_ids = order_ids.to_vec();
        let sql = self.inner.read_model.clone();
        self.read(move |conn| {
            let mut views = HashMap::with_capacity(order_ids.len());
            for order_id in order_ids {
                if let Some(view) = read_model::get(conn, &sql, order_id)? {
                    views.insert(order_id, view);
                }
            }
            Ok(views)
        })
        .await
    }

    /// One write job, so the whole batch shares a group commit instead of waiting for one
    /// commit per view.
    async fn put_many(&self, puts: &[ConditionalPut]) -> Result<Vec<PutOutcome>, StoreError> {
        let puts = puts.to_vec();
        let sql = self.inner.read_model.clone();
        self.inner
            .writer
            .write(move |conn, _| {
                puts.iter()
                    .map(|put| read_model::put(conn, &sql, &put.view, put.expected_version))
                    .collect()
            })
            .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let query = query.clone();
        let sql = self.inner.read_model.clone();
        self.read(move |conn| read_model::list(conn, &sql, &query))
            .await
    }
}

#[async_trait]
impl EventScan for SqliteStore {
    async fn plan_scan(&self, total: u32) -> Result<Vec<ScanSegment>, StoreError> {
        self.read(move |conn| event_log::plan_scan(conn, total))
            .await
    }

    async fn scan_events(
        &self,
        segment: &ScanSegment,
        after: Option<EventKey>,
        limit: usize,
    ) -> Result<ScanPage<StoredEvent, EventKey>, StoreError> {
        let segment = segment.clone();
        self.read(move |conn| event_log::scan_events(conn, &segment, after, limit))
            .await
    }

    /// The change feed's head: the number of events ever appended.
    async fn estimated_events(&self) -> Result<Option<u64>, StoreError> {
        self.read(|conn| event_log::head_position(conn).map(Some))
            .await
    }

    async fn orders_with_events(
        &self,
        order_ids: &[OrderId],
    ) -> Result<std::collections::HashSet<OrderId>, StoreError> {
        let order_ids = order_ids.to_vec();
        self.read(move |conn| event_log::orders_with_events(conn, &order_ids))
            .await
    }
}

#[async_trait]
impl ReadModelScan for SqliteStore {
    async fn scan_views(
        &self,
        segment: &ScanSegment,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<ScanPage<OrderView, OrderId>, StoreError> {
        let range = event_log::key_range(segment);
        let sql = self.inner.read_model.clone();
        self.read(move |conn| read_model::scan(conn, &sql, (&range.0, &range.1), after, limit))
            .await
    }

    async fn delete(
        &self,
        order_id: OrderId,
        expected_version: u64,
    ) -> Result<DeleteOutcome, StoreError> {
        let sql = self.inner.read_model.clone();
        self.inner
            .writer
            .write(move |conn, _| read_model::delete(conn, &sql, order_id, expected_version))
            .await
    }
}

#[async_trait]
impl ChangeFeed for SqliteStore {
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.read(move |conn| event_log::read_after(conn, after, limit))
            .await
    }

    fn watch_appends(&self) -> watch::Receiver<u64> {
        self.inner.appended.subscribe()
    }
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    async fn load_checkpoint(&self, consumer: &str) -> Result<u64, StoreError> {
        let consumer = consumer.to_owned();
        self.read(move |conn| checkpoints::load_checkpoint(conn, &consumer))
            .await
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        let consumer = consumer.to_owned();
        self.inner
            .writer
            .write(move |conn, _| checkpoints::save_checkpoint(conn, &consumer, position))
            .await
    }
}

#[cfg(test)]
mod tests;
