//! Items and pagination on DynamoDB Local: the item layout, loads past one page, limits.

use aws_sdk_dynamodb::types::AttributeValue;
use orders_domain::{CustomerId, OrderId};
use serde_json::json;
use uuid::Uuid;

use crate::dynamodb::DynamoStore;
use crate::dynamodb::events::MAX_TRANSACTION_ACTIONS;
use crate::{
    AppendError, AppendRequest, EventStore, ListFilter, ListQuery, PageKey, ReadModelStore,
    StoreError,
};

use super::fixtures::*;
use super::*;

#[tokio::test]
async fn items_have_the_attribute_layout_of_the_design() {
    let client = local_client();
    let tables = fresh_tables(&client).await;
    let store = DynamoStore::new(client.clone(), tables.clone());
    let order = OrderId::from_uuid(Uuid::now_v7());
    let request = create_request(order);
    store.append(request.clone()).await.unwrap();
    let event = &request.events[0];

    let item = client
        .get_item()
        .table_name(&tables.events)
        .key("orderId", AttributeValue::S(order.to_string()))
        .key("version", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the event item");
    let mut names: Vec<_> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "data",
            "eventId",
            "eventType",
            "metadata",
            "occurredAt",
            "orderId",
            "schemaVersion",
            "version"
        ]
    );
    assert_eq!(
        item["eventId"],
        AttributeValue::S(event.event_id.to_string())
    );
    assert_eq!(item["eventType"], AttributeValue::S("OrderCreated".into()));
    assert_eq!(
        item["schemaVersion"],
        AttributeValue::N(event.schema_version.to_string())
    );
    assert_eq!(
        item["occurredAt"],
        AttributeValue::S("2026-01-01T00:00:00.123Z".into())
    );
    let data = item["data"].as_m().expect("data is a map");
    assert_eq!(data["customerId"], AttributeValue::S("c-dynamo".into()));
    assert_eq!(data["total"], AttributeValue::N("750".into()));
    let line = data["items"].as_l().expect("items is a list")[0]
        .as_m()
        .unwrap();
    assert_eq!(line["quantity"], AttributeValue::N("3".into()));
    let metadata = item["metadata"].as_m().expect("metadata is a map");
    assert_eq!(metadata["idempotencyKey"], AttributeValue::S("k-1".into()));
    assert_eq!(
        metadata["source"],
        AttributeValue::S("dynamodb-test".into())
    );

    let record = request.idempotency.as_ref().unwrap();
    let item = client
        .get_item()
        .table_name(&tables.idempotency)
        .key(
            "idempotencyKey",
            AttributeValue::S(record.key.as_str().into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the idempotency item");
    let expires_ms = record.expires_at.millis();
    assert_eq!(
        item["expiresAt"],
        AttributeValue::N(((expires_ms + 999) / 1000).to_string())
    );
    assert_eq!(
        item["expiresAtMillis"],
        AttributeValue::N(expires_ms.to_string())
    );
    assert_eq!(item["orderId"], AttributeValue::S(order.to_string()));
    assert_eq!(item["status"], AttributeValue::N("201".into()));
    assert_eq!(
        item["fingerprint"],
        AttributeValue::S(record.fingerprint.clone())
    );

    let view = crate::OrderView::from_state(
        order,
        crate::fold(Default::default(), &request.events).unwrap(),
    )
    .unwrap();
    store.put(&view, None).await.unwrap();
    let item = client
        .get_item()
        .table_name(&tables.orders)
        .key("orderId", AttributeValue::S(order.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the view item");
    assert_eq!(item["status"], AttributeValue::S("PENDING".into()));
    assert_eq!(item["version"], AttributeValue::N("1".into()));
    assert_eq!(item["total"], AttributeValue::N("750".into()));
    assert_eq!(item["currency"], AttributeValue::S("EUR".into()));
    assert_eq!(
        item["createdAt"],
        AttributeValue::S("2026-01-01T00:00:00.123Z".into())
    );
    assert!(item["items"].as_l().is_ok_and(|items| items.len() == 1));
    assert!(
        !item.contains_key("cancelReason"),
        "absent when there is none"
    );
}

/// More than one 1 MB query page of events loads whole and in order.
#[tokio::test]
async fn a_stream_larger_than_one_query_page_loads_whole() {
    const EVENTS: u64 = 24;
    let client = local_client();
    let tables = fresh_tables(&client).await;
    let store = DynamoStore::new(client.clone(), tables.clone());
    let order = OrderId::from_uuid(Uuid::now_v7());
    let padding = "x".repeat(100_000);
    let mut events = Vec::new();
    for version in 1..=EVENTS {
        let mut event = confirmed(order, version);
        // An event type this build does not know may carry any payload.
        event.event_type = "OrderAnnotated".into();
        event.data = json!({ "note": padding, "n": version });
        events.push(event);
    }
    for (i, chunk) in events.chunks(8).enumerate() {
        store
            .append(AppendRequest {
                order_id: order,
                expected_version: (i * 8) as u64,
                events: chunk.to_vec(),
                idempotency: None,
                now: wall_clock(),
            })
            .await
            .unwrap();
    }
    let first_page = client
        .query()
        .table_name(&tables.events)
        .key_condition_expression("orderId = :id")
        .expression_attribute_values(":id", AttributeValue::S(order.to_string()))
        .send()
        .await
        .unwrap();
    assert!(
        first_page.last_evaluated_key().is_some() && (first_page.count() as u64) < EVENTS,
        "the events span more than one query page ({} items in the first)",
        first_page.count()
    );
    let loaded = store.load(order, None).await.unwrap();
    assert_eq!(loaded, events, "every event, in version order");
    let prefix = store.load(order, Some(EVENTS - 1)).await.unwrap();
    assert_eq!(prefix, events[..EVENTS as usize - 1]);
}

#[tokio::test]
async fn oversized_appends_and_malformed_page_keys_are_internal_errors() {
    let client = local_client();
    let store = DynamoStore::new(client.clone(), fresh_tables(&client).await);
    let order = OrderId::from_uuid(Uuid::now_v7());
    let events: Vec<_> = (1..=MAX_TRANSACTION_ACTIONS as u64)
        .map(|version| confirmed(order, version))
        .collect();
    let result = store
        .append(AppendRequest {
            order_id: order,
            expected_version: 0,
            events,
            idempotency: Some(record(order, 100)),
            now: wall_clock(),
        })
        .await;
    assert!(
        matches!(result, Err(AppendError::Store(StoreError::Internal(_)))),
        "101 actions do not fit in one transaction: {result:?}"
    );
    assert!(store.load(order, None).await.unwrap().is_empty());

    for after in [
        json!("not a key"),
        json!({"orderId": {"S": "x"}}),
        json!({"orderId": {"S": "x"}, "customerId": {"S": "someone-else"}, "createdAt": {"S": "2026"}}),
    ] {
        let result = store
            .list(&ListQuery {
                filter: ListFilter::Customer(CustomerId::parse("c-1").unwrap()),
                limit: 5,
                after: Some(PageKey(after.clone())),
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::Internal(_))),
            "{after}: {result:?}"
        );
    }
}

/// The client others build with [`super::client`] (the standard config chain, with the
/// emulator fallbacks for region and credentials) works against an endpoint override.
#[tokio::test]
async fn the_standard_client_reaches_an_endpoint_override() {
    let client = crate::dynamodb::client(Some(&endpoint())).await;
    let store = DynamoStore::new(client.clone(), fresh_tables(&client).await);
    let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
    store.append(request.clone()).await.unwrap();
    assert_eq!(
        store.load(request.order_id, None).await.unwrap(),
        request.events
    );
}
