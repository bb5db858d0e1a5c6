//! The contract suite on SQLite files, plus what only SQLite has: files, migrations, error
//! mapping and stored bytes it never wrote.

use std::sync::Mutex;

use rusqlite::{Connection, params};
use tempfile::TempDir;

use super::error::{is_unique_violation, store_error};
use super::{SqliteOptions, SqliteStore, SyncMode};
use crate::contract::{Backend, FeedBackend};
use crate::{
    ChangeFeed, CheckpointStore, EventStore, IdempotencyKey, IdempotencyStore, ListFilter,
    ListQuery, PageKey, ReadModelStore, StoreError,
};

/// Each store gets its own file, in a directory that lives as long as the test.
#[derive(Default)]
struct TempFiles {
    dirs: Mutex<Vec<TempDir>>,
}

impl TempFiles {
    fn open_fresh(&self) -> SqliteStore {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // A nested path also checks that `open` creates missing parent directories.
        let store = SqliteStore::open(&dir.path().join("data/orders.db")).expect("open");
        self.dirs.lock().unwrap().push(dir);
        store
    }
}

impl Backend for TempFiles {
    type Store = SqliteStore;
    async fn fresh(&self) -> SqliteStore {
        self.open_fresh()
    }
}

impl FeedBackend for TempFiles {
    type Store = SqliteStore;
    async fn fresh(&self) -> SqliteStore {
        self.open_fresh()
    }
    async fn reopen(&self, store: SqliteStore) -> SqliteStore {
        let path = store.path().to_owned();
        drop(store);
        SqliteStore::open(&path).expect("reopen")
    }
}

crate::store_contract_tests!(TempFiles::default());
crate::feed_contract_tests!(TempFiles::default());

fn raw(store: &SqliteStore) -> Connection {
    Connection::open(store.path()).unwrap()
}

fn order_id() -> orders_domain::OrderId {
    orders_domain::OrderId::from_uuid(uuid::Uuid::now_v7())
}

#[test]
fn open_sets_wal_and_the_schema_version() {
    let files = TempFiles::default();
    let store = files.open_fresh();
    let conn = raw(&store);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
    // Opening again is a no-op migration.
    drop(SqliteStore::open(store.path()).expect("reopen"));
}

