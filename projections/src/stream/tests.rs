//! Stream batches through the handler functions, on a real SQLite store (the DynamoDB read
//! model runs the same cases in `tests/stream_projector.rs`).

mod fuzz;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use orders_domain::{EventData, OrderId};
use orders_store::StoredEvent;
use orders_store::sqlite::SqliteStore;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::publisher::{Bus, BusEntry, BusError, EntryResult, PublisherConfig, RetryPolicy};
use crate::test_support::*;

const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders-events/stream/x";

fn batch(records: Vec<EventRecord>) -> DynamoDbEvent {
    let mut event = DynamoDbEvent::default();
    event.records = records;
    event
}

/// Records for `events`, with sequence numbers 100, 101, ... in order.
fn records(events: &[StoredEvent]) -> Vec<EventRecord> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| insert_record(event, &(100 + i).to_string(), ARN))
        .collect()
}

fn failed_sequence(response: &DynamoDbEventResponse) -> Option<&str> {
    assert!(response.batch_item_failures.len() <= 1, "{response:?}");
    response
        .batch_item_failures
        .first()
        .and_then(|f| f.item_identifier.as_deref())
}

fn projector(store: &SqliteStore) -> Projector {
    let store = Arc::new(store.clone());
    Projector::new(store.clone(), store)
}

