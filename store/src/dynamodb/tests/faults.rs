//! The adapter under injected faults: retried, then unavailable, never half-written.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use orders_domain::{CustomerId, OrderId, OrderStatus};
use uuid::Uuid;

use crate::aws::SDK_MAX_ATTEMPTS;
use crate::dynamodb::events::MAX_TRANSACTION_ATTEMPTS;
use crate::dynamodb::{DynamoStore, DynamoTables, create_tables};
use crate::{
    AppendError, AppendRequest, EventStore, IdempotencyKey, IdempotencyStore, ListFilter,
    ListQuery, ReadModelStore,
};

use super::fixtures::*;
use super::inject::*;
use super::*;

#[tokio::test]
async fn transaction_conflicts_are_retried_until_the_append_goes_through() {
    let fault = Fault::new(
        "TransactWriteItems",
        cancelled(&["None", "TransactionConflict"]),
        2,
    );
    let (store, clean) = faulty_store(&fault).await;
    let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
    store
        .append(request.clone())
        .await
        .expect("the third attempt commits");
    assert_eq!(
        fault.attempts(),
        3,
        "two cancelled attempts, then the real one"
    );
    assert_eq!(
        clean.load(request.order_id, None).await.unwrap(),
        request.events
    );
    let key = &request.idempotency.as_ref().unwrap().key;
    assert_eq!(
        IdempotencyStore::get(&clean, key, wall_clock())
            .await
            .unwrap(),
        request.idempotency
    );
}

#[tokio::test]
async fn persistent_transaction_conflicts_are_unavailable_and_write_nothing() {
    let fault = Fault::always(
        "TransactWriteItems",
        cancelled(&["TransactionConflict", "None"]),
    );
    let (store, clean) = faulty_store(&fault).await;
    let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
    append_unavailable(
        store.append(request.clone()).await,
        crate::dynamodb::error::CONTENDED_RETRY_AFTER,
        "persistent transaction conflicts",
    );
    assert_eq!(
        fault.attempts(),
        MAX_TRANSACTION_ATTEMPTS as usize,
        "a bounded number of attempts"
    );
    assert_nothing_written(&clean, &request).await;
}

#[tokio::test]
async fn throttled_transaction_items_are_retried_then_unavailable() {
    for code in [
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    ] {
        let fault = Fault::always("TransactWriteItems", cancelled(&[code, "None"]));
        let (store, clean) = faulty_store(&fault).await;
        let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
        append_unavailable(
            store.append(request.clone()).await,
            crate::dynamodb::error::THROTTLED_RETRY_AFTER,
            code,
        );
        assert_eq!(
            fault.attempts(),
            MAX_TRANSACTION_ATTEMPTS as usize,
            "{code}"
        );
        assert_nothing_written(&clean, &request).await;
    }
}

#[tokio::test]
async fn throttling_exceptions_are_retried_by_the_sdk_then_unavailable() {
    for (name, body) in [
        ("ThrottlingException", throttling()),
        (
            "ProvisionedThroughputExceededException",
            throughput_exceeded(),
        ),
    ] {
        // Once: the SDK's retry absorbs it.
        let fault = Fault::new("TransactWriteItems", body.clone(), 1);
        let (store, clean) = faulty_store(&fault).await;
        let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
        store
            .append(request.clone())
            .await
            .unwrap_or_else(|err| panic!("{name} once: {err}"));
        assert_eq!(fault.attempts(), 2, "{name} once");
        assert_eq!(
            clean.load(request.order_id, None).await.unwrap(),
            request.events
        );

        // Always: bounded retries, then 503 material.
        let fault = Fault::always("TransactWriteItems", body);
        let (store, clean) = faulty_store(&fault).await;
        let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
        append_unavailable(
            store.append(request.clone()).await,
            crate::dynamodb::error::THROTTLED_RETRY_AFTER,
            name,
        );
        assert_eq!(
            fault.attempts(),
            SDK_MAX_ATTEMPTS as usize,
            "{name}: the SDK's attempts"
        );
        assert_nothing_written(&clean, &request).await;
    }
}

