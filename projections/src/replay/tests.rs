//! The streaming fold, the judgement, and the engine on SQLite, including scans that break
//! the contiguity the streaming fold relies on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use orders_domain::{EventData, OrderId};
use orders_store::sqlite::SqliteStore;
use orders_store::{
    ConditionalPut, DeleteOutcome, EventKey, EventScan, EventStore, ListQuery, OrderView, Page,
    PutOutcome, ReadModelScan, ReadModelStore, ScanPage, ScanSegment, StoreError, StoredEvent,
};
use serde_json::json;
use tokio::sync::watch;

use super::judge::{Verdict, judge};
use super::runs::{Folded, OrderRuns, Scanned};
use super::*;
use crate::test_support::{
    append, assert_converged, event, lifecycle, new_order_id, raw_event, store, stored_view,
};

fn scanned_ids(events: &[StoredEvent]) -> Vec<(OrderId, &'static str, u64)> {
    let mut runs = OrderRuns::default();
    let mut out = Vec::new();
    let mut record = |finished: Option<runs::Finished>| {
        if let Some(finished) = finished {
            let kind = match &finished.scanned {
                Scanned::Folded(_) => "folded",
                Scanned::NeedsLoad { .. } => "load",
                Scanned::Failed { .. } => "failed",
            };
            out.push((
                finished.last_key.order_id,
                kind,
                finished.scanned.event_count(),
            ));
        }
    };
    for e in events {
        record(runs.push(e));
    }
    record(runs.finish());
    out
}

#[test]
fn the_fold_streams_contiguous_runs_and_hands_on_what_is_not() {
    let (a, b, c, d) = (
        new_order_id(),
        new_order_id(),
        new_order_id(),
        new_order_id(),
    );
    let [a1, a2, a3] = <[StoredEvent; 3]>::try_from(lifecycle(a)).unwrap();
    let [b1, _, b3] = <[StoredEvent; 3]>::try_from(lifecycle(b)).unwrap();
    let [_, c2, c3] = <[StoredEvent; 3]>::try_from(lifecycle(c)).unwrap();
    let d1 = event(d, 1, crate::test_support::created());
    let d2 = raw_event(d, 2, "OrderCancelled", 1, json!({"reason": 42}));
    let scan = [a1, a2, a3, b1, b3, c2, c3, d1, d2];
    assert_eq!(
        scanned_ids(&scan),
        vec![
            (a, "folded", 3),
            (b, "load", 2),   // a gap: version 2 is missing from the run
            (c, "load", 2),   // starts mid-order (a resumed scan)
            (d, "failed", 2), // an undecodable payload
        ]
    );
}

#[test]
fn the_judgement_names_each_kind_of_drift() {
    let id = new_order_id();
    let state = orders_store::fold(Default::default(), &lifecycle(id)).unwrap();
    let folded = OrderView::from_state(id, state).unwrap();
    let with = |field: &str, value: serde_json::Value| -> OrderView {
        let mut json = serde_json::to_value(&folded).unwrap();
        json[field] = value;
        serde_json::from_value(json).unwrap()
    };
    let kind = |verdict: Verdict| match verdict {
        Verdict::Write { kind, .. } => Some(kind),
        Verdict::Delete { .. } => Some(DriftKind::OrphanView),
        _ => None,
    };
    assert_eq!(judge(Some(&folded), Some(&folded), 3), Verdict::InSync);
    assert_eq!(judge(None, None, 0), Verdict::InSync);
    assert_eq!(
        kind(judge(None, Some(&folded), 3)),
        Some(DriftKind::MissingView)
    );
    assert_eq!(
        kind(judge(Some(&with("version", json!(2))), Some(&folded), 3)),
        Some(DriftKind::StaleVersion)
    );
    assert_eq!(
        kind(judge(Some(&with("total", json!(1))), Some(&folded), 3)),
        Some(DriftKind::DifferentFields)
    );
    assert_eq!(
        judge(Some(&with("version", json!(4))), Some(&folded), 3),
        Verdict::StoredAhead
    );
    // A view whose events create no order (here: none at all) is an orphan... once fresh
    // reads confirm it, which is why a stored version above the events' is StoredAhead first.
    assert_eq!(judge(Some(&folded), None, 0), Verdict::StoredAhead);
    assert_eq!(
        kind(judge(Some(&folded), None, 3)),
        Some(DriftKind::OrphanView)
    );
    let drift = Drift::new(
        DriftKind::DifferentFields,
        id,
        Some(&with("status", json!("CANCELLED"))),
        Some(&folded),
        3,
    );
    assert_eq!(drift.fields, vec!["status".to_owned()]);
}