#[tokio::test]
async fn the_canonical_aws_sample_shape_carrying_our_items_decodes() {
    let event: DynamoDbEvent = serde_json::from_str(include_str!(
        "../../../events/dynamodb-stream.order-created-confirmed.json"
    ))
    .unwrap();
    let batch = decode(&event);
    assert!(batch.undecodable.is_none());
    // The REMOVE record is logged and skipped.
    assert_eq!(batch.events.len(), 2);
    let (index, created) = (batch.record_indexes[0], &batch.events[0]);
    assert_eq!(index, 0);
    assert_eq!(
        created.order_id,
        OrderId::parse("01936b2e-7a1c-7cc4-9a4e-4d5b7c0f3e21").unwrap()
    );
    assert_eq!((created.version, created.schema_version), (1, 1));
    assert_eq!(created.event_type, "OrderCreated");
    assert_eq!(created.metadata.idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(created.data["items"][0]["unitPrice"], json!(1400));
    let decoded = created.decode().unwrap().map(|event| event.data);
    let Some(EventData::OrderCreated { total, .. }) = decoded else {
        panic!("an OrderCreated payload through the upcaster: {decoded:?}");
    };
    assert_eq!(serde_json::to_value(total).unwrap(), json!(2800));
    assert_eq!(
        batch.events[1].decode().unwrap().map(|event| event.data),
        Some(EventData::OrderConfirmed)
    );

    // Projected: one CONFIRMED view at version 2, the whole batch committed.
    let (_dir, store) = store();
    let response = project(&projector(&store), &event).await.unwrap();
    assert_eq!(failed_sequence(&response), None);
    let view = stored_view(&store, created.order_id).await.unwrap();
    assert_eq!(view.version, 2);
    assert_eq!(serde_json::to_value(&view).unwrap()["status"], "CONFIRMED");
}

#[tokio::test]
async fn an_undecodable_record_fails_with_its_own_sequence_number_after_the_records_before_it() {
    let (_dir, store) = store();
    let (a, b) = (new_order_id(), new_order_id());
    let a_events = lifecycle(a);
    let b_created = event(b, 1, created());
    append(&store, &a_events).await;
    append(&store, std::slice::from_ref(&b_created)).await;

    let mut records = records(&[a_events[0].clone(), b_created, a_events[1].clone()]);
    // The middle record's image is not an event (no eventId, a version that is not a number).
    records[1].change.new_image = serde_json::from_value(json!({
        "orderId": {"S": b.to_string()}, "version": {"S": "one"}
    }))
    .unwrap();
    let event = batch(records);

    let decoded = decode(&event);
    assert_eq!(decoded.events.len(), 1);
    assert_eq!(decoded.undecodable.as_ref().map(|(i, _)| *i), Some(1));

    let response = project(&projector(&store), &event).await.unwrap();
    assert_eq!(failed_sequence(&response), Some("101"));
    assert_eq!(
        stored_view(&store, a).await.unwrap().version,
        1,
        "record 0 committed"
    );
    assert_eq!(
        stored_view(&store, b).await,
        None,
        "nothing after it applied"
    );
}

#[tokio::test]
async fn modify_and_remove_are_not_applied_and_do_not_fail_the_batch() {
    let (_dir, store) = store();
    let order = new_order_id();
    let events = lifecycle(order);
    append(&store, &events).await;
    let mut records = records(&events[..1]);
    for name in ["MODIFY", "REMOVE"] {
        let mut record = insert_record(&events[1], "200", ARN);
        record.event_name = name.to_owned();
        records.push(record);
    }
    let response = project(&projector(&store), &batch(records)).await.unwrap();
    assert_eq!(failed_sequence(&response), None);
    assert_eq!(stored_view(&store, order).await.unwrap().version, 1);
}

#[tokio::test]
async fn a_failure_to_report_without_a_sequence_number_fails_the_whole_batch() {
    let mut records = records(&[event(new_order_id(), 1, created())]);
    records[0].change.new_image = Default::default();
    records[0].change.sequence_number = None;
    let error = batch_response(&batch(records), Some(0)).unwrap_err();
    assert!(matches!(error, StreamError::NoSequenceNumber { .. }));
}

#[tokio::test]
async fn a_projection_failure_names_the_lowest_failed_record_and_later_orders_still_apply() {
    let (_dir, store) = store();
    let (a, b) = (new_order_id(), new_order_id());
    let b_events = lifecycle(b);
    append(&store, &b_events).await;
    // Order a: v1 is in the batch, but its payload does not decode (in the store too).
    let broken = raw_event(a, 1, "OrderCreated", 1, json!({"customerId": 7}));
    append(&store, std::slice::from_ref(&broken)).await;

    let event = batch(records(&[b_events[0].clone(), broken, b_events[1].clone()]));
    let response = project(&projector(&store), &event).await.unwrap();
    assert_eq!(failed_sequence(&response), Some("101"));
    // b's events, before and after the failure, are applied: a retry from 101 finds them
    // already there (duplicates are no-ops).
    assert_eq!(stored_view(&store, b).await.unwrap().version, 2);
    assert_eq!(stored_view(&store, a).await, None);
}

/// Fails the entries of chosen events every time; accepts the rest.
struct RejectingBus {
    failing: HashSet<Uuid>,
    accepted: Mutex<Vec<Uuid>>,
    /// Every entry the publisher sent, in order.
    sent: Mutex<Vec<Uuid>>,
}

impl RejectingBus {
    fn failing(failing: impl IntoIterator<Item = Uuid>) -> Arc<Self> {
        Arc::new(Self {
            failing: failing.into_iter().collect(),
            accepted: Mutex::default(),
            sent: Mutex::default(),
        })
    }
}

/// A publisher on `bus` that gives up on an entry after two attempts.
fn impatient_publisher(bus: Arc<dyn Bus>) -> Publisher {
    Publisher::new(
        bus,
        PublisherConfig {
            retry: RetryPolicy {
                max_attempts: 2,
                base_delay: std::time::Duration::from_millis(1),
                max_delay: std::time::Duration::from_millis(1),
            },
            ..PublisherConfig::default()
        },
    )
}

#[async_trait]
impl Bus for RejectingBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        Ok(entries
            .iter()
            .map(|entry| {
                let id = entry_event_id(entry);
                self.sent.lock().unwrap().push(id);
                if self.failing.contains(&id) {
                    EntryResult::Failed {
                        code: "InternalFailure".into(),
                        message: "injected".into(),
                    }
                } else {
                    self.accepted.lock().unwrap().push(id);
                    EntryResult::Accepted { event_id: None }
                }
            })
            .collect())
    }
}