#[tokio::test]
async fn throttled_reads_and_read_model_writes_are_unavailable() {
    let throttled = crate::dynamodb::error::THROTTLED_RETRY_AFTER;
    let order = OrderId::from_uuid(Uuid::now_v7());

    let fault = Fault::always("Query", throughput_exceeded());
    let (store, clean) = faulty_store(&fault).await;
    clean.append(create_request(order)).await.unwrap();
    assert_unavailable(store.load(order, None).await, throttled, "load");
    assert_eq!(fault.attempts(), SDK_MAX_ATTEMPTS as usize);

    let fault = Fault::always("GetItem", throttling());
    let (store, _clean) = faulty_store(&fault).await;
    let key = IdempotencyKey::parse("any").unwrap();
    assert_unavailable(
        IdempotencyStore::get(&store, &key, wall_clock()).await,
        throttled,
        "idempotency get",
    );
    assert_unavailable(
        ReadModelStore::get(&store, order).await,
        throttled,
        "read model get",
    );

    let fault = Fault::always("PutItem", throughput_exceeded());
    let (store, clean) = faulty_store(&fault).await;
    let view = crate::OrderView::from_state(
        order,
        crate::fold(Default::default(), &[created(order)]).unwrap(),
    )
    .unwrap();
    assert_unavailable(store.put(&view, None).await, throttled, "read model put");
    assert_unavailable(
        store
            .put_many(&[crate::ConditionalPut {
                view: view.clone(),
                expected_version: None,
            }])
            .await,
        throttled,
        "read model put_many",
    );
    assert_eq!(ReadModelStore::get(&clean, order).await.unwrap(), None);
    assert_eq!(
        clean.put(&view, None).await.unwrap(),
        crate::PutOutcome::Written
    );
}

fn created_view(order: OrderId) -> crate::OrderView {
    crate::contract::view(order, "c-batch", OrderStatus::Pending, 1_000, 1_000, 1)
}

fn new_views(count: usize) -> Vec<crate::ConditionalPut> {
    (0..count)
        .map(|_| crate::ConditionalPut {
            view: created_view(OrderId::from_uuid(Uuid::now_v7())),
            expected_version: None,
        })
        .collect()
}

async fn stored_views(store: &DynamoStore, puts: &[crate::ConditionalPut]) -> usize {
    let ids: Vec<OrderId> = puts.iter().map(|p| p.view.order_id).collect();
    store.get_many(&ids).await.unwrap().len()
}

/// `put_many` writes each view with its own conditional `PutItem`; a throttled one is retried
/// by the SDK, and each ends written.
#[tokio::test]
async fn read_model_batches_retry_throttled_writes() {
    let fault = Fault::new("PutItem", throttling(), 2);
    let (store, clean) = faulty_store(&fault).await;
    let puts = new_views(60);
    let outcomes = store.put_many(&puts).await.unwrap();
    assert_eq!(outcomes, vec![crate::PutOutcome::Written; 60]);
    assert_eq!(
        fault.attempts(),
        62,
        "60 writes, two of them throttled once"
    );
    assert_eq!(stored_views(&clean, &puts).await, 60);
}

/// Writes that stay throttled give up after a bounded number of attempts, as an append does;
/// none of them is written.
#[tokio::test]
async fn read_model_batches_that_stay_throttled_are_unavailable() {
    let fault = Fault::always("PutItem", throughput_exceeded());
    let (store, clean) = faulty_store(&fault).await;
    let puts = new_views(3);
    assert_unavailable(
        store.put_many(&puts).await,
        crate::dynamodb::error::THROTTLED_RETRY_AFTER,
        "persistent read-model throttling",
    );
    let attempts = fault.attempts();
    assert!(
        (SDK_MAX_ATTEMPTS as usize..=3 * SDK_MAX_ATTEMPTS as usize).contains(&attempts),
        "the SDK's attempts for each write at most: {attempts}"
    );
    assert_eq!(stored_views(&clean, &puts).await, 0);
}

