//! The single-event append (one event, no idempotency record): one conditional `PutItem`,
//! with the conflicts, the retries and the lost answers a transaction would have had.

use orders_domain::OrderId;
use uuid::Uuid;

use crate::aws::SDK_MAX_ATTEMPTS;
use crate::dynamodb::error::{CONTENDED_RETRY_AFTER, THROTTLED_RETRY_AFTER};
use crate::dynamodb::events::MAX_TRANSACTION_ATTEMPTS;
use crate::{AppendError, AppendRequest, EventStore, StoredEvent};

use super::fixtures::*;
use super::inject::*;

fn unkeyed(order: OrderId, expected_version: u64, event: StoredEvent) -> AppendRequest {
    AppendRequest {
        order_id: order,
        expected_version,
        events: vec![event],
        idempotency: None,
        now: wall_clock(),
    }
}

/// A store whose `PutItem`s are counted (never faulted), with an order at version 1.
async fn counted_store_with_an_order() -> (Fault, crate::dynamodb::DynamoStore, OrderId) {
    let fault = Fault::new("PutItem", throttling(), 0);
    let (store, _clean) = faulty_store(&fault).await;
    let order = OrderId::from_uuid(Uuid::now_v7());
    store
        .append(unkeyed(order, 0, created(order)))
        .await
        .unwrap();
    (fault, store, order)
}

/// A create and a confirm without a key are one `PutItem` each; with a key, the transaction
/// (the record must be written with the event) makes none.
#[tokio::test]
async fn one_event_without_a_key_is_one_put_item() {
    let (fault, store, order) = counted_store_with_an_order().await;
    assert_eq!(fault.attempts(), 1, "the create");
    store
        .append(unkeyed(order, 1, confirmed(order, 2)))
        .await
        .unwrap();
    assert_eq!(fault.attempts(), 2, "the confirm");
    let keyed = AppendRequest {
        idempotency: Some(record(order, 3)),
        ..unkeyed(order, 2, confirmed(order, 3))
    };
    store.append(keyed).await.unwrap();
    assert_eq!(fault.attempts(), 2, "a keyed append is a transaction");
    let versions: Vec<u64> = store
        .load(order, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, [1, 2, 3]);
}

/// A lost race names the order's current version, not the version of the event that holds the
/// slot, and writes nothing.
#[tokio::test]
async fn a_failed_condition_is_a_conflict_at_the_current_version() {
    let (fault, store, order) = counted_store_with_an_order().await;
    for version in 2..=3 {
        store
            .append(unkeyed(order, version - 1, confirmed(order, version)))
            .await
            .unwrap();
    }
    let before = store.load(order, None).await.unwrap();
    let attempts = fault.attempts();
    let result = store.append(unkeyed(order, 1, confirmed(order, 2))).await;
    assert!(
        matches!(result, Err(AppendError::Conflict { current_version: 3 })),
        "expected a conflict at 3, got {result:?}"
    );
    assert_eq!(
        fault.attempts(),
        attempts + 1,
        "a failed condition is not retried"
    );
    assert_eq!(
        store.load(order, None).await.unwrap(),
        before,
        "nothing written"
    );
}

/// A put whose answer was lost (it landed, then a timeout or a 5xx made the SDK send it again)
/// fails its own condition on the retry: the slot holds this very event, so the append
/// succeeded, as a retried transaction does with its `ClientRequestToken`.
#[tokio::test]
async fn a_put_that_landed_before_its_answer_was_lost_succeeded() {
    let fault = Fault::answer_lost("PutItem", 1);
    let (store, clean) = faulty_store(&fault).await;
    let order = OrderId::from_uuid(Uuid::now_v7());
    let event = created(order);
    store
        .append(unkeyed(order, 0, event.clone()))
        .await
        .expect("the lost answer's write is recognised as this append's");
    assert_eq!(
        fault.attempts(),
        2,
        "the landed attempt, then the SDK's retry"
    );
    assert_eq!(clean.load(order, None).await.unwrap(), [event]);

    // Another event in that slot is still a conflict.
    let result = store.append(unkeyed(order, 0, created(order))).await;
    assert!(
        matches!(result, Err(AppendError::Conflict { current_version: 1 })),
        "expected a conflict at 1, got {result:?}"
    );
}

#[tokio::test]
async fn a_throttled_put_is_retried_by_the_sdk_then_unavailable() {
    for (name, body) in [
        ("ThrottlingException", throttling()),
        (
            "ProvisionedThroughputExceededException",
            throughput_exceeded(),
        ),
    ] {
        let fault = Fault::new("PutItem", body.clone(), 1);
        let (store, clean) = faulty_store(&fault).await;
        let order = OrderId::from_uuid(Uuid::now_v7());
        let request = unkeyed(order, 0, created(order));
        store
            .append(request.clone())
            .await
            .unwrap_or_else(|err| panic!("{name} once: {err}"));
        assert_eq!(fault.attempts(), 2, "{name} once");
        assert_eq!(clean.load(order, None).await.unwrap(), request.events);

        let fault = Fault::always("PutItem", body);
        let (store, clean) = faulty_store(&fault).await;
        let request = unkeyed(order, 0, created(order));
        append_unavailable(
            store.append(request.clone()).await,
            THROTTLED_RETRY_AFTER,
            name,
        );
        assert_eq!(fault.attempts(), SDK_MAX_ATTEMPTS as usize, "{name}");
        assert_nothing_written(&clean, &request).await;
    }
}

/// A put that meets an ongoing transaction on its item (a keyed append of the same order) is
/// tried again, as a transaction cancelled by a conflict is, then unavailable.
#[tokio::test]
async fn a_put_that_meets_a_transaction_is_retried_then_unavailable() {
    let fault = Fault::new("PutItem", transaction_conflict(), 2);
    let (store, clean) = faulty_store(&fault).await;
    let order = OrderId::from_uuid(Uuid::now_v7());
    let request = unkeyed(order, 0, created(order));
    store
        .append(request.clone())
        .await
        .expect("the third attempt");
    assert_eq!(fault.attempts(), 3);
    assert_eq!(clean.load(order, None).await.unwrap(), request.events);

    let fault = Fault::always("PutItem", transaction_conflict());
    let (store, clean) = faulty_store(&fault).await;
    let request = unkeyed(order, 0, created(order));
    append_unavailable(
        store.append(request.clone()).await,
        CONTENDED_RETRY_AFTER,
        "persistent transaction conflicts",
    );
    assert_eq!(fault.attempts(), MAX_TRANSACTION_ATTEMPTS as usize);
    assert_nothing_written(&clean, &request).await;
}

/// The transaction's behaviour the single put matches: its retried call carries the same
/// `ClientRequestToken`, so a transaction that landed before its answer was lost succeeded.
#[tokio::test]
async fn a_transaction_that_landed_before_its_answer_was_lost_succeeded() {
    let fault = Fault::answer_lost("TransactWriteItems", 1);
    let (store, clean) = faulty_store(&fault).await;
    let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
    store
        .append(request.clone())
        .await
        .expect("the token makes the retry idempotent");
    assert_eq!(
        fault.attempts(),
        2,
        "the landed attempt, then the SDK's retry"
    );
    assert_eq!(
        clean.load(request.order_id, None).await.unwrap(),
        request.events
    );
}