/// The SQLite store, with every scan page's events reversed and the orders' runs split
/// across pages: the worst a backend could do to the streaming fold.
struct Scrambled(SqliteStore);

#[async_trait]
impl EventScan for Scrambled {
    async fn plan_scan(&self, total: u32) -> Result<Vec<ScanSegment>, StoreError> {
        self.0.plan_scan(total).await
    }
    async fn scan_events(
        &self,
        segment: &ScanSegment,
        after: Option<EventKey>,
        limit: usize,
    ) -> Result<ScanPage<StoredEvent, EventKey>, StoreError> {
        let mut page = self.0.scan_events(segment, after, limit).await?;
        page.items.reverse();
        Ok(page)
    }
    async fn estimated_events(&self) -> Result<Option<u64>, StoreError> {
        self.0.estimated_events().await
    }
    async fn orders_with_events(&self, ids: &[OrderId]) -> Result<HashSet<OrderId>, StoreError> {
        self.0.orders_with_events(ids).await
    }
}

#[async_trait]
impl EventStore for Scrambled {
    async fn append(
        &self,
        request: orders_store::AppendRequest,
    ) -> Result<(), orders_store::AppendError> {
        self.0.append(request).await
    }
    async fn load(&self, id: OrderId, up_to: Option<u64>) -> Result<Vec<StoredEvent>, StoreError> {
        self.0.load(id, up_to).await
    }
}

#[async_trait]
impl ReadModelStore for Scrambled {
    async fn get(&self, id: OrderId) -> Result<Option<OrderView>, StoreError> {
        self.0.get(id).await
    }
    async fn get_many(&self, ids: &[OrderId]) -> Result<HashMap<OrderId, OrderView>, StoreError> {
        self.0.get_many(ids).await
    }
    async fn put(&self, view: &OrderView, expected: Option<u64>) -> Result<PutOutcome, StoreError> {
        self.0.put(view, expected).await
    }
    async fn put_many(&self, puts: &[ConditionalPut]) -> Result<Vec<PutOutcome>, StoreError> {
        self.0.put_many(puts).await
    }
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.0.list(query).await
    }
}

#[async_trait]
impl ReadModelScan for Scrambled {
    async fn scan_views(
        &self,
        segment: &ScanSegment,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<ScanPage<OrderView, OrderId>, StoreError> {
        self.0.scan_views(segment, after, limit).await
    }
    async fn delete(&self, id: OrderId, expected: u64) -> Result<DeleteOutcome, StoreError> {
        self.0.delete(id, expected).await
    }
}

async fn run(store: Arc<dyn ReplayStore>, config: ReplayConfig) -> Outcome {
    let replay = Replay::start(store, config, "test".into(), None)
        .await
        .unwrap();
    replay.run(watch::channel(false).1).await.unwrap()
}

#[tokio::test]
async fn a_scan_that_breaks_order_runs_still_rebuilds_every_view_through_loads() {
    let (_dir, sqlite) = store();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = new_order_id();
        append(&sqlite, &lifecycle(id)).await;
        ids.push(id);
    }
    let config = ReplayConfig {
        segments: 2,
        page_size: 4,
        batch_size: 3,
        ..ReplayConfig::default()
    };
    let outcome = run(Arc::new(Scrambled(sqlite.clone())), config).await;
    let tally = &outcome.checkpoint.tally;
    assert!(tally.loaded > 0, "the broken runs were loaded: {tally:?}");
    assert_eq!(tally.failed, 0);
    for id in ids {
        assert_converged(&sqlite, id).await;
    }
    // And a straight scan then finds nothing to do, folding every order from the stream.
    let outcome = run(Arc::new(sqlite), ReplayConfig::default()).await;
    let tally = &outcome.checkpoint.tally;
    assert_eq!((tally.loaded, tally.written, tally.in_sync), (0, 0, 20));
}