/// Against DynamoDB Local itself: a batch whose conditions fail for some views reports those as
/// version mismatches and writes the others; the same order twice in one batch is written in
/// input order. No write is a transaction (2 write units per item, where a `PutItem` costs 1).
#[tokio::test]
async fn read_model_batches_judge_each_view_and_keep_an_orders_writes_in_order() {
    let no_transactions = Fault::always("TransactWriteItems", cancelled(&["None"]));
    let (store, _clean) = faulty_store(&no_transactions).await;
    let puts = new_views(30);
    // Every third view already exists, so its "no view yet" condition fails.
    for put in puts.iter().step_by(3) {
        assert_eq!(
            store.put(&put.view, None).await.unwrap(),
            crate::PutOutcome::Written
        );
    }
    let outcomes = store.put_many(&puts).await.unwrap();
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = if i % 3 == 0 {
            crate::PutOutcome::VersionMismatch
        } else {
            crate::PutOutcome::Written
        };
        assert_eq!(*outcome, expected, "write {i}");
    }
    assert_eq!(stored_views(&store, &puts).await, 30);

    let order = OrderId::from_uuid(Uuid::now_v7());
    let v1 = created_view(order);
    let mut v2 = v1.clone();
    v2.version = 2;
    let mut v3 = v1.clone();
    v3.version = 3;
    let mut writes = new_views(3);
    for (at, (view, expected_version)) in [
        (0, (v1, None)),
        (2, (v2, Some(1))),
        (4, (v3.clone(), Some(2))),
    ] {
        writes.insert(
            at,
            crate::ConditionalPut {
                view,
                expected_version,
            },
        );
    }
    assert_eq!(
        store.put_many(&writes).await.unwrap(),
        [crate::PutOutcome::Written; 6]
    );
    assert_eq!(ReadModelStore::get(&store, order).await.unwrap(), Some(v3));
    assert_eq!(no_transactions.attempts(), 0, "no TransactWriteItems");
}

/// A failed condition is definitive: reported at once, without retrying, even when other items
/// of the same transaction were cancelled for a conflict or throttling.
#[tokio::test]
async fn mixed_cancellations_report_the_failed_condition_without_retrying() {
    // The event's condition failed, the record collided with a transaction: a conflict.
    let fault = Fault::always(
        "TransactWriteItems",
        cancelled(&["ConditionalCheckFailed", "TransactionConflict"]),
    );
    let (store, clean) = faulty_store(&fault).await;
    let order = OrderId::from_uuid(Uuid::now_v7());
    clean.append(create_request(order)).await.unwrap();
    let request = AppendRequest {
        order_id: order,
        expected_version: 1,
        events: vec![confirmed(order, 2)],
        idempotency: Some(record(order, 2)),
        now: wall_clock(),
    };
    let result = store.append(request.clone()).await;
    assert!(
        matches!(result, Err(AppendError::Conflict { current_version: 1 })),
        "expected a conflict at the stored version, got {result:?}"
    );
    assert_eq!(fault.attempts(), 1, "a failed condition is not retried");
    assert_nothing_written(&clean, &request).await;

    // The idempotency record's condition failed, an event was throttled: the key is in use.
    let fault = Fault::always(
        "TransactWriteItems",
        cancelled(&["ThrottlingError", "ConditionalCheckFailed"]),
    );
    let (store, clean) = faulty_store(&fault).await;
    let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
    let result = store.append(request.clone()).await;
    assert!(
        matches!(result, Err(AppendError::IdempotencyKeyInUse)),
        "expected IdempotencyKeyInUse, got {result:?}"
    );
    assert_eq!(fault.attempts(), 1, "a failed condition is not retried");
    assert_nothing_written(&clean, &request).await;
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable_within_seconds() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::from_conf(config(&format!("http://127.0.0.1:{port}")).build());
    let store = DynamoStore::new(client.clone(), DynamoTables::default());
    let order = OrderId::from_uuid(Uuid::now_v7());
    let unreachable = crate::dynamodb::error::UNREACHABLE_RETRY_AFTER;

    let started = Instant::now();
    append_unavailable(
        store.append(create_request(order)).await,
        unreachable,
        "append",
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the append failed in {:?}",
        started.elapsed()
    );
    assert_unavailable(store.load(order, None).await, unreachable, "load");
    assert_unavailable(ReadModelStore::get(&store, order).await, unreachable, "get");
    assert_unavailable(
        store
            .list(&ListQuery {
                filter: ListFilter::Customer(CustomerId::parse("c").unwrap()),
                limit: 10,
                after: None,
            })
            .await,
        unreachable,
        "list",
    );
    assert_unavailable(
        create_tables(&client, &DynamoTables::default()).await,
        unreachable,
        "create_tables",
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