#[test]
fn a_file_from_a_newer_build_is_refused() {
    let files = TempFiles::default();
    let store = files.open_fresh();
    raw(&store)
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let path = store.path().to_owned();
    drop(store);
    match SqliteStore::open(&path) {
        Err(StoreError::Internal(reason)) => assert!(reason.contains("newer"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn undecodable_stored_data_is_corrupt_not_a_panic() {
    let files = TempFiles::default();
    let store = files.open_fresh();
    let (order, viewed) = (order_id(), order_id());
    let conn = raw(&store);
    conn.execute(
        "INSERT INTO events (order_id, version, event_id, event_type, schema_version, \
         occurred_at, data, metadata) VALUES (?1, 1, ?2, 'OrderCreated', 1, \
         '2026-01-01T00:00:00.000Z', '{not json', '{}')",
        params![order.to_string(), uuid::Uuid::now_v7().to_string()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO orders (order_id, customer_id, status, created_at, updated_at, version, view) \
         VALUES (?1, 'c-bad', 'PENDING', 1, 1, 1, '[]')",
        params![viewed.to_string()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO idempotency (key, fingerprint, order_id, version, status, expires_at) \
         VALUES ('k-bad', 'f', 'not-a-uuid', 1, 201, 9223372036854775807)",
        [],
    )
    .unwrap();

    let corrupt = |what: &str, result: Result<(), StoreError>| {
        assert!(
            matches!(result, Err(StoreError::Corrupt(_))),
            "{what}: expected Corrupt, got {result:?}"
        );
    };
    corrupt("load", store.load(order, None).await.map(drop));
    corrupt("read_after", store.read_after(0, 10).await.map(drop));
    corrupt(
        "get view",
        ReadModelStore::get(&store, viewed).await.map(drop),
    );
    let listing = ListQuery {
        filter: ListFilter::Customer(orders_domain::CustomerId::parse("c-bad").unwrap()),
        limit: 10,
        after: None,
    };
    corrupt("list", store.list(&listing).await.map(drop));
    let key = IdempotencyKey::parse("k-bad").unwrap();
    let now = orders_domain::Timestamp::from_millis(0);
    corrupt(
        "idempotency",
        IdempotencyStore::get(&store, &key, now).await.map(drop),
    );
}

#[tokio::test]
async fn a_malformed_page_key_is_an_internal_error() {
    let files = TempFiles::default();
    let store = files.open_fresh();
    for key in [
        serde_json::json!("opaque"),
        serde_json::json!({"k": "1", "id": uuid::Uuid::now_v7().to_string()}),
        serde_json::json!({"k": 1, "id": "not-a-uuid"}),
        serde_json::json!({"k": 1}),
    ] {
        let query = ListQuery {
            filter: ListFilter::Status(orders_domain::OrderStatus::Pending),
            limit: 10,
            after: Some(PageKey(key.clone())),
        };
        let result = store.list(&query).await;
        assert!(
            matches!(result, Err(StoreError::Internal(_))),
            "{key}: expected Internal, got {result:?}"
        );
    }
}

#[tokio::test]
async fn listings_scan_their_index() {
    let files = TempFiles::default();
    let store = files.open_fresh();
    let conn = raw(&store);
    for (sql, index) in [
        (
            "SELECT view FROM orders WHERE customer_id = 'c' AND (created_at, order_id) < (1, 'x') \
             ORDER BY created_at DESC, order_id DESC LIMIT 21",
            "orders_by_customer",
        ),
        (
            "SELECT view FROM orders WHERE status = 'PENDING' AND (updated_at, order_id) < (1, 'x') \
             ORDER BY updated_at DESC, order_id DESC LIMIT 21",
            "orders_by_status",
        ),
    ] {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join("; ");
        assert!(plan.contains(index), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "no sort step: {plan}");
        assert!(plan.contains('<'), "the page key is an index range: {plan}");
    }
}

#[test]
fn busy_locked_io_and_open_failures_are_unavailable() {
    use rusqlite::ffi;
    for code in [
        ffi::SQLITE_BUSY,
        ffi::SQLITE_LOCKED,
        ffi::SQLITE_IOERR,
        ffi::SQLITE_CANTOPEN,
    ] {
        let err = rusqlite::Error::SqliteFailure(ffi::Error::new(code), None);
        match store_error(err) {
            StoreError::Unavailable { retry_after, .. } => {
                assert_eq!(retry_after, std::time::Duration::from_secs(1))
            }
            other => panic!("code {code}: expected Unavailable, got {other:?}"),
        }
    }
    let misuse = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_MISUSE), None);
    assert!(matches!(store_error(misuse), StoreError::Internal(_)));
}

#[tokio::test]
async fn another_writer_holding_the_lock_makes_the_store_unavailable() {
    let files = TempFiles::default();
    let store = files.open_fresh();
    let blocker = raw(&store);
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = std::time::Instant::now();
    let result = store.save_checkpoint("projector", 1).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "expected Unavailable, got {result:?}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "waited for the lock first"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    store
        .save_checkpoint("projector", 1)
        .await
        .expect("works once the lock is gone");
}

#[test]
fn a_version_clash_is_recognised_as_such() {
    let files = TempFiles::default();
    let store = files.open_fresh();
    let conn = raw(&store);
    let insert = |event_id: &str| {
        conn.execute(
            "INSERT INTO events (order_id, version, event_id, event_type, schema_version, \
             occurred_at, data, metadata) VALUES ('o', 1, ?1, 't', 1, 'x', '{}', '{}')",
            [event_id],
        )
    };
    insert("e1").unwrap();
    let clash = insert("e2").unwrap_err();
    assert!(
        is_unique_violation(&clash, "events.order_id, events.version"),
        "{clash}"
    );
    assert!(!is_unique_violation(&clash, "events.event_id"));
}

/// Writes that fail inside a commit group (here: a used idempotency key) are rolled back alone;
/// the writes grouped with them commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_write_does_not_fail_its_group() {
    use crate::{AppendError, AppendRequest, IdempotencyRecord};
    let files = TempFiles::default();
    let store = files.open_fresh();
    let key = IdempotencyKey::parse("shared-key").unwrap();
    let record = |order| IdempotencyRecord {
        key: key.clone(),
        fingerprint: "f".into(),
        order_id: order,
        version: 1,
        status: 201,
        expires_at: orders_domain::Timestamp::from_millis(4_102_444_800_000), // 2100
    };
    let first = order_id();
    store
        .append(AppendRequest {
            order_id: first,
            expected_version: 0,
            events: Vec::new(),
            idempotency: Some(record(first)),
            now: crate::Clock::now(&crate::SystemClock),
        })
        .await
        .unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let store = store.clone();
        let order = order_id();
        let idempotency = (i % 2 == 1).then(|| record(order));
        tasks.spawn(async move {
            let event = crate::StoredEvent {
                order_id: order,
                version: 1,
                event_id: uuid::Uuid::now_v7(),
                event_type: "OrderConfirmed".into(),
                schema_version: 1,
                occurred_at: orders_domain::Timestamp::from_millis(0),
                data: serde_json::json!({}),
                metadata: crate::EventMetadata {
                    correlation_id: "c".into(),
                    causation_id: "c".into(),
                    idempotency_key: None,
                    source: "test".into(),
                },
            };
            let request = AppendRequest {
                order_id: order,
                expected_version: 0,
                events: vec![event],
                idempotency,
                now: crate::Clock::now(&crate::SystemClock),
            };
            (i, order, store.append(request).await)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, order, result) = joined.unwrap();
        let stored = store.load(order, None).await.unwrap();
        if i % 2 == 1 {
            assert!(
                matches!(result, Err(AppendError::IdempotencyKeyInUse)),
                "{result:?}"
            );
            assert!(stored.is_empty());
        } else {
            result.unwrap();
            assert_eq!(stored.len(), 1);
        }
    }
    assert_eq!(store.read_after(0, 1000).await.unwrap().len(), 32);
}

/// `PRAGMA synchronous` of the store's own connections (a raw connection has its own).
async fn synchronous_of(store: &SqliteStore) -> (i64, i64) {
    let pragma = |conn: &Connection| -> Result<i64, StoreError> {
        conn.query_row("PRAGMA synchronous", [], |row| row.get(0))
            .map_err(store_error)
    };
    let writer = store
        .inner
        .writer
        .write(move |conn, _| pragma(conn))
        .await
        .unwrap();
    let reader = store.read(move |conn| pragma(conn)).await.unwrap();
    (writer, reader)
}

/// An acknowledged write must survive a power cut: by default every commit fsyncs the WAL
/// (FULL = 2); only an explicit `SyncMode::Normal` (NORMAL = 1) fsyncs at checkpoints alone.
#[tokio::test]
async fn commits_are_fsynced_unless_normal_sync_is_asked_for() {
    let files = TempFiles::default();
    assert_eq!(synchronous_of(&files.open_fresh()).await, (2, 2));

    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        sync: SyncMode::Normal,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&dir.path().join("orders.db"), options).unwrap();
    assert_eq!(synchronous_of(&store).await, (1, 1));
}

/// Polls `future` once (a queued write sends itself to the writer on its first poll).
async fn poll_once<F: Future>(mut future: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx))).await
}

