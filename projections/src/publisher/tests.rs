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
    /// Every entry sent, and then what the publisher was told of it, in the order it happened.
    log: Mutex<Vec<Step>>,
}

/// One thing that happened to an entry, as the publisher saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Sent(Uuid),
    Accepted(Uuid),
    Failed(Uuid),
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
    fn log(&self) -> Vec<Step> {
        self.log.lock().unwrap().clone()
    }
    /// How many times the publisher sent the entry of `id`.
    fn sends(&self, id: Uuid) -> usize {
        self.calls().concat().iter().filter(|&&s| s == id).count()
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
        let ids: Vec<Uuid> = entries.iter().map(event_id_of).collect();
        self.calls.lock().unwrap().push(ids.clone());
        self.log
            .lock()
            .unwrap()
            .extend(ids.iter().copied().map(Step::Sent));
        let outcome = self.answer(entries).await;
        let mut log = self.log.lock().unwrap();
        match &outcome {
            Ok(results) => log.extend(ids.iter().zip(results).map(|(&id, result)| match result {
                EntryResult::Accepted { .. } => Step::Accepted(id),
                EntryResult::Failed { .. } => Step::Failed(id),
            })),
            Err(_) => log.extend(ids.iter().copied().map(Step::Failed)),
        }
        outcome
    }
}

