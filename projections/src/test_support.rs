//! Test helpers: a real SQLite store on a temporary file, and events to put in it.

use orders_domain::{
    CancelReason, Currency, CustomerId, EventData, Items, LineItem, OrderEvent, OrderId,
    OrderState, Quantity, Sku, Timestamp, UnitPrice,
};
use orders_store::sqlite::SqliteStore;
use orders_store::{
    AppendRequest, EventMetadata, EventStore, OrderView, ReadModelStore, StoredEvent, fold,
};
use serde_json::Value;
use tempfile::TempDir;
use uuid::Uuid;

/// A fresh store; keep the directory alive as long as the store.
pub fn store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    (dir, store)
}

pub fn new_order_id() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

pub fn metadata() -> EventMetadata {
    EventMetadata {
        correlation_id: "corr-test".to_owned(),
        causation_id: "cause-test".to_owned(),
        idempotency_key: None,
        source: "test".to_owned(),
    }
}

pub fn created() -> EventData {
    let items = Items::parse(vec![LineItem {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: Quantity::parse(2).unwrap(),
        unit_price: UnitPrice::parse(150).unwrap(),
    }])
    .unwrap();
    EventData::OrderCreated {
        customer_id: CustomerId::parse("customer-1").unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        total: items.total().unwrap(),
        items,
    }
}

pub fn cancelled() -> EventData {
    EventData::OrderCancelled {
        reason: Some(CancelReason::parse("changed mind").unwrap()),
    }
}

/// A domain event, stored at `version`.
pub fn event(order_id: OrderId, version: u64, data: EventData) -> StoredEvent {
    let occurred_at = Timestamp::from_millis(1_790_000_000_000 + version as i64 * 1000);
    StoredEvent::new(
        order_id,
        version,
        Uuid::now_v7(),
        &OrderEvent { occurred_at, data },
        metadata(),
    )
}

/// A stored event with any type and payload (unknown types, undecodable payloads).
pub fn raw_event(
    order_id: OrderId,
    version: u64,
    event_type: &str,
    schema_version: u32,
    data: Value,
) -> StoredEvent {
    StoredEvent {
        event_type: event_type.to_owned(),
        schema_version,
        data,
        ..event(order_id, version, EventData::OrderConfirmed)
    }
}

/// created, confirmed, shipped.
pub fn lifecycle(order_id: OrderId) -> Vec<StoredEvent> {
    vec![
        event(order_id, 1, created()),
        event(order_id, 2, EventData::OrderConfirmed),
        event(order_id, 3, EventData::OrderShipped),
    ]
}

/// Appends one order's contiguous events.
pub async fn append(store: &SqliteStore, events: &[StoredEvent]) {
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

/// The view the read model must converge to: the fold of everything in the event store.
pub async fn folded_view(store: &SqliteStore, order_id: OrderId) -> Option<OrderView> {
    let events = store.load(order_id, None).await.unwrap();
    OrderView::from_state(order_id, fold(OrderState::default(), &events).unwrap())
}

pub async fn stored_view(store: &SqliteStore, order_id: OrderId) -> Option<OrderView> {
    ReadModelStore::get(store, order_id).await.unwrap()
}

/// Asserts the stored view equals the fold of all the order's events.
pub async fn assert_converged(store: &SqliteStore, order_id: OrderId) {
    let expected = folded_view(store, order_id).await;
    assert!(expected.is_some(), "the order {order_id} has a view");
    assert_eq!(stored_view(store, order_id).await, expected);
}
