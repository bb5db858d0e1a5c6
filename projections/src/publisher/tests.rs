use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::test_support::*;

/// Accepts everything and remembers every call.
#[derive(Default)]
struct RecordingBus {
    calls: Mutex<Vec<Vec<BusEntry>>>,
}

#[async_trait]
impl Bus for RecordingBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        self.calls.lock().unwrap().push(entries.to_vec());
        Ok(entries
            .iter()
            .map(|_| EntryResult::Accepted { event_id: None })
            .collect())
    }
}

/// Wraps a bus and injects faults, like a throttled or flaky EventBridge.
#[derive(Default)]
struct FaultyBus {
    inner: RecordingBus,
    /// eventId -> how many more times its entry fails (`u32::MAX`: always).
    entry_failures: Mutex<HashMap<Uuid, u32>>,
    /// The next N calls are forwarded, and then fail as a whole (a response lost after the
    /// bus accepted the entries).
    lost_responses: AtomicU32,
    /// The next N calls fail as a whole with `Rejected`.
    rejections: AtomicU32,
    /// Every call as the publisher made it.
    calls: Mutex<Vec<Vec<Uuid>>>,
}

impl FaultyBus {
    fn fail_entry(self, event_id: Uuid, times: u32) -> Self {
        self.entry_failures.lock().unwrap().insert(event_id, times);
        self
    }
    fn delivered(&self) -> Vec<Uuid> {
        self.inner
            .calls
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(event_id_of)
            .collect()
    }
    fn calls(&self) -> Vec<Vec<Uuid>> {
        self.calls.lock().unwrap().clone()
    }
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn event_id_of(entry: &BusEntry) -> Uuid {
    let detail: Value = serde_json::from_str(&entry.detail).unwrap();
    detail["eventId"].as_str().unwrap().parse().unwrap()
}

#[async_trait]
impl Bus for FaultyBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        assert!(
            entries.len() <= MAX_BATCH_ENTRIES,
            "{} entries",
            entries.len()
        );
        let bytes: usize = entries.iter().map(BusEntry::size).sum();
        assert!(bytes <= MAX_BATCH_BYTES, "{bytes} bytes");
        self.calls
            .lock()
            .unwrap()
            .push(entries.iter().map(event_id_of).collect());
        if take_one(&self.rejections) {
            return Err(BusError::Rejected("AccessDeniedException".into()));
        }
        let mut forwarded = Vec::new();
        let mut results = Vec::new();
        {
            let mut failures = self.entry_failures.lock().unwrap();
            for entry in entries {
                match failures.get_mut(&event_id_of(entry)) {
                    Some(left) if *left > 0 => {
                        if *left != u32::MAX {
                            *left -= 1;
                        }
                        results.push(Some(EntryResult::Failed {
                            code: "ThrottlingException".into(),
                            message: "Rate exceeded".into(),
                        }));
                    }
                    _ => {
                        forwarded.push(entry.clone());
                        results.push(None);
                    }
                }
            }
        }
        let mut accepted = self.inner.put_events(&forwarded).await?.into_iter();
        if take_one(&self.lost_responses) {
            return Err(BusError::Unavailable("connection reset".into()));
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| accepted.next().unwrap()))
            .collect())
    }
}

fn publisher(bus: Arc<dyn Bus>) -> Publisher {
    Publisher::new(
        bus,
        PublisherConfig {
            source: "orders.test".into(),
            event_bus_name: Some("orders-bus".into()),
            retry: RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(4),
            },
            max_concurrent_batches: 3,
        },
    )
}

fn events(orders: usize) -> Vec<StoredEvent> {
    (0..orders)
        .flat_map(|_| lifecycle(new_order_id()))
        .collect()
}