impl FaultyBus {
    async fn answer(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
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
            bus_source: "orders.test".into(),
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

/// `per_order` events (v1, v2, ...) of each of `orders` orders, one order after the other,
/// as a stream batch holds them.
fn orders_of(orders: usize, per_order: u64) -> Vec<StoredEvent> {
    (0..orders)
        .flat_map(|_| {
            let order = new_order_id();
            (1..=per_order).map(move |v| match v {
                1 => event(order, 1, created()),
                v => event(order, v, orders_domain::EventData::OrderConfirmed),
            })
        })
        .collect()
}

/// Asserts that the publisher kept every order in version order: no call held two events of
/// one order, an event was first sent only after the previous event of its order had been
/// accepted, and the bus received each order's events in version order.
fn assert_each_order_in_version_order(bus: &FaultyBus, events: &[StoredEvent]) {
    let by_id: HashMap<Uuid, &StoredEvent> = events.iter().map(|e| (e.event_id, e)).collect();
    for call in bus.calls() {
        let mut orders: Vec<OrderId> = call.iter().map(|id| by_id[id].order_id).collect();
        orders.sort_by_key(|o| o.to_string());
        let before = orders.len();
        orders.dedup();
        assert_eq!(orders.len(), before, "one call, two events of one order");
    }

    let log = bus.log();
    let position = |step: Step| log.iter().position(|s| *s == step);
    let mut previous: HashMap<OrderId, &StoredEvent> = HashMap::new();
    for later in events {
        let Some(earlier) = previous.insert(later.order_id, later) else {
            continue;
        };
        let Some(sent) = position(Step::Sent(later.event_id)) else {
            continue;
        };
        let accepted = position(Step::Accepted(earlier.event_id));
        assert!(
            accepted.is_some_and(|accepted| accepted < sent),
            "v{} of {} sent (step {sent}) before v{} was accepted ({accepted:?})",
            later.version,
            later.order_id,
            earlier.version
        );
    }

    let mut received: HashMap<OrderId, Vec<u64>> = HashMap::new();
    for id in bus.delivered() {
        let event = by_id[&id];
        received
            .entry(event.order_id)
            .or_default()
            .push(event.version);
    }
    for (order, versions) in received {
        assert!(
            versions.windows(2).all(|v| v[0] <= v[1]),
            "{order} received out of order: {versions:?}"
        );
    }
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
    // Given ten orders of three events, and a bus that fails three entries 1, 2 and 3 times
    let events = events(10); // 30 events
    let flaky = [(3, 1), (17, 2), (29, 3)];
    let mut bus = FaultyBus::default();
    for (i, times) in flaky {
        bus = bus.fail_entry(events[i].event_id, times);
    }
    let bus = Arc::new(bus);

    // When they are published
    publisher(bus.clone()).publish(&events).await.unwrap();

    // Then each flaky entry was sent once per failure plus once, every other entry once
    for (i, event) in events.iter().enumerate() {
        let failures = flaky.iter().find(|(f, _)| *f == i).map_or(0, |(_, t)| *t);
        assert_eq!(
            bus.sends(event.event_id),
            1 + failures as usize,
            "event {i}"
        );
    }
    // and every event arrived exactly once (a failed entry was not accepted before), each
    // order's in version order.
    assert_eq!(sorted(bus.delivered()), sorted(ids(&events)));
    assert_each_order_in_version_order(&bus, &events);
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
    // The first call (every order's v1) went twice, as its response was lost; the others
    // once. No v2 went before its v1 was resent and accepted.
    assert_eq!(bus.calls()[0].len(), 7);
    assert_eq!(bus.calls()[1], bus.calls()[0]);
    assert_eq!(delivered.len(), 21 + 7);
    assert_each_order_in_version_order(&bus, &events);
}

#[tokio::test]
async fn what_still_fails_after_the_retries_is_reported_per_event() {
    // Given five orders of three events, and a bus that always fails the third order's v2
    let events = events(5); // 15 events
    let stuck = &events[7];
    let bus = Arc::new(FaultyBus::default().fail_entry(stuck.event_id, u32::MAX));

    // When they are published
    let error = publisher(bus.clone()).publish(&events).await.unwrap_err();

    // Then the stuck event is reported with the bus's error, and its order's v3 as held back
    assert_eq!(error.first_failure(), 7);
    let reported: Vec<(usize, Uuid, OrderId, u64, &str)> = error
        .failed
        .iter()
        .map(|f| (f.index, f.event_id, f.order_id, f.version, f.code.as_str()))
        .collect();
    assert_eq!(
        reported,
        [
            (7, stuck.event_id, stuck.order_id, 2, "ThrottlingException"),
            (8, events[8].event_id, stuck.order_id, 3, PRIOR_EVENT_FAILED),
        ]
    );
    // Sent once, then retried until the attempts ran out; never more. Its v3 never went.
    assert_eq!(bus.sends(stuck.event_id), 4);
    assert_eq!(bus.sends(events[8].event_id), 0);
    let others: Vec<Uuid> = ids(&events)
        .into_iter()
        .filter(|id| ![events[7].event_id, events[8].event_id].contains(id))
        .collect();
    assert_eq!(sorted(bus.delivered()), sorted(others));
    assert_each_order_in_version_order(&bus, &events);
}

#[tokio::test]
async fn a_rejected_call_is_reported_without_retrying() {
    let events = events(1);
    let bus = Arc::new(FaultyBus {
        rejections: AtomicU32::new(1),
        ..FaultyBus::default()
    });
    let error = publisher(bus.clone()).publish(&events).await.unwrap_err();
    let codes: Vec<&str> = error.failed.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        ["BusRejected", PRIOR_EVENT_FAILED, PRIOR_EVENT_FAILED]
    );
    // Only v1 went, once: v2 and v3 wait for it.
    assert_eq!(bus.calls(), vec![vec![events[0].event_id]]);
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

#[tokio::test]
async fn an_entry_over_256_kb_holds_back_its_orders_later_events() {
    // Given an order whose v1 is too large to send, and another order
    let order = new_order_id();
    let too_large = raw_event(
        order,
        1,
        "OrderBlob",
        1,
        json!({ "blob": "x".repeat(MAX_BATCH_BYTES) }),
    );
    let mut events = vec![
        too_large,
        event(order, 2, orders_domain::EventData::OrderConfirmed),
    ];
    events.extend(self::events(1));
    let bus = Arc::new(FaultyBus::default());

    // When they are published
    let error = publisher(bus.clone()).publish(&events).await.unwrap_err();

    // Then neither of its events was sent, and the other order's all were
    let reported: Vec<(usize, &str)> = error
        .failed
        .iter()
        .map(|f| (f.index, f.code.as_str()))
        .collect();
    assert_eq!(reported, [(0, "EntryTooLarge"), (1, PRIOR_EVENT_FAILED)]);
    assert_eq!(bus.delivered(), ids(&events[2..]));
}

#[tokio::test]
async fn an_orders_next_event_is_sent_only_once_its_previous_event_was_accepted() {
    // Given three orders of three events, and a bus that throttles the first order's v1 once
    // (its v2 would be accepted)
    let events = events(3);
    let id = |i: usize| events[i].event_id;
    let (a1, a2, a3) = (id(0), id(1), id(2));
    let (b1, b2, b3, c1, c2, c3) = (id(3), id(4), id(5), id(6), id(7), id(8));
    let bus = Arc::new(FaultyBus::default().fail_entry(a1, 1));

    // When they are published
    publisher(bus.clone()).publish(&events).await.unwrap();

    // Then a1 failed, was resent and accepted, and only then was a2 sent
    let of_a: Vec<Step> = bus
        .log()
        .into_iter()
        .filter(|step| {
            let (Step::Sent(id) | Step::Accepted(id) | Step::Failed(id)) = step;
            [a1, a2].contains(id)
        })
        .collect();
    assert_eq!(
        of_a,
        [
            Step::Sent(a1),
            Step::Failed(a1),
            Step::Sent(a1),
            Step::Accepted(a1),
            Step::Sent(a2),
            Step::Accepted(a2),
        ]
    );
    // while the other orders went on in the same calls, one event per order per call
    assert_eq!(
        bus.calls(),
        [
            vec![a1, b1, c1],
            vec![a1, b2, c2],
            vec![a2, b3, c3],
            vec![a3]
        ]
    );
    // and the bus received every event once, each order's in version order.
    assert_eq!(bus.delivered(), [b1, c1, a1, b2, c2, a2, b3, c3, a3]);
    assert_each_order_in_version_order(&bus, &events);
}

#[tokio::test]
async fn an_event_that_keeps_failing_holds_back_its_orders_later_events_and_only_those() {
    // Given orders A and B, their events interleaved, and a bus that always fails A's v1
    let (a, b) = (lifecycle(new_order_id()), lifecycle(new_order_id()));
    let events = vec![
        b[0].clone(),
        a[0].clone(),
        b[1].clone(),
        a[1].clone(),
        b[2].clone(),
        a[2].clone(),
    ];
    let bus = Arc::new(FaultyBus::default().fail_entry(a[0].event_id, u32::MAX));

    // When they are published
    let error = publisher(bus.clone()).publish(&events).await.unwrap_err();

    // Then A's v1 was tried until the attempts ran out, and A's v2 and v3 were never sent
    assert_eq!(bus.sends(a[0].event_id), 4);
    assert_eq!(bus.sends(a[1].event_id), 0);
    assert_eq!(bus.sends(a[2].event_id), 0);
    // while all of B arrived, once each, in order
    assert_eq!(bus.delivered(), ids(&b));
    // and A's three events are reported, v1 with the bus's error, v2 and v3 as held back;
    // the batch resumes at A's v1.
    let reported: Vec<(usize, OrderId, u64, &str)> = error
        .failed
        .iter()
        .map(|f| (f.index, f.order_id, f.version, f.code.as_str()))
        .collect();
    let order = a[0].order_id;
    assert_eq!(
        reported,
        [
            (1, order, 1, "ThrottlingException"),
            (3, order, 2, PRIOR_EVENT_FAILED),
            (5, order, 3, PRIOR_EVENT_FAILED),
        ]
    );
    assert_eq!(error.first_failure(), 1);
    assert_each_order_in_version_order(&bus, &events);
}

#[tokio::test]
async fn the_first_failure_is_the_lowest_index_even_when_a_later_one_failed_sooner() {
    // Given A's v1 and v2, then C's v1; the bus always fails A's v2 and C's v1
    let (a, c) = (lifecycle(new_order_id()), lifecycle(new_order_id()));
    let events = vec![a[0].clone(), a[1].clone(), c[0].clone()];
    let bus = Arc::new(
        FaultyBus::default()
            .fail_entry(a[1].event_id, u32::MAX)
            .fail_entry(c[0].event_id, u32::MAX),
    );

    // When they are published
    let error = publisher(bus.clone()).publish(&events).await.unwrap_err();

    // Then C's v1 ran out of attempts first (it was sent from the first call; A's v2 waited
    // for A's v1)
    let log = bus.log();
    let last_failure = |id| log.iter().rposition(|s| *s == Step::Failed(id)).unwrap();
    assert!(last_failure(c[0].event_id) < last_failure(a[1].event_id));
    // but the resume point is A's v2, the lower index.
    assert_eq!(error.first_failure(), 1);
    let indexes: Vec<usize> = error.failed.iter().map(|f| f.index).collect();
    assert_eq!(indexes, [1, 2]);
    assert!(
        error.to_string().contains("first: event 2 of order"),
        "{error}"
    );

    // The lowest index, whatever order the failures are listed in.
    let mut unsorted = error.clone();
    unsorted.failed.reverse();
    assert_eq!(unsorted.first_failure(), 1);
}

#[tokio::test]
async fn different_orders_share_calls_so_a_batch_of_many_orders_takes_few_calls() {
    for (orders, per_order, calls) in [(30, 1, 3), (10, 3, 3), (100, 1, 10), (1, 5, 5)] {
        // Given `orders` orders of `per_order` events each
        let events = orders_of(orders, per_order);
        let bus = Arc::new(FaultyBus::default());

        // When they are published
        publisher(bus.clone()).publish(&events).await.unwrap();

        // Then the calls are as few as one event per order per call allows
        let sizes: Vec<usize> = bus.calls().iter().map(Vec::len).collect();
        assert_eq!(sizes.len(), calls, "{orders} x {per_order}: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), events.len());
        assert_eq!(sorted(bus.delivered()), sorted(ids(&events)));
        assert_each_order_in_version_order(&bus, &events);
    }
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