#[tokio::test]
async fn an_undecodable_order_fails_alone_and_the_rest_are_rebuilt() {
    let (_dir, sqlite) = store();
    let good = new_order_id();
    append(&sqlite, &lifecycle(good)).await;
    let bad = new_order_id();
    append(
        &sqlite,
        &[
            event(bad, 1, crate::test_support::created()),
            raw_event(bad, 2, "OrderCancelled", 1, json!({"reason": 42})),
        ],
    )
    .await;
    let outcome = run(Arc::new(sqlite.clone()), ReplayConfig::default()).await;
    assert_eq!(outcome.checkpoint.tally.failed, 1);
    assert_eq!(outcome.checkpoint.tally.written, 1);
    assert_converged(&sqlite, good).await;
    assert_eq!(
        stored_view(&sqlite, bad).await,
        None,
        "nothing written for it"
    );
}

#[tokio::test]
async fn a_verify_confirms_on_fresh_reads_and_ignores_a_view_the_projector_moved_on() {
    let (_dir, sqlite) = store();
    let id = new_order_id();
    append(&sqlite, &lifecycle(id)[..1]).await;
    crate::Projector::new(Arc::new(sqlite.clone()), Arc::new(sqlite.clone()))
        .apply(&sqlite.load(id, None).await.unwrap()[0])
        .await
        .unwrap();
    // Between the scan and the settling, the order moves on and the projector follows: the
    // stored view is ahead of what was scanned, which is not drift.
    let ahead = event(id, 2, EventData::OrderConfirmed);
    append(&sqlite, std::slice::from_ref(&ahead)).await;
    crate::Projector::new(Arc::new(sqlite.clone()), Arc::new(sqlite.clone()))
        .apply(&ahead)
        .await
        .unwrap();
    let replay = Replay {
        inner: Arc::new(Inner {
            store: Arc::new(sqlite.clone()),
            config: ReplayConfig {
                mode: Mode::Verify,
                ..ReplayConfig::default()
            },
            progress: Arc::default(),
            state: Mutex::new(Checkpoint::new("test".into(), Vec::new())),
            paced: Mutex::new((Instant::now(), 0)),
        }),
    };
    let stale_scan = sqlite.load(id, Some(1)).await.unwrap();
    let state = orders_store::fold(Default::default(), &stale_scan).unwrap();
    let settled = replay
        .settle(vec![Scanned::Folded(Folded::from_state(id, state, 1))])
        .await
        .unwrap();
    assert_eq!(settled.tally.drift.total(), 0, "{:?}", settled.drifts);
    assert_eq!(settled.tally.in_sync, 1);
}

#[tokio::test]
async fn a_stopped_run_saves_a_checkpoint_that_a_resumed_run_finishes() {
    let (dir, sqlite) = store();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let id = new_order_id();
        append(&sqlite, &lifecycle(id)).await;
        ids.push(id);
    }
    let path = dir.path().join("replay.checkpoint.json");
    let config = ReplayConfig {
        segments: 3,
        checkpoint_file: Some(path.clone()),
        ..ReplayConfig::default()
    };
    let store: Arc<dyn ReplayStore> = Arc::new(sqlite.clone());
    let replay = Replay::start(store.clone(), config.clone(), "run-a".into(), None)
        .await
        .unwrap();
    let outcome = replay.run(watch::channel(true).1).await.unwrap();
    assert!(outcome.interrupted);
    let saved = Checkpoint::load(&path).unwrap().expect("saved");
    assert_eq!(saved.run, "run-a");
    assert_eq!(saved.segments.len(), 3);
    assert!(!saved.is_done());

    let replay = Replay::start(store, config, "run-a".into(), Some(saved))
        .await
        .unwrap();
    let outcome = replay.run(watch::channel(false).1).await.unwrap();
    assert!(!outcome.interrupted);
    assert_eq!(outcome.checkpoint.tally.written, 10);
    assert!(!path.exists(), "a finished run removes its checkpoint");
    for id in ids {
        assert_converged(&sqlite, id).await;
    }
}
