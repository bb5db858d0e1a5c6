//! Measures the SQLite adapter under the service's load shape: concurrent creates (one event
//! plus an idempotency record each) while a projector tails the feed and writes views (as the
//! in-process projector does: read the view, fold, conditional put, 16 orders at once), then
//! concurrent view reads. Reports rates, latency percentiles and CPU per create.
//!
//! `cargo bench -p orders-store --bench sqlite_load`; `RATE=5000` paces the creates (default:
//! as fast as 64 writers go). Not a criterion bench: what matters here is latency under
//! concurrency and whether the projector keeps up, which a per-iteration timer cannot show.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use orders_domain::{
    Currency, CustomerId, EventData, Items, LineItem, OrderEvent, OrderId, OrderState, Quantity,
    Sku, Timestamp, UnitPrice,
};
use orders_store::sqlite::SqliteStore;
use orders_store::{
    AppendRequest, ChangeFeed, CheckpointStore, EventMetadata, EventStore, IdempotencyKey,
    IdempotencyRecord, OrderView, ReadModelStore, StoredEvent, fold,
};
use uuid::Uuid;

const WRITERS: usize = 64;
const READERS: usize = 64;
const PHASE: Duration = Duration::from_secs(8);

fn create_request(customer: &CustomerId, now: Timestamp) -> AppendRequest {
    let order_id = OrderId::from_uuid(Uuid::now_v7());
    let items = Items::parse(vec![LineItem {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: Quantity::parse(2).unwrap(),
        unit_price: UnitPrice::parse(150).unwrap(),
    }])
    .unwrap();
    let event = OrderEvent {
        occurred_at: now,
        data: EventData::OrderCreated {
            customer_id: customer.clone(),
            currency: Currency::parse("EUR").unwrap(),
            total: items.total().unwrap(),
            items,
        },
    };
    let key = IdempotencyKey::parse(&Uuid::now_v7().to_string()).unwrap();
    let metadata = EventMetadata {
        correlation_id: Uuid::now_v7().to_string(),
        causation_id: Uuid::now_v7().to_string(),
        idempotency_key: Some(key.to_string()),
        source: "bench".into(),
    };
    AppendRequest {
        order_id,
        expected_version: 0,
        events: vec![StoredEvent::new(
            order_id,
            1,
            Uuid::now_v7(),
            &event,
            metadata,
        )],
        idempotency: Some(IdempotencyRecord {
            key,
            fingerprint: "f".repeat(64),
            order_id,
            version: 1,
            status: 201,
            expires_at: Timestamp::from_millis(now.millis() + 86_400_000),
        }),
        now,
    }
}

/// User + system CPU time of this process so far (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn rate() -> Option<f64> {
    std::env::var("RATE").ok().and_then(|r| r.parse().ok())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn report(what: &str, count: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    tracing::info!(
        "{what}: {count} in {:.1}s = {:.0}/s; p50 {:?} p99 {:?} max {:?}",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap()
    );
}

/// Tails the feed like the in-process projector: per event, read the view, fold, conditional
/// put; up to 16 orders at once.
async fn project(store: SqliteStore, stop: Arc<AtomicBool>) -> usize {
    let mut watch = store.watch_appends();
    let mut position = store.load_checkpoint("bench").await.unwrap();
    let mut applied = 0;
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    loop {
        let batch = store.read_after(position, 500).await.unwrap();
        if batch.is_empty() {
            if stop.load(Ordering::Relaxed) {
                return applied;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), watch.changed()).await;
            continue;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for entry in &batch {
            let permit = limit.clone().acquire_owned().await.unwrap();
            let store = store.clone();
            let event = entry.event.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let current = ReadModelStore::get(&store, event.order_id).await.unwrap();
                assert!(current.is_none());
                let state = fold(OrderState::default(), [&event]).unwrap();
                let view = OrderView::from_state(event.order_id, state).unwrap();
                store.put(&view, None).await.unwrap();
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
            applied += 1;
        }
        position = batch.last().unwrap().position;
        store.save_checkpoint("bench", position).await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_target(false)
        .with_env_filter(filter)
        .init();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bench.db")).unwrap();
    let now = Timestamp::from_millis(1_800_000_000_000);

    // Phase 1: creates, with the projector running.
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_at_start = cpu_seconds();
    let projector = tokio::spawn(project(store.clone(), stop.clone()));
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let customer = CustomerId::parse(&format!("customer-{w}")).unwrap();
            let mut latencies = Vec::new();
            let mut ids = Vec::new();
            // RATE=N paces the writers to N creates/s in total (unset: as fast as they can).
            let mut pace = rate().map(|rate| {
                let mut tick =
                    tokio::time::interval(Duration::from_secs_f64(WRITERS as f64 / rate));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick
            });
            while started.elapsed() < PHASE {
                if let Some(tick) = pace.as_mut() {
                    tick.tick().await;
                }
                let request = create_request(&customer, now);
                let id = request.order_id;
                let t = Instant::now();
                store.append(request).await.unwrap();
                latencies.push(t.elapsed());
                ids.push(id);
            }
            (latencies, ids)
        }));
    }
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    for writer in writers {
        let (l, i) = writer.await.unwrap();
        latencies.extend(l);
        ids.extend(i);
    }
    let elapsed = started.elapsed();
    report(
        "append (with projector)",
        latencies.len(),
        elapsed,
        latencies,
    );
    stop.store(true, Ordering::Relaxed);
    let applied = projector.await.unwrap();
    tracing::info!(
        "projector applied {applied} views; caught up {:.1}s after the writers stopped",
        started.elapsed().as_secs_f64() - elapsed.as_secs_f64()
    );
    let cpu = cpu_seconds() - cpu_at_start;
    tracing::info!(
        "process CPU for the writes and their projection: {cpu:.1}s = {:.0} µs per create",
        cpu * 1e6 / applied as f64
    );

    // The background checkpointer should keep the WAL short (it restarts it past 4096 pages).
    let wal_pages: i64 = rusqlite::Connection::open(dir.path().join("bench.db"))
        .and_then(|c| c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)))
        .unwrap_or(-1);
    tracing::info!("WAL length after the writes: {wal_pages} pages");

    // Phase 2: view reads.
    let ids = Arc::new(ids);
    let started = Instant::now();
    let mut readers = Vec::new();
    for r in 0..READERS {
        let store = store.clone();
        let ids = ids.clone();
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = r * 7919;
            while started.elapsed() < PHASE {
                let id = ids[i % ids.len()];
                i += 104_729;
                let t = Instant::now();
                let view = ReadModelStore::get(&store, id).await.unwrap();
                latencies.push(t.elapsed());
                assert!(view.is_some());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.await.unwrap());
    }
    report("get view", latencies.len(), started.elapsed(), latencies);
}
