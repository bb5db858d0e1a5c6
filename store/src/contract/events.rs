//! Event store: versions, conflicts and racing writers.

use std::collections::HashSet;
use std::time::Duration;

use super::Backend;
use super::fixtures::*;
use crate::{AppendError, EventStore, IdempotencyStore, StoreError};

/// Versions are 1, 2, 3 ... per order; `load` returns exactly what was appended, in version
/// order, and honours `up_to`.
pub async fn append_assigns_contiguous_versions<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let order = new_order_id();
    let first = vec![created(order, 1, "c-contiguous", at(1_000))];
    store
        .append(request(order, 0, first.clone(), None))
        .await
        .expect("first append");
    let more = vec![confirmed(order, 2, at(2_000)), shipped(order, 3, at(3_000))];
    store
        .append(request(order, 1, more.clone(), None))
        .await
        .expect("second append");

    let loaded = store.load(order, None).await.expect("load");
    let expected: Vec<_> = first.into_iter().chain(more).collect();
    assert_eq!(
        loaded, expected,
        "load returns the appended events in order"
    );
    assert_eq!(versions(&loaded), vec![1, 2, 3]);

    let prefix = store.load(order, Some(2)).await.expect("load up to 2");
    assert_eq!(prefix, expected[..2], "up_to is inclusive");
    assert!(store.load(order, Some(0)).await.unwrap().is_empty());
    assert!(
        store.load(new_order_id(), None).await.unwrap().is_empty(),
        "an unknown order has no events"
    );
}

/// A request whose events skip, repeat or belong to another order is a caller bug: refused,
/// and nothing is written.
pub async fn append_rejects_events_that_do_not_follow_the_expected_version<B: Backend>(
    backend: &B,
) {
    let store = backend.fresh().await;
    let order = new_order_id();
    let bad_requests = [
        (
            "a gap",
            request(
                order,
                0,
                vec![
                    created(order, 1, "c-gap", at(1)),
                    confirmed(order, 3, at(2)),
                ],
                None,
            ),
        ),
        (
            "not starting after the expected version",
            request(order, 0, vec![created(order, 2, "c-gap", at(1))], None),
        ),
        (
            "a repeated version",
            request(
                order,
                0,
                vec![
                    created(order, 1, "c-gap", at(1)),
                    confirmed(order, 1, at(2)),
                ],
                None,
            ),
        ),
        (
            "another order's event",
            request(
                order,
                0,
                vec![created(new_order_id(), 1, "c-gap", at(1))],
                None,
            ),
        ),
    ];
    for (what, bad) in bad_requests {
        let result = store.append(bad).await;
        assert!(
            matches!(result, Err(AppendError::Store(StoreError::Internal(_)))),
            "{what}: expected an internal error, got {result:?}"
        );
    }
    assert!(
        store.load(order, None).await.unwrap().is_empty(),
        "a refused request writes nothing"
    );
}

/// A stale expected version is a conflict that names the actual current version, and writes
/// neither the events nor the idempotency record. (A future version is a caller bug a store
/// need not detect, with a record or without: see `AppendRequest::expected_version`.)
pub async fn conflict_carries_the_current_version_and_writes_nothing<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let order = new_order_id();
    append_created_and_confirmed(&store, order, "c-conflict").await;

    for stale in [0, 1] {
        let key = new_key();
        let events = vec![cancelled(order, stale + 1, at(3))];
        let result = store
            .append(request(
                order,
                stale,
                events,
                Some(idempotency_record(&key, order, stale + 1, live_expiry())),
            ))
            .await;
        assert!(
            matches!(result, Err(AppendError::Conflict { current_version: 2 })),
            "expected version {stale}: expected Conflict at 2, got {result:?}"
        );
        assert_eq!(
            IdempotencyStore::get(&store, &key, wall_clock())
                .await
                .unwrap(),
            None,
            "a conflicting append stores no idempotency record"
        );
    }
    assert_eq!(
        versions(&store.load(order, None).await.unwrap()),
        vec![1, 2]
    );
}

/// Many writers racing on the same expected version: exactly one wins; every loser learns the
/// winner's version; the stream holds the winner's event only.
pub async fn concurrent_appends_at_one_version_have_exactly_one_winner<B: Backend>(backend: &B) {
    const WRITERS: usize = 20;
    let store = backend.fresh().await;
    let order = new_order_id();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        tasks.spawn(async move {
            let event = created(order, 1, "c-race", at(1));
            let event_id = event.event_id;
            (
                event_id,
                store.append(request(order, 0, vec![event], None)).await,
            )
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("writer task") {
            (event_id, Ok(())) => winners.push(event_id),
            (_, Err(AppendError::Conflict { current_version })) => {
                assert_eq!(current_version, 1, "a loser sees the winner's version")
            }
            (_, Err(other)) => panic!("unexpected append error: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    let stored = store.load(order, None).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].event_id, winners[0],
        "the stored event is the winner's"
    );
}

/// Writers that re-decide after each conflict (as the command handler does) all get their
/// events in, each at exactly one version: contiguous, no duplicates, nothing lost.
pub async fn concurrent_writers_keep_the_stream_contiguous<B: Backend>(backend: &B) {
    const WRITERS: usize = 20;
    const EVENTS_EACH: usize = 5;
    let store = backend.fresh().await;
    let order = new_order_id();
    store
        .append(request(
            order,
            0,
            vec![created(order, 1, "c-contend", at(1))],
            None,
        ))
        .await
        .unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            let mut known = 1;
            while mine.len() < EVENTS_EACH {
                let event = confirmed(order, known + 1, at(2));
                let event_id = event.event_id;
                match store.append(request(order, known, vec![event], None)).await {
                    Ok(()) => {
                        mine.push(event_id);
                        known += 1;
                    }
                    Err(AppendError::Conflict { current_version }) => {
                        assert!(
                            current_version > known,
                            "a conflict reports a newer version ({current_version} > {known})"
                        );
                        known = current_version;
                    }
                    Err(AppendError::Store(StoreError::Unavailable { retry_after, .. })) => {
                        tokio::time::sleep(retry_after.min(Duration::from_millis(50))).await;
                    }
                    Err(other) => panic!("unexpected append error: {other:?}"),
                }
            }
            mine
        });
    }
    let mut appended = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        for event_id in joined.expect("writer task") {
            assert!(appended.insert(event_id), "an event id reported twice");
        }
    }

    let stored = store.load(order, None).await.unwrap();
    let total = 1 + WRITERS * EVENTS_EACH;
    assert_eq!(
        versions(&stored),
        (1..=total as u64).collect::<Vec<_>>(),
        "versions are contiguous from 1"
    );
    let stored_ids: HashSet<_> = stored.iter().skip(1).map(|e| e.event_id).collect();
    assert_eq!(
        stored_ids.len(),
        WRITERS * EVENTS_EACH,
        "no duplicate event ids"
    );
    assert_eq!(
        stored_ids, appended,
        "exactly the acknowledged events are stored"
    );
}
