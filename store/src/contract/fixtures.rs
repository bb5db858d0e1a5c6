//! What the cases build: ids, times, events, requests, records and views.

use orders_domain::{
    CancelReason, Currency, CustomerId, EventData, Items, LineItem, Order, OrderEvent, OrderId,
    OrderStatus, Quantity, Sku, Timestamp, UnitPrice,
};
use uuid::Uuid;

use crate::{
    AppendRequest, ChangeFeed, Clock, EventMetadata, EventStore, IdempotencyKey, IdempotencyRecord,
    ListFilter, ListQuery, OrderView, ReadModelStore, StoredEvent, SystemClock,
};

pub(super) fn new_order_id() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

pub(super) fn new_key() -> IdempotencyKey {
    IdempotencyKey::parse(&format!("key-{}", Uuid::now_v7())).unwrap()
}

pub(super) fn at(millis: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + millis)
}

pub(super) fn wall_clock() -> Timestamp {
    SystemClock.now()
}

pub(super) fn live_expiry() -> Timestamp {
    Timestamp::from_millis(wall_clock().millis() + 24 * 3_600_000)
}

pub(super) fn metadata() -> EventMetadata {
    EventMetadata {
        correlation_id: Uuid::now_v7().to_string(),
        causation_id: Uuid::now_v7().to_string(),
        idempotency_key: None,
        source: "contract-test".into(),
    }
}

pub(super) fn stored(
    order: OrderId,
    version: u64,
    occurred_at: Timestamp,
    data: EventData,
) -> StoredEvent {
    StoredEvent::new(
        order,
        version,
        Uuid::now_v7(),
        &OrderEvent { occurred_at, data },
        metadata(),
    )
}

pub(super) fn items() -> Items {
    Items::parse(vec![LineItem {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: Quantity::parse(2).unwrap(),
        unit_price: UnitPrice::parse(150).unwrap(),
    }])
    .unwrap()
}

pub(super) fn created(
    order: OrderId,
    version: u64,
    customer: &str,
    occurred_at: Timestamp,
) -> StoredEvent {
    let items = items();
    stored(
        order,
        version,
        occurred_at,
        EventData::OrderCreated {
            customer_id: CustomerId::parse(customer).unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            total: items.total().unwrap(),
            items,
        },
    )
}

pub(super) fn confirmed(order: OrderId, version: u64, occurred_at: Timestamp) -> StoredEvent {
    stored(order, version, occurred_at, EventData::OrderConfirmed)
}

pub(super) fn shipped(order: OrderId, version: u64, occurred_at: Timestamp) -> StoredEvent {
    stored(order, version, occurred_at, EventData::OrderShipped)
}

pub(super) fn cancelled(order: OrderId, version: u64, occurred_at: Timestamp) -> StoredEvent {
    stored(
        order,
        version,
        occurred_at,
        EventData::OrderCancelled {
            reason: Some(CancelReason::parse("contract test").unwrap()),
        },
    )
}

pub(super) fn request(
    order_id: OrderId,
    expected_version: u64,
    events: Vec<StoredEvent>,
    idempotency: Option<IdempotencyRecord>,
) -> AppendRequest {
    AppendRequest {
        order_id,
        expected_version,
        events,
        idempotency,
        now: wall_clock(),
    }
}

pub(super) fn idempotency_record(
    key: &IdempotencyKey,
    order_id: OrderId,
    version: u64,
    expires_at: Timestamp,
) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.clone(),
        fingerprint: format!("{:064x}", version),
        order_id,
        version,
        status: 201,
        expires_at,
    }
}

/// A view of an order of two items, for tests.
pub fn view(
    order_id: OrderId,
    customer: &str,
    status: OrderStatus,
    created_ms: i64,
    updated_ms: i64,
    version: u64,
) -> OrderView {
    let items = items();
    OrderView {
        order_id,
        version,
        order: Order {
            customer_id: CustomerId::parse(customer).unwrap(),
            status,
            currency: Currency::parse("EUR").unwrap(),
            total: items.total().unwrap(),
            items,
            cancel_reason: None,
            created_at: Timestamp::from_millis(created_ms),
            updated_at: Timestamp::from_millis(updated_ms),
        },
    }
}

/// Appends `order`'s creation (for `customer`) and confirmation, without a key: the order is
/// then at version 2.
pub(super) async fn append_created_and_confirmed<S: EventStore>(
    store: &S,
    order: OrderId,
    customer: &str,
) {
    store
        .append(request(
            order,
            0,
            vec![
                created(order, 1, customer, at(1)),
                confirmed(order, 2, at(2)),
            ],
            None,
        ))
        .await
        .unwrap();
}

pub(super) fn versions(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

/// Follows `next` to the end; fails on a page past the limit or a listing that never ends.
pub(super) async fn page_through<S: ReadModelStore>(
    store: &S,
    filter: ListFilter,
    limit: u32,
) -> Vec<Vec<OrderView>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&ListQuery {
                filter: filter.clone(),
                limit,
                after,
            })
            .await
            .expect("list");
        assert!(
            page.items.len() <= limit as usize,
            "a page respects the limit"
        );
        assert!(pages.len() < 1_000, "the listing never ends");
        pages.push(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

pub(super) async fn feed_head<S: ChangeFeed>(store: &S) -> u64 {
    let mut head = 0;
    loop {
        let batch = store.read_after(head, 1_000).await.expect("read the feed");
        match batch.last() {
            Some(last) => head = last.position,
            None => return head,
        }
    }
}
