//! The `projector` handler on DynamoDB Local, fed hand-built stream batches in the canonical
//! AWS shape: duplicates, disorder, gaps, unknown event types and undecodable records. After
//! each, every view equals the fold of its events in the event store, and the batch response
//! names the right sequence number.

use std::sync::Arc;

use orders_domain::EventData;
use orders_projections::Projector;
use orders_projections::stream::project;
use orders_store::dynamodb::{self, DynamoStore};
use orders_tests::streams::*;
use orders_tests::{create_unique_tables, dynamodb_endpoint};
use serde_json::json;

async fn setup() -> (DynamoStore, Projector) {
    let endpoint = dynamodb_endpoint();
    let (_, tables) = create_unique_tables(&endpoint, "stream-projector").await;
    let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables);
    let shared = Arc::new(store.clone());
    (store, Projector::new(shared.clone(), shared))
}

#[tokio::test]
async fn the_same_batch_delivered_twice_changes_nothing_the_second_time() {
    let (store, projector) = setup().await;
    let (a, b) = (lifecycle(new_order_id()), lifecycle(new_order_id()));
    append(&store, &a).await;
    append(&store, &b).await;
    let delivery = batch(&[&a[0], &b[0], &a[1], &b[1], &a[2], &b[2]], 1000);

    for _ in 0..2 {
        let response = project(&projector, &delivery).await.unwrap();
        assert_eq!(failed_sequence(&response), None);
        for order in [&a, &b] {
            assert_converged(&store, &store, order[0].order_id).await;
        }
    }

    // A first event redelivered alone, after its view moved on: the projector writes it
    // without reading the view (a v1 usually has none), loses the "no view yet" condition,
    // and must then read the view and find a duplicate rather than fail or go back.
    let before = store_view(&store, a[0].order_id).await;
    let response = project(&projector, &batch(&[&a[0]], 1100)).await.unwrap();
    assert_eq!(failed_sequence(&response), None);
    assert_eq!(store_view(&store, a[0].order_id).await, before);
    assert_eq!(before["version"], 3);
}

#[tokio::test]
async fn records_out_of_order_within_and_across_batches_converge() {
    let (store, projector) = setup().await;
    let (a, b) = (lifecycle(new_order_id()), lifecycle(new_order_id()));
    append(&store, &a).await;
    append(&store, &b).await;

    // Within a batch: each order's events reversed.
    let response = project(
        &projector,
        &batch(&[&a[2], &a[1], &b[1], &a[0], &b[0]], 2000),
    )
    .await
    .unwrap();
    assert_eq!(failed_sequence(&response), None);
    assert_converged(&store, &store, a[0].order_id).await;

    // Across batches: b's v3 came before, then its v1 and v2 arrive late.
    let response = project(&projector, &batch(&[&b[2]], 2100)).await.unwrap();
    assert_eq!(failed_sequence(&response), None);
    let response = project(&projector, &batch(&[&b[0], &b[1]], 2200))
        .await
        .unwrap();
    assert_eq!(failed_sequence(&response), None);
    assert_converged(&store, &store, b[0].order_id).await;
}

#[tokio::test]
async fn a_gap_heals_from_the_event_store() {
    let (store, projector) = setup().await;
    let events = lifecycle(new_order_id());
    let id = events[0].order_id;
    append(&store, &events).await;

    let response = project(&projector, &batch(&[&events[0]], 3000))
        .await
        .unwrap();
    assert_eq!(failed_sequence(&response), None);
    // v3 arrives; v2 is never delivered.
    let response = project(&projector, &batch(&[&events[2]], 3002))
        .await
        .unwrap();
    assert_eq!(failed_sequence(&response), None);
    assert_converged(&store, &store, id).await;
    assert_eq!(folded_view(&store, id).await.unwrap().version, 3);
}

#[tokio::test]
async fn an_unknown_event_type_advances_the_version() {
    let (store, projector) = setup().await;
    let id = new_order_id();
    let events = vec![
        event(id, 1, created_by("gift-customer")),
        raw_event(id, 2, "OrderGiftWrapped", 1, json!({"paper": "gold"})),
        event(id, 3, EventData::OrderConfirmed),
    ];
    append(&store, &events).await;

    let response = project(&projector, &batch(&[&events[0], &events[1]], 4000))
        .await
        .unwrap();
    assert_eq!(failed_sequence(&response), None);
    let view = store_view(&store, id).await;
    assert_eq!(view["version"], 2, "the unknown event moved the version");
    assert_eq!(view["status"], "PENDING");

    // The next event is no gap.
    let response = project(&projector, &batch(&[&events[2]], 4002))
        .await
        .unwrap();
    assert_eq!(failed_sequence(&response), None);
    assert_converged(&store, &store, id).await;
    assert_eq!(store_view(&store, id).await["status"], "CONFIRMED");
}

#[tokio::test]
async fn an_undecodable_record_mid_batch_is_reported_and_the_records_before_it_commit() {
    let (store, projector) = setup().await;
    let (a, b, c) = (new_order_id(), new_order_id(), new_order_id());
    let a_events = lifecycle(a);
    let b_created = event(b, 1, created_by("b"));
    let c_created = event(c, 1, created_by("c"));
    append(&store, &a_events[..1]).await;
    append(&store, std::slice::from_ref(&b_created)).await;
    append(&store, std::slice::from_ref(&c_created)).await;

    // Record 5001 is not an event item at all.
    let mut delivery = batch(&[&a_events[0], &b_created, &c_created], 5000);
    delivery.records[1].change.new_image = serde_json::from_value(json!({
        "orderId": {"S": b.to_string()},
        "version": {"N": "1"},
        "eventType": {"N": "42"}
    }))
    .unwrap();
    let response = project(&projector, &delivery).await.unwrap();
    assert_eq!(failed_sequence(&response), Some(5001));
    assert_converged(&store, &store, a).await;
    assert_eq!(
        orders_store::ReadModelStore::get(&store, c).await.unwrap(),
        None,
        "the records after it are left for the retry"
    );

    // A decodable envelope whose payload is not an OrderCreated fails at its own record too.
    let d = new_order_id();
    let bad_payload = raw_event(d, 1, "OrderCreated", 1, json!({"customerId": 7}));
    append(&store, std::slice::from_ref(&bad_payload)).await;
    let response = project(&projector, &batch(&[&c_created, &bad_payload], 5100))
        .await
        .unwrap();
    assert_eq!(failed_sequence(&response), Some(5101));
    assert_converged(&store, &store, c).await;

    // Lambda retries from 5001 with the record fixed (as after a redrive): all converge.
    let response = project(&projector, &batch(&[&b_created, &c_created], 5001))
        .await
        .unwrap();
    assert_eq!(failed_sequence(&response), None);
    for id in [a, b, c] {
        assert_converged(&store, &store, id).await;
    }
}

async fn store_view(store: &DynamoStore, id: orders_domain::OrderId) -> serde_json::Value {
    let view = orders_store::ReadModelStore::get(store, id).await.unwrap();
    serde_json::to_value(view.expect("a view")).unwrap()
}