/// Under FULL each COMMIT costs an fsync of the WAL, so writes that queue up while the writer
/// is busy must share one transaction, not commit (and fsync) one by one. Each write of the
/// group checks, from another connection, that none of the group's earlier writes has
/// committed yet.
#[tokio::test]
async fn writes_queued_while_the_writer_is_busy_share_one_commit() {
    let files = TempFiles::default();
    let store = files.open_fresh();
    // Counts the peers' rows that have committed, as any other connection sees them.
    let outside = std::sync::Arc::new(Mutex::new(raw(&store)));
    let committed_peers = move || -> i64 {
        outside
            .lock()
            .unwrap()
            .query_row(
                "SELECT count(*) FROM checkpoints WHERE consumer LIKE 'peer-%'",
                [],
                |row| row.get(0),
            )
            .unwrap()
    };

    // Hold the writer inside a group of its own until every peer write is queued.
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let blocker = store.inner.writer.write(move |_, _| {
        started_tx.send(()).unwrap();
        released.recv().unwrap();
        Ok::<_, StoreError>(())
    });
    let mut blocker = Box::pin(blocker);
    assert!(poll_once(blocker.as_mut()).await.is_pending());
    tokio::task::spawn_blocking(move || started.recv().unwrap())
        .await
        .unwrap();

    let mut peers: Vec<_> = (0..64)
        .map(|i| {
            let committed_peers = committed_peers.clone();
            Box::pin(store.inner.writer.write(move |conn, _| {
                let seen = committed_peers();
                conn.execute(
                    "INSERT INTO checkpoints (consumer, position) VALUES (?1, 0)",
                    [format!("peer-{i}")],
                )
                .map_err(store_error)?;
                Ok::<_, StoreError>(seen)
            }))
        })
        .collect();
    for peer in &mut peers {
        // The first poll queues the write.
        assert!(poll_once(peer.as_mut()).await.is_pending());
    }
    release.send(()).unwrap();
    blocker.await.unwrap();
    let seen = futures::future::try_join_all(peers).await.unwrap();
    assert_eq!(seen, vec![0; 64], "committed peers each write saw");
    assert_eq!(committed_peers(), 64);
}

