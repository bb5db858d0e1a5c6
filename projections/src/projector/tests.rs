use std::sync::Arc;

use orders_domain::{DecodeError, EventData, OrderStatus};
use serde_json::json;

use super::*;
use crate::test_support::*;

fn projector(store: &orders_store::sqlite::SqliteStore) -> Projector {
    Projector::new(Arc::new(store.clone()), Arc::new(store.clone()))
}

fn applied(outcome: &BatchOutcome) -> Vec<Applied> {
    outcome
        .results
        .iter()
        .map(|r| *r.as_ref().expect("every event applied"))
        .collect()
}

#[tokio::test]
async fn the_next_version_is_applied_and_a_duplicate_changes_nothing() {
    let (_dir, store) = store();
    let projector = projector(&store);
    let order = new_order_id();
    let events = lifecycle(order);
    append(&store, &events).await;

    assert_eq!(projector.apply(&events[0]).await.unwrap(), Applied::Applied);
    let first = stored_view(&store, order).await.unwrap();
    assert_eq!(
        (first.version, first.order.status),
        (1, OrderStatus::Pending)
    );

    assert_eq!(
        projector.apply(&events[0]).await.unwrap(),
        Applied::Duplicate
    );
    assert_eq!(stored_view(&store, order).await.unwrap(), first);

    assert_eq!(projector.apply(&events[1]).await.unwrap(), Applied::Applied);
    assert_eq!(projector.apply(&events[2]).await.unwrap(), Applied::Applied);
    assert_eq!(
        projector.apply(&events[1]).await.unwrap(),
        Applied::Duplicate
    );
    assert_converged(&store, order).await;
    assert_eq!(
        stored_view(&store, order).await.unwrap().order.status,
        OrderStatus::Shipped
    );
}

#[tokio::test]
async fn the_same_batch_delivered_twice_is_applied_once() {
    let (_dir, store) = store();
    let projector = projector(&store);
    let (a, b) = (new_order_id(), new_order_id());
    let (events_a, events_b) = (lifecycle(a), lifecycle(b));
    append(&store, &events_a).await;
    append(&store, &events_b).await;
    let batch: Vec<_> = events_a.iter().chain(&events_b).cloned().collect();

    let first = projector.apply_batch(&batch).await;
    assert_eq!(applied(&first), vec![Applied::Applied; 6]);
    let second = projector.apply_batch(&batch).await;
    assert_eq!(applied(&second), vec![Applied::Duplicate; 6]);
    assert_converged(&store, a).await;
    assert_converged(&store, b).await;
}

#[tokio::test]
async fn events_out_of_order_within_a_batch_are_applied_in_version_order() {
    let (_dir, store) = store();
    let projector = projector(&store);
    let (a, b) = (new_order_id(), new_order_id());
    let (ea, eb) = (lifecycle(a), lifecycle(b));
    append(&store, &ea).await;
    append(&store, &eb).await;
    let batch = vec![
        ea[2].clone(),
        eb[1].clone(),
        ea[0].clone(),
        eb[0].clone(),
        ea[1].clone(),
    ];

    let outcome = projector.apply_batch(&batch).await;
    // Sorted per order, every event meets its predecessor: no gap to heal.
    assert_eq!(applied(&outcome), vec![Applied::Applied; 5]);
    assert!(outcome.is_success());
    assert_converged(&store, a).await;
    assert_eq!(stored_view(&store, b).await.unwrap().version, 2);
}

#[tokio::test]
async fn events_out_of_order_across_batches_converge_to_the_fold() {
    let (_dir, store) = store();
    let projector = projector(&store);
    let order = new_order_id();
    let events = lifecycle(order);
    append(&store, &events).await;

    let outcome = projector.apply_batch(&events[1..2]).await;
    assert_eq!(applied(&outcome), vec![Applied::Healed { version: 3 }]);
    let outcome = projector
        .apply_batch(&[events[2].clone(), events[0].clone()])
        .await;
    assert_eq!(applied(&outcome), vec![Applied::Duplicate; 2]);
    assert_converged(&store, order).await;
}

#[tokio::test]
async fn a_gap_is_healed_from_the_event_store() {
    let (_dir, store) = store();
    let projector = projector(&store);
    let order = new_order_id();
    let events = lifecycle(order);
    append(&store, &events).await;

    projector.apply(&events[0]).await.unwrap();
    // Version 2 is never delivered.
    assert_eq!(
        projector.apply(&events[2]).await.unwrap(),
        Applied::Healed { version: 3 }
    );
    assert_converged(&store, order).await;
}