#[tokio::test]
async fn the_publisher_reports_the_first_unpublished_record() {
    let events: Vec<StoredEvent> = (0..5)
        .map(|_| event(new_order_id(), 1, created()))
        .collect();
    let bus = RejectingBus::failing([events[1].event_id, events[3].event_id]);
    let publisher = impatient_publisher(bus.clone());
    let mut with_modify = records(&events);
    let mut modify = with_modify[0].clone();
    modify.event_name = "MODIFY".into();
    with_modify.insert(0, modify);
    let response = publish(&publisher, &batch(with_modify)).await.unwrap();
    // Records: the MODIFY, then events 0..5 with sequence numbers 100..104; events[1] and
    // events[3] fail, and the lower, 101, is where Lambda resumes.
    assert_eq!(failed_sequence(&response), Some("101"));
    let accepted = bus.accepted.lock().unwrap().clone();
    assert_eq!(
        accepted
            .iter()
            .filter(|id| **id == events[0].event_id)
            .count(),
        1,
        "the MODIFY record is not published"
    );
    for published in [0, 2, 4] {
        assert!(accepted.contains(&events[published].event_id));
    }

    // With nothing failing, the whole batch is committed.
    let ok = Publisher::new(RejectingBus::failing([]), PublisherConfig::default());
    let response = publish(&ok, &batch(records(&events))).await.unwrap();
    assert_eq!(failed_sequence(&response), None);
}

#[tokio::test]
async fn a_publish_failure_names_the_lowest_failed_record_and_holds_back_that_orders_later_ones() {
    // Given a batch interleaving orders A, B and C (sequence numbers 100..107), and a bus that
    // always fails A's v1 and C's v1
    let (a, b, c) = (
        lifecycle(new_order_id()),
        lifecycle(new_order_id()),
        lifecycle(new_order_id()),
    );
    let events = [&b[0], &a[0], &b[1], &a[1], &c[0], &b[2], &a[2], &c[1]].map(Clone::clone);
    let event = batch(records(&events));
    let bus = RejectingBus::failing([a[0].event_id, c[0].event_id]);

    // When the publisher function handles the batch
    let response = publish(&impatient_publisher(bus.clone()), &event)
        .await
        .unwrap();

    // Then the response names A's v1 (101), the lowest failed record, not C's (104), though
    // B's records after it were published
    assert_eq!(failed_sequence(&response), Some("101"));
    let ids = |events: &[StoredEvent]| events.iter().map(|e| e.event_id).collect::<Vec<_>>();
    assert_eq!(*bus.accepted.lock().unwrap(), ids(&b));
    // and A's and C's later events were never sent.
    let sent = bus.sent.lock().unwrap().clone();
    for held_back in [&a[1], &a[2], &c[1]] {
        assert!(
            !sent.contains(&held_back.event_id),
            "v{} sent",
            held_back.version
        );
    }

    // When Lambda retries from 101 and the bus has recovered
    let retry = batch(event.records[1..].to_vec());
    let healed = RejectingBus::failing([]);
    let response = publish(&impatient_publisher(healed.clone()), &retry)
        .await
        .unwrap();

    // Then the whole batch is committed, and each order's events went out in version order.
    assert_eq!(failed_sequence(&response), None);
    let accepted = healed.accepted.lock().unwrap().clone();
    for order in [&a, &c] {
        let of_order: Vec<Uuid> = accepted
            .iter()
            .copied()
            .filter(|id| order.iter().any(|e| e.event_id == *id))
            .collect();
        let expected: Vec<Uuid> = order
            .iter()
            .filter(|e| events.contains(e))
            .map(|e| e.event_id)
            .collect();
        assert_eq!(of_order, expected);
    }
}