fn ids(events: &[StoredEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

#[tokio::test]
async fn every_event_is_sent_once_as_one_entry_in_batches_of_ten() {
    let bus = Arc::new(FaultyBus::default());
    let events = events(9); // 27 events
    publisher(bus.clone()).publish(&events).await.unwrap();

    let sizes: Vec<usize> = bus.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 27);
    assert!(sizes.iter().all(|&n| n <= 10));
    assert_eq!(sizes.len(), 3);
    assert_eq!(sorted(bus.delivered()), sorted(ids(&events)));

    let calls = bus.inner.calls.lock().unwrap();
    let entry = calls
        .iter()
        .flatten()
        .find(|e| event_id_of(e) == events[0].event_id)
        .unwrap();
    assert_eq!(entry.source, "orders.test");
    assert_eq!(entry.detail_type, "OrderCreated");
    assert_eq!(entry.event_bus_name.as_deref(), Some("orders-bus"));
    let detail: Value = serde_json::from_str(&entry.detail).unwrap();
    assert_eq!(detail, serde_json::to_value(&events[0]).unwrap());
    for field in [
        "eventId",
        "orderId",
        "version",
        "occurredAt",
        "schemaVersion",
        "data",
        "metadata",
    ] {
        assert!(detail.get(field).is_some(), "{field} in {detail}");
    }
    assert_eq!(detail["metadata"]["correlationId"], json!("corr-test"));
}

#[tokio::test]
async fn only_failed_entries_are_resent() {
    let events = events(10); // 30 events
    let flaky = [events[3].event_id, events[17].event_id, events[29].event_id];
    let bus = Arc::new(
        FaultyBus::default()
            .fail_entry(flaky[0], 1)
            .fail_entry(flaky[1], 2)
            .fail_entry(flaky[2], 3),
    );
    publisher(bus.clone()).publish(&events).await.unwrap();

    let calls = bus.calls();
    let first_round: usize = 3;
    assert_eq!(calls[..first_round].concat().len(), 30);
    let retried = calls[first_round..].concat();
    assert_eq!(
        sorted(retried),
        sorted(vec![
            flaky[0], flaky[1], flaky[1], flaky[2], flaky[2], flaky[2]
        ])
    );
    // Every event arrived, exactly once: the failed entries were not accepted before.
    assert_eq!(sorted(bus.delivered()), sorted(ids(&events)));
}

#[tokio::test]
async fn a_lost_response_resends_the_batch_so_every_event_arrives_at_least_once() {
    let events = events(7); // 21 events
    let bus = Arc::new(FaultyBus {
        lost_responses: AtomicU32::new(1),
        ..FaultyBus::default()
    });
    publisher(bus.clone()).publish(&events).await.unwrap();

    let delivered = bus.delivered();
    for id in ids(&events) {
        assert!(delivered.contains(&id), "{id} delivered");
    }
    // The batch whose response was lost went twice; the others once.
    assert_eq!(delivered.len(), 21 + bus.calls()[3].len());
}

#[tokio::test]
async fn what_still_fails_after_the_retries_is_reported_per_event() {
    let events = events(5); // 15 events
    let stuck = &events[7];
    let bus = Arc::new(FaultyBus::default().fail_entry(stuck.event_id, u32::MAX));
    let error = publisher(bus.clone()).publish(&events).await.unwrap_err();

    assert_eq!(error.first_failure(), 7);
    assert_eq!(error.failed.len(), 1);
    let failed = &error.failed[0];
    assert_eq!(
        (failed.event_id, failed.order_id, failed.version),
        (stuck.event_id, stuck.order_id, stuck.version)
    );
    assert_eq!(failed.code, "ThrottlingException");
    // Sent once, then retried until the attempts ran out; never more.
    let attempts = bus
        .calls()
        .concat()
        .iter()
        .filter(|&&id| id == stuck.event_id)
        .count();
    assert_eq!(attempts, 4);
    let mut others = ids(&events);
    others.remove(7);
    assert_eq!(sorted(bus.delivered()), sorted(others));
}

#[tokio::test]
async fn a_rejected_call_is_reported_without_retrying() {
    let events = events(1);
    let bus = Arc::new(FaultyBus {
        rejections: AtomicU32::new(1),
        ..FaultyBus::default()
    });
    let error = publisher(bus.clone()).publish(&events).await.unwrap_err();
    assert_eq!(error.failed.len(), 3);
    assert!(error.failed.iter().all(|f| f.code == "BusRejected"));
    assert_eq!(bus.calls().len(), 1);
}

fn blob_event(bytes: usize) -> StoredEvent {
    raw_event(
        new_order_id(),
        1,
        "OrderBlob",
        1,
        json!({ "blob": "x".repeat(bytes) }),
    )
}

#[tokio::test]
async fn batches_never_exceed_ten_entries_or_256_kb() {
    // Sizes that fill batches by bytes before count, and by count before bytes.
    let mut events: Vec<StoredEvent> = Vec::new();
    for i in 0..40 {
        let bytes = match i % 5 {
            0 => 100_000,
            1 => 60_000,
            2 => 200,
            3 => 120_000,
            _ => 30,
        };
        events.push(blob_event(bytes));
    }
    events.extend(self::events(10));
    let bus = Arc::new(FaultyBus::default()); // asserts the limits on every call
    publisher(bus.clone()).publish(&events).await.unwrap();
    assert_eq!(sorted(bus.delivered()), sorted(ids(&events)));
    let calls = bus.inner.calls.lock().unwrap();
    for call in calls.iter() {
        let bytes: usize = call.iter().map(BusEntry::size).sum();
        assert!(call.len() <= 10 && bytes <= MAX_BATCH_BYTES);
    }
    // Greedy packing: a call is closed only when the next entry would not fit.
    assert!(calls.len() < events.len() / 2);
}

#[tokio::test]
async fn an_entry_over_256_kb_fails_without_being_sent() {
    let mut events = events(2);
    events.insert(2, blob_event(MAX_BATCH_BYTES));
    let bus = Arc::new(FaultyBus::default());
    let error = publisher(bus.clone()).publish(&events).await.unwrap_err();

    assert_eq!(error.failed.len(), 1);
    assert_eq!(
        (error.failed[0].index, error.failed[0].code.as_str()),
        (2, "EntryTooLarge")
    );
    let sent = bus.calls().concat();
    assert!(!sent.contains(&events[2].event_id));
    assert_eq!(sent.len(), 6);
}

#[test]
fn the_entry_size_counts_source_detail_type_and_detail_bytes() {
    let entry = BusEntry {
        source: "orders".into(),
        detail_type: "OrderCreated".into(),
        detail: "{\"é\":1}".into(),
        event_bus_name: Some("not counted".into()),
    };
    // "é" is two bytes in UTF-8.
    assert_eq!(entry.size(), 6 + 12 + 8);
}