#[tokio::test]
async fn an_unknown_event_type_advances_the_version() {
    let (_dir, store) = store();
    let projector = projector(&store);
    let order = new_order_id();
    let events = vec![
        event(order, 1, created()),
        raw_event(order, 2, "OrderGiftWrapped", 1, json!({"paper": "gold"})),
        event(order, 3, cancelled()),
    ];
    append(&store, &events).await;

    let outcome = projector.apply_batch(&events).await;
    assert_eq!(applied(&outcome), vec![Applied::Applied; 3]);
    assert_converged(&store, order).await;
    let view = stored_view(&store, order).await.unwrap();
    assert_eq!(
        (view.version, view.order.status),
        (3, OrderStatus::Cancelled)
    );
}

#[tokio::test]
async fn an_unknown_first_event_leaves_no_view_until_the_order_exists() {
    let (_dir, store) = store();
    let projector = projector(&store);
    let order = new_order_id();
    let events = vec![
        raw_event(order, 1, "OrderDrafted", 1, json!({})),
        event(order, 2, created()),
    ];
    append(&store, &events).await;

    assert_eq!(projector.apply(&events[0]).await.unwrap(), Applied::NoView);
    assert_eq!(stored_view(&store, order).await, None);
    assert_eq!(
        projector.apply(&events[1]).await.unwrap(),
        Applied::Healed { version: 2 }
    );
    assert_converged(&store, order).await;
}

#[tokio::test]
async fn an_undecodable_event_is_an_error_and_stops_its_order() {
    let (_dir, store) = store();
    let projector = projector(&store);
    let (order, other) = (new_order_id(), new_order_id());
    let events = vec![
        event(order, 1, created()),
        raw_event(order, 2, "OrderCancelled", 1, json!({"reason": 42})),
        event(order, 3, EventData::OrderConfirmed),
    ];
    append(&store, &events).await;
    let others = lifecycle(other);
    append(&store, &others).await;

    projector.apply(&events[0]).await.unwrap();
    let error = projector.apply(&events[1]).await.unwrap_err();
    assert!(
        matches!(
            error,
            ProjectionError::Fold(FoldError::Decode {
                version: 2,
                source: DecodeError::InvalidPayload { .. },
                ..
            })
        ),
        "{error}"
    );
    assert_eq!(stored_view(&store, order).await.unwrap().version, 1);

    // Healing past it meets it in the history, and fails the same way.
    let error = projector.apply(&events[2]).await.unwrap_err();
    assert!(
        matches!(
            error,
            ProjectionError::Fold(FoldError::Decode { version: 2, .. })
        ),
        "{error}"
    );

    // In a batch: the order stops at the failed event, other orders carry on.
    let batch = vec![
        others[0].clone(),
        events[1].clone(),
        events[2].clone(),
        others[1].clone(),
    ];
    let outcome = projector.apply_batch(&batch).await;
    assert_eq!(outcome.first_failure(), Some(1));
    assert!(matches!(
        outcome.results[1],
        Err(ProjectionError::Fold(FoldError::Decode { version: 2, .. }))
    ));
    assert!(matches!(
        outcome.results[2],
        Err(ProjectionError::NotAttempted { version: 3, .. })
    ));
    assert!(outcome.results[0].is_ok() && outcome.results[3].is_ok());
    assert_eq!(stored_view(&store, order).await.unwrap().version, 1);
    assert_eq!(stored_view(&store, other).await.unwrap().version, 2);
}

#[tokio::test]
async fn a_future_schema_is_an_error_even_as_a_duplicate() {
    let (_dir, store) = store();
    let projector = projector(&store);
    let order = new_order_id();
    let events = lifecycle(order);
    append(&store, &events).await;
    projector.apply_batch(&events).await;

    let from_the_future = StoredEvent {
        schema_version: 99,
        ..events[1].clone()
    };
    let error = projector.apply(&from_the_future).await.unwrap_err();
    assert!(
        matches!(
            error,
            ProjectionError::Fold(FoldError::Decode {
                source: DecodeError::FutureSchema { .. },
                ..
            })
        ),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_replays_converge_to_the_fold() {
    let (_dir, store) = store();
    let mut all = Vec::new();
    let mut orders = Vec::new();
    for i in 0..30 {
        let order = new_order_id();
        let mut events = lifecycle(order);
        if i % 3 == 0 {
            events[2] = event(order, 3, cancelled());
        }
        append(&store, &events).await;
        orders.push(order);
        all.extend(events);
    }
    let mut reversed = all.clone();
    reversed.reverse();
    // Interleaved by order, versions ascending: events of one order in different batches.
    let mut by_version = all.clone();
    by_version.sort_by_key(|e| e.version);

    let replays = [all, reversed, by_version];
    let runs = replays.iter().enumerate().flat_map(|(i, events)| {
        let store = &store;
        events.chunks(7 + i).map(move |chunk| async move {
            let outcome = projector(store).apply_batch(chunk).await;
            if let Some((_, error)) = outcome.failures().next() {
                panic!("{error}");
            }
        })
    });
    futures::future::join_all(runs).await;

    for order in orders {
        assert_converged(&store, order).await;
    }
}
