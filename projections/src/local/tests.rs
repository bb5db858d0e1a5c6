use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use orders_store::CheckpointStore;
use orders_store::sqlite::SqliteStore;
use tower::ServiceExt;

use super::*;
use crate::test_support::*;

async fn bus_lines(bus: &LocalBus) -> Vec<serde_json::Value> {
    tokio::fs::read_to_string(bus.path())
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until `done` holds, polling.
async fn eventually<F: Future<Output = bool>>(mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_local_consumers_project_and_publish_everything_once_across_restarts() {
    let (dir, store) = store();
    let bus = LocalBus::open(dir.path().join("bus.jsonl")).await.unwrap();
    let orders: Vec<_> = (0..20).map(|_| new_order_id()).collect();

    let (stop, stopped) = watch::channel(false);
    let handles = spawn_local_consumers(store.clone(), bus.clone(), "orders".into(), stopped);
    for &order in &orders {
        append(&store, &lifecycle(order)).await;
    }
    eventually(|| async { bus_lines(&bus).await.len() == 60 }).await;
    for &order in &orders {
        eventually(|| async {
            stored_view(&store, order).await == folded_view(&store, order).await
        })
        .await;
    }
    stop.send(true).unwrap();
    for handle in handles {
        assert_eq!(handle.await.unwrap(), feed_head(&store).await);
    }
    for name in [PROJECTOR_CONSUMER, PUBLISHER_CONSUMER] {
        assert_eq!(
            store.load_checkpoint(name).await.unwrap(),
            feed_head(&store).await
        );
    }

    // A restart (the way `orders serve` starts) picks up from the checkpoints: only the new
    // events are published.
    let (stop, stopped) = watch::channel(false);
    let runtime = LocalRuntime::start(&store, bus.path(), "orders".into(), stopped)
        .await
        .unwrap();
    let feed = runtime
        .bus_router()
        .oneshot(Request::get("/local/bus").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    let order = new_order_id();
    append(&store, &lifecycle(order)).await;
    eventually(|| async { bus_lines(&bus).await.len() == 63 }).await;
    eventually(|| async { stored_view(&store, order).await == folded_view(&store, order).await })
        .await;
    drop(stop); // dropping the sender also stops them
    runtime.stop().await;
    for name in [PROJECTOR_CONSUMER, PUBLISHER_CONSUMER] {
        assert_eq!(
            store.load_checkpoint(name).await.unwrap(),
            feed_head(&store).await
        );
    }
    let lines = bus_lines(&bus).await;
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| {
            let detail: serde_json::Value =
                serde_json::from_str(l["Detail"].as_str().unwrap()).unwrap();
            detail["eventId"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 63, "each event published once");
}

/// Stands in for the bus file: records the publisher's checkpoint as it was at each sync.
struct SyncRecorder {
    store: SqliteStore,
    fails: bool,
    checkpoint_at_sync: std::sync::Mutex<Vec<u64>>,
}

#[async_trait::async_trait]
impl Durable for SyncRecorder {
    async fn sync(&self) -> io::Result<()> {
        let checkpoint = self
            .store
            .load_checkpoint(PUBLISHER_CONSUMER)
            .await
            .unwrap();
        self.checkpoint_at_sync.lock().unwrap().push(checkpoint);
        if self.fails {
            return Err(io::Error::other("fsync failed"));
        }
        Ok(())
    }
}

/// The bus is fsynced before the publisher's checkpoint moves, and a failed fsync keeps it
/// where it was: a power cut never loses the line of an event behind the checkpoint.
#[tokio::test]
async fn the_publisher_checkpoint_moves_only_after_the_bus_is_synced() {
    let (_dir, store) = store();
    for fails in [true, false] {
        let checkpoints = BusSyncedCheckpoints {
            bus: SyncRecorder {
                store: store.clone(),
                fails,
                checkpoint_at_sync: Default::default(),
            },
            checkpoints: Arc::new(store.clone()),
        };
        let saved = checkpoints.save_checkpoint(PUBLISHER_CONSUMER, 5).await;
        assert_eq!(saved.is_ok(), !fails, "{saved:?}");
        assert_eq!(*checkpoints.bus.checkpoint_at_sync.lock().unwrap(), [0]);
        let expected = if fails { 0 } else { 5 };
        assert_eq!(
            store.load_checkpoint(PUBLISHER_CONSUMER).await.unwrap(),
            expected
        );
    }
}