/// The columns (`PRAGMA table_info`) and indexes (`PRAGMA index_list` and `index_xinfo`, with
/// the table's name cut out of the index names) of a read-model table.
fn read_model_schema(conn: &Connection, table: &str) -> (Vec<String>, Vec<String>) {
    let rows = |sql: String| -> Vec<String> {
        let mut stmt = conn.prepare(&sql).unwrap();
        let count = stmt.column_count();
        stmt.query_map([], |row| {
            (0..count)
                .map(|i| {
                    row.get::<_, rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|cells| cells.join(" "))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let columns = rows(format!("PRAGMA table_info(\"{table}\")"));
    let indexes: Vec<(String, bool, String, bool)> = conn
        .prepare(&format!(
            "SELECT name, \"unique\", origin, partial FROM pragma_index_list('{table}')"
        ))
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut indexes: Vec<String> = indexes
        .into_iter()
        .map(|(name, unique, origin, partial)| {
            let info = rows(format!("PRAGMA index_xinfo(\"{name}\")"));
            let name = name.replace(table, "");
            format!("{name} unique={unique} origin={origin} partial={partial}: {info:?}")
        })
        .collect();
    indexes.sort();
    (columns, indexes)
}

/// The migrations make the live `orders`; `schema::create_read_model` runs their read-model
/// statements again for a shadow. The two tables' columns and indexes are the same.
#[test]
fn a_shadow_read_model_has_the_live_tables_columns_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let shadow = "orders_shadow-1.x";
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            read_model_table: shadow.parse().unwrap(),
            create_read_model: true,
            ..SqliteOptions::default()
        },
    )
    .expect("open with a new shadow");
    let conn = raw(&store);
    let live = read_model_schema(&conn, "orders");
    assert_eq!(live.0.len(), 7, "{live:?}");
    assert_eq!(
        live.1.len(),
        3,
        "the primary key's and the two listings': {live:?}"
    );
    assert_eq!(read_model_schema(&conn, shadow), live);
}
