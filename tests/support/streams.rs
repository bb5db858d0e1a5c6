//! Stored events, stream batches in the shape Lambda delivers, and convergence checks, for
//! the tests and benchmarks of the stream Lambdas.

use orders_domain::{
    Currency, CustomerId, EventData, Items, LineItem, OrderEvent, OrderId, OrderState, Quantity,
    Sku, Timestamp, UnitPrice,
};
use orders_projections::stream::{DynamoDbEvent, DynamoDbEventResponse, insert_record};
use orders_store::{
    AppendRequest, EventMetadata, EventStore, OrderView, ReadModelStore, StoredEvent, fold,
};
use serde_json::Value;
use uuid::Uuid;

pub const STREAM_ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders-events/stream/2026-01-01T00:00:00.000";

/// The moto server the test command started (EventBridge and SQS). Missing fails the test.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "MOTO_ENDPOINT is not set: the moto server is not running. Run ./scripts/test.sh, \
             which installs and starts it, or wrap the command in ./scripts/moto.sh with ..."
        )
    })
}

pub fn new_order_id() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

pub fn created(customer: &str) -> EventData {
    let items = Items::parse(vec![LineItem {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: Quantity::parse(2).unwrap(),
        unit_price: UnitPrice::parse(1400).unwrap(),
    }])
    .unwrap();
    EventData::OrderCreated {
        customer_id: CustomerId::parse(customer).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        total: items.total().unwrap(),
        items,
    }
}

/// A domain event of `order_id` at `version`.
pub fn event(order_id: OrderId, version: u64, data: EventData) -> StoredEvent {
    StoredEvent::new(
        order_id,
        version,
        Uuid::now_v7(),
        &OrderEvent {
            occurred_at: Timestamp::from_millis(1_790_000_000_000 + version as i64 * 1000),
            data,
        },
        EventMetadata {
            correlation_id: "corr-stream-test".to_owned(),
            causation_id: "corr-stream-test".to_owned(),
            idempotency_key: None,
            source: "orders.tests".to_owned(),
        },
    )
}

/// An event of any type and payload (an unknown type, a payload that does not decode).
pub fn raw_event(order_id: OrderId, version: u64, event_type: &str, data: Value) -> StoredEvent {
    StoredEvent {
        event_type: event_type.to_owned(),
        data,
        ..event(order_id, version, EventData::OrderConfirmed)
    }
}

/// Created, confirmed, shipped.
pub fn lifecycle(order_id: OrderId) -> Vec<StoredEvent> {
    vec![
        event(order_id, 1, created("stream-customer")),
        event(order_id, 2, EventData::OrderConfirmed),
        event(order_id, 3, EventData::OrderShipped),
    ]
}

/// Appends one order's contiguous events, as the command side would.
pub async fn append(store: &dyn EventStore, events: &[StoredEvent]) {
    let first = &events[0];
    store
        .append(AppendRequest {
            order_id: first.order_id,
            expected_version: first.version - 1,
            events: events.to_vec(),
            idempotency: None,
            now: first.occurred_at,
        })
        .await
        .unwrap();
}

/// A batch of `INSERT` records for `events` (in this order), with the sequence numbers
/// `first_sequence`, `first_sequence + 1`, ...
pub fn batch(events: &[&StoredEvent], first_sequence: u64) -> DynamoDbEvent {
    let mut batch = DynamoDbEvent::default();
    batch.records = events
        .iter()
        .zip(first_sequence..)
        .map(|(event, sequence)| insert_record(event, &sequence.to_string(), STREAM_ARN))
        .collect();
    batch
}

/// The sequence number the response names, if any (never more than one).
pub fn failed_sequence(response: &DynamoDbEventResponse) -> Option<u64> {
    assert!(response.batch_item_failures.len() <= 1, "{response:?}");
    response
        .batch_item_failures
        .first()
        .map(|f| f.item_identifier.as_deref().unwrap().parse().unwrap())
}

/// The view the read model must converge to: the fold of all the order's stored events.
pub async fn folded_view(events: &dyn EventStore, order_id: OrderId) -> Option<OrderView> {
    let history = events.load(order_id, None).await.unwrap();
    OrderView::from_state(order_id, fold(OrderState::default(), &history).unwrap())
}

/// Asserts the order's view equals the fold of its events in the event store.
pub async fn assert_converged(events: &dyn EventStore, views: &dyn ReadModelStore, id: OrderId) {
    let expected = folded_view(events, id).await;
    assert!(expected.is_some(), "order {id} has events that make a view");
    assert_eq!(views.get(id).await.unwrap(), expected, "order {id}");
}
