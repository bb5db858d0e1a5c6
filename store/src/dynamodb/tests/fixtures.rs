//! What the DynamoDB-only tests build: events, records, requests, and their assertions.

use std::time::Duration;

use orders_domain::{
    Currency, CustomerId, EventData, Items, LineItem, OrderEvent, OrderId, Quantity, Sku,
    Timestamp, UnitPrice,
};
use uuid::Uuid;

use crate::dynamodb::DynamoStore;
use crate::{
    AppendError, AppendRequest, EventMetadata, EventStore, IdempotencyKey, IdempotencyRecord,
    IdempotencyStore, StoreError, StoredEvent,
};

pub(super) fn metadata() -> EventMetadata {
    EventMetadata {
        correlation_id: Uuid::now_v7().to_string(),
        causation_id: Uuid::now_v7().to_string(),
        idempotency_key: Some("k-1".into()),
        source: "dynamodb-test".into(),
    }
}

pub(super) fn created(order: OrderId) -> StoredEvent {
    let items = Items::parse(vec![LineItem {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: Quantity::parse(3).unwrap(),
        unit_price: UnitPrice::parse(250).unwrap(),
    }])
    .unwrap();
    StoredEvent::new(
        order,
        1,
        Uuid::now_v7(),
        &OrderEvent {
            occurred_at: Timestamp::from_millis(1_767_225_600_123),
            data: EventData::OrderCreated {
                customer_id: CustomerId::parse("c-dynamo").unwrap(),
                currency: Currency::parse("EUR").unwrap(),
                total: items.total().unwrap(),
                items,
            },
        },
        metadata(),
    )
}

pub(super) fn confirmed(order: OrderId, version: u64) -> StoredEvent {
    StoredEvent::new(
        order,
        version,
        Uuid::now_v7(),
        &OrderEvent {
            occurred_at: Timestamp::from_millis(1_767_225_700_000),
            data: EventData::OrderConfirmed,
        },
        metadata(),
    )
}

pub(super) fn wall_clock() -> Timestamp {
    crate::Clock::now(&crate::SystemClock)
}

pub(super) fn record(order: OrderId, version: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        key: IdempotencyKey::parse(&format!("key-{}", Uuid::now_v7())).unwrap(),
        fingerprint: "f".repeat(64),
        order_id: order,
        version,
        status: 201,
        expires_at: Timestamp::from_millis(wall_clock().millis() + 86_400_000),
    }
}

/// A create with an idempotency record: the request every fault test makes.
pub(super) fn create_request(order: OrderId) -> AppendRequest {
    AppendRequest {
        order_id: order,
        expected_version: 0,
        events: vec![created(order)],
        idempotency: Some(record(order, 1)),
        now: wall_clock(),
    }
}

/// Neither the events nor the idempotency record of `request` were written.
pub(super) async fn assert_nothing_written(clean: &DynamoStore, request: &AppendRequest) {
    assert_eq!(
        clean.load(request.order_id, None).await.unwrap().len() as u64,
        request.expected_version,
        "no event of the failed append is stored"
    );
    if let Some(record) = &request.idempotency {
        assert_eq!(
            IdempotencyStore::get(clean, &record.key, wall_clock())
                .await
                .unwrap(),
            None,
            "the failed append stored no idempotency record"
        );
    }
}

pub(super) fn assert_unavailable<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    retry_after: Duration,
    what: &str,
) {
    match result {
        Err(StoreError::Unavailable {
            retry_after: after, ..
        }) => assert_eq!(after, retry_after, "{what}: Retry-After"),
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

pub(super) fn append_unavailable(
    result: Result<(), AppendError>,
    retry_after: Duration,
    what: &str,
) {
    match result {
        Err(AppendError::Store(err)) => assert_unavailable::<()>(Err(err), retry_after, what),
        other => panic!("{what}: expected Store(Unavailable), got {other:?}"),
    }
}
