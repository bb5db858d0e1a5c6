//! The behaviour every storage adapter must have, as one suite of cases generic over the ports.
//!
//! Each adapter runs the very same cases (SQLite in its unit tests, DynamoDB against DynamoDB
//! Local), so the embedded default cannot drift from production. An adapter's tests implement
//! [`Backend`] (and [`FeedBackend`] if it has the embedded change feed) and expand
//! [`store_contract_tests!`](crate::store_contract_tests) (and
//! [`feed_contract_tests!`](crate::feed_contract_tests)) into one `#[tokio::test]` per case:
//!
//! ```text
//! orders_store::store_contract_tests!(MyBackend::new());
//! ```
//!
//! Cases use fresh random order ids, so most could share storage; the listing cases need
//! [`Backend::fresh`] to return empty storage, because they assert the exact listing.
//! Failures panic with a message, as tests do.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orders_domain::{
    CancelReason, Currency, CustomerId, EventData, Items, LineItem, Order, OrderEvent, OrderId,
    OrderStatus, Quantity, Sku, Timestamp, UnitPrice,
};
use uuid::Uuid;

use crate::{
    AppendError, AppendRequest, ChangeFeed, CheckpointStore, ConditionalPut, DeleteOutcome,
    EventMetadata, EventScan, EventStore, IdempotencyKey, IdempotencyRecord, IdempotencyStore,
    ListFilter, ListQuery, OrderView, PutOutcome, ReadModelScan, ReadModelStore, StoreError,
    StoredEvent,
};

/// Makes stores of one adapter for the cases.
pub trait Backend: Send + Sync {
    type Store: EventStore
        + IdempotencyStore
        + ReadModelStore
        + EventScan
        + ReadModelScan
        + Clone
        + 'static;

    /// A store on fresh, empty storage (a new file, new tables).
    fn fresh(&self) -> impl Future<Output = Self::Store> + Send;
}

/// Makes stores of an adapter that has the embedded change feed and checkpoints.
pub trait FeedBackend: Send + Sync {
    type Store: EventStore + ChangeFeed + CheckpointStore + Clone + 'static;

    /// A store on fresh, empty storage.
    fn fresh(&self) -> impl Future<Output = Self::Store> + Send;

    /// Drops `store` and opens a new one on the same storage, as a restarted process would.
    fn reopen(&self, store: Self::Store) -> impl Future<Output = Self::Store> + Send;
}

/// One `#[tokio::test]` per event-store, idempotency and read-model case, each on
/// `$backend` (an expression evaluated once per test) implementing [`Backend`].
#[macro_export]
macro_rules! store_contract_tests {
    ($backend:expr) => {
        $crate::store_contract_tests!(@cases $backend;
            append_assigns_contiguous_versions,
            append_rejects_events_that_do_not_follow_the_expected_version,
            conflict_carries_the_current_version_and_writes_nothing,
            concurrent_appends_at_one_version_have_exactly_one_winner,
            concurrent_writers_keep_the_stream_contiguous,
            idempotency_record_commits_with_the_events,
            idempotency_key_in_use_writes_nothing,
            expired_idempotency_records_are_absent_and_reusable,
            scoped_idempotency_keys_are_records_of_their_own,
            no_op_append_stores_only_the_idempotency_record,
            read_model_put_is_conditional_on_the_version,
            read_model_batches_judge_each_view_on_its_own,
            listing_by_customer_pages_newest_first_without_gaps,
            listing_by_status_pages_by_last_update,
            listing_of_nothing_is_one_empty_page,
            scan_parts_hold_every_order_whole_and_in_order,
            read_model_scan_and_orphan_delete,
        );
    };
    (@cases $backend:expr; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend = $backend;
                $crate::contract::$case(&backend).await;
            }
        )+
    };
}

/// One `#[tokio::test]` per change-feed and checkpoint case, on a [`FeedBackend`].
#[macro_export]
macro_rules! feed_contract_tests {
    ($backend:expr) => {
        $crate::feed_contract_tests!(@cases $backend;
            change_feed_follows_append_order,
            watch_appends_reports_the_latest_position,
            checkpoints_persist_across_reopen,
        );
    };
    (@cases $backend:expr; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend = $backend;
                $crate::contract::$case(&backend).await;
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------------
// Event store
// ---------------------------------------------------------------------------------------------

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

/// A stale (or future) expected version is a conflict that names the actual current version,
/// and writes neither the events nor the idempotency record.
pub async fn conflict_carries_the_current_version_and_writes_nothing<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let order = new_order_id();
    store
        .append(request(
            order,
            0,
            vec![
                created(order, 1, "c-conflict", at(1)),
                confirmed(order, 2, at(2)),
            ],
            None,
        ))
        .await
        .unwrap();

    for stale in [0, 1, 5] {
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

// ---------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------

/// The record is written by the append itself and reads back equal while it lives.
pub async fn idempotency_record_commits_with_the_events<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let order = new_order_id();
    let key = new_key();
    let record = idempotency_record(&key, order, 1, live_expiry());
    assert_eq!(
        IdempotencyStore::get(&store, &key, wall_clock())
            .await
            .unwrap(),
        None
    );
    store
        .append(request(
            order,
            0,
            vec![created(order, 1, "c-idem", at(1))],
            Some(record.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(
        IdempotencyStore::get(&store, &key, wall_clock())
            .await
            .unwrap(),
        Some(record)
    );
    assert_eq!(store.load(order, None).await.unwrap().len(), 1);
}

/// One client key in two scopes and unscoped is three records: scoped record keys (up to 324
/// bytes, with a U+001F separator) are stored and found like any other.
pub async fn scoped_idempotency_keys_are_records_of_their_own<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let unique = Uuid::now_v7().simple().to_string();
    let key =
        IdempotencyKey::parse(&format!("{unique}{}", "k".repeat(255 - unique.len()))).unwrap();
    let keys = [
        key.clone(),
        key.within(&format!("sub:{}", "a".repeat(64))),
        key.within(&format!("sub:{}", "b".repeat(64))),
    ];
    let mut records = Vec::new();
    for record_key in &keys {
        let order = new_order_id();
        let record = idempotency_record(record_key, order, 1, live_expiry());
        store
            .append(request(
                order,
                0,
                vec![created(order, 1, "c-scoped", at(1))],
                Some(record.clone()),
            ))
            .await
            .unwrap();
        records.push(record);
    }
    for record in records {
        assert_eq!(
            IdempotencyStore::get(&store, &record.key, wall_clock())
                .await
                .unwrap(),
            Some(record)
        );
    }
}

/// A live key held by one request makes another request with the same key fail as a whole:
/// none of its events are written and the first record is untouched.
pub async fn idempotency_key_in_use_writes_nothing<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let key = new_key();
    let first_order = new_order_id();
    let first = idempotency_record(&key, first_order, 1, live_expiry());
    store
        .append(request(
            first_order,
            0,
            vec![created(first_order, 1, "c-key", at(1))],
            Some(first.clone()),
        ))
        .await
        .unwrap();

    let second_order = new_order_id();
    let mut second = idempotency_record(&key, second_order, 1, live_expiry());
    second.fingerprint = "another request".into();
    let result = store
        .append(request(
            second_order,
            0,
            vec![created(second_order, 1, "c-key", at(2))],
            Some(second),
        ))
        .await;
    assert!(
        matches!(result, Err(AppendError::IdempotencyKeyInUse)),
        "expected IdempotencyKeyInUse, got {result:?}"
    );
    assert!(
        store.load(second_order, None).await.unwrap().is_empty(),
        "no event of the refused request is written"
    );
    assert_eq!(
        IdempotencyStore::get(&store, &key, wall_clock())
            .await
            .unwrap(),
        Some(first)
    );
}

/// A record is absent from `expires_at` on (TTL deletion lags, so the check is in code), and
/// once expired by the wall clock its key can be used again.
pub async fn expired_idempotency_records_are_absent_and_reusable<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let key = new_key();
    let order = new_order_id();
    let expires_at = live_expiry();
    let record = idempotency_record(&key, order, 1, expires_at);
    store
        .append(request(
            order,
            0,
            vec![created(order, 1, "c-expiry", at(1))],
            Some(record.clone()),
        ))
        .await
        .unwrap();
    let get = |now: i64| IdempotencyStore::get(&store, &key, Timestamp::from_millis(now));
    let expiry = expires_at.millis();
    assert_eq!(
        get(expiry - 1).await.unwrap(),
        Some(record),
        "live before expiry"
    );
    assert_eq!(get(expiry).await.unwrap(), None, "absent at expiry");
    assert_eq!(get(expiry + 1).await.unwrap(), None, "absent after expiry");

    // A key whose record expired (by the store's clock) is free again.
    let stale_key = new_key();
    let stale_order = new_order_id();
    let expired = Timestamp::from_millis(wall_clock().millis() - 60_000);
    store
        .append(request(
            stale_order,
            0,
            vec![created(stale_order, 1, "c-expiry", at(2))],
            Some(idempotency_record(&stale_key, stale_order, 1, expired)),
        ))
        .await
        .unwrap();
    assert_eq!(
        IdempotencyStore::get(&store, &stale_key, wall_clock())
            .await
            .unwrap(),
        None,
        "an expired record is absent"
    );
    let next_order = new_order_id();
    let fresh = idempotency_record(&stale_key, next_order, 1, live_expiry());
    store
        .append(request(
            next_order,
            0,
            vec![created(next_order, 1, "c-expiry", at(3))],
            Some(fresh.clone()),
        ))
        .await
        .expect("an expired key can be reused");
    assert_eq!(
        IdempotencyStore::get(&store, &stale_key, wall_clock())
            .await
            .unwrap(),
        Some(fresh)
    );
}

/// A command that decides no events (e.g. confirming a confirmed order) still records its
/// idempotency key, and appends nothing.
pub async fn no_op_append_stores_only_the_idempotency_record<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let order = new_order_id();
    store
        .append(request(
            order,
            0,
            vec![
                created(order, 1, "c-noop", at(1)),
                confirmed(order, 2, at(2)),
            ],
            None,
        ))
        .await
        .unwrap();
    let key = new_key();
    let record = idempotency_record(&key, order, 2, live_expiry());
    store
        .append(request(order, 2, Vec::new(), Some(record.clone())))
        .await
        .expect("a no-op append");
    assert_eq!(
        IdempotencyStore::get(&store, &key, wall_clock())
            .await
            .unwrap(),
        Some(record)
    );
    assert_eq!(
        versions(&store.load(order, None).await.unwrap()),
        vec![1, 2]
    );
}

// ---------------------------------------------------------------------------------------------
// Read model
// ---------------------------------------------------------------------------------------------

/// `None` inserts only if absent; `Some(w)` writes only over version `w`.
pub async fn read_model_put_is_conditional_on_the_version<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let order = new_order_id();
    assert_eq!(ReadModelStore::get(&store, order).await.unwrap(), None);

    let v1 = view(order, "c-put", OrderStatus::Pending, 1_000, 1_000, 1);
    assert_eq!(store.put(&v1, None).await.unwrap(), PutOutcome::Written);
    assert_eq!(
        store.put(&v1, None).await.unwrap(),
        PutOutcome::VersionMismatch,
        "an insert over an existing view is refused"
    );
    assert_eq!(ReadModelStore::get(&store, order).await.unwrap(), Some(v1));

    let v2 = view(order, "c-put", OrderStatus::Confirmed, 1_000, 2_000, 2);
    for wrong in [0, 2, 7] {
        assert_eq!(
            store.put(&v2, Some(wrong)).await.unwrap(),
            PutOutcome::VersionMismatch,
            "expected {wrong} while the view is at 1"
        );
    }
    assert_eq!(store.put(&v2, Some(1)).await.unwrap(), PutOutcome::Written);
    assert_eq!(
        ReadModelStore::get(&store, order).await.unwrap(),
        Some(v2.clone())
    );

    let mut cancelled_view = view(order, "c-put", OrderStatus::Cancelled, 1_000, 3_000, 3);
    cancelled_view.order.cancel_reason = Some(CancelReason::parse("changed my mind").unwrap());
    assert_eq!(
        store.put(&cancelled_view, Some(1)).await.unwrap(),
        PutOutcome::VersionMismatch,
        "a stale writer cannot overwrite a newer view"
    );
    assert_eq!(ReadModelStore::get(&store, order).await.unwrap(), Some(v2));
    assert_eq!(
        store.put(&cancelled_view, Some(2)).await.unwrap(),
        PutOutcome::Written
    );
    assert_eq!(
        ReadModelStore::get(&store, order).await.unwrap(),
        Some(cancelled_view)
    );
}

/// The batch forms answer like their single forms: `get_many` leaves absent orders out, and
/// each write of `put_many` is judged on its own condition, so one stale write does not stop
/// the others.
pub async fn read_model_batches_judge_each_view_on_its_own<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let (existing, fresh, stale, absent) = (
        new_order_id(),
        new_order_id(),
        new_order_id(),
        new_order_id(),
    );
    let existing_v1 = view(existing, "c-batch", OrderStatus::Pending, 1_000, 1_000, 1);
    let stale_v2 = view(stale, "c-batch", OrderStatus::Confirmed, 1_000, 2_000, 2);
    assert_eq!(
        store.put(&existing_v1, None).await.unwrap(),
        PutOutcome::Written
    );
    assert_eq!(
        store.put(&stale_v2, None).await.unwrap(),
        PutOutcome::Written
    );

    let found = store.get_many(&[existing, stale, absent]).await.unwrap();
    assert_eq!(found.len(), 2, "the absent order is left out");
    assert_eq!(found.get(&existing), Some(&existing_v1));
    assert_eq!(found.get(&stale), Some(&stale_v2));

    let existing_v2 = view(existing, "c-batch", OrderStatus::Confirmed, 1_000, 2_000, 2);
    let fresh_v1 = view(fresh, "c-batch", OrderStatus::Pending, 1_500, 1_500, 1);
    let stale_v3 = view(stale, "c-batch", OrderStatus::Shipped, 1_000, 3_000, 3);
    let outcomes = store
        .put_many(&[
            ConditionalPut {
                view: existing_v2.clone(),
                expected_version: Some(1),
            },
            ConditionalPut {
                view: stale_v3,
                expected_version: Some(1),
            },
            ConditionalPut {
                view: fresh_v1.clone(),
                expected_version: None,
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            PutOutcome::Written,
            PutOutcome::VersionMismatch,
            PutOutcome::Written
        ]
    );
    let after = store.get_many(&[existing, fresh, stale]).await.unwrap();
    assert_eq!(after.get(&existing), Some(&existing_v2));
    assert_eq!(after.get(&fresh), Some(&fresh_v1));
    assert_eq!(
        after.get(&stale),
        Some(&stale_v2),
        "the stale write changed nothing"
    );
}

/// Newest `createdAt` first, ties broken by order id; pages chain without duplicates or gaps,
/// and the last page has no `next`. Other customers' orders never appear.
pub async fn listing_by_customer_pages_newest_first_without_gaps<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let customer = "c-listing";
    let mut mine = Vec::new();
    for i in 0..25i64 {
        // Each pair shares a createdAt, so the order id must break the tie.
        let created_ms = 1_700_000_000_000 + (i / 2) * 1_000;
        let v = view(
            new_order_id(),
            customer,
            OrderStatus::Pending,
            created_ms,
            created_ms + 5,
            1,
        );
        assert_eq!(store.put(&v, None).await.unwrap(), PutOutcome::Written);
        mine.push(v);
    }
    for i in 0..5 {
        let other = view(
            new_order_id(),
            "c-someone-else",
            OrderStatus::Pending,
            1_700_000_000_000 + i * 1_000,
            1_700_000_000_000,
            1,
        );
        store.put(&other, None).await.unwrap();
    }
    mine.sort_by_key(|v| std::cmp::Reverse((v.order.created_at, v.order_id)));

    let filter = ListFilter::Customer(CustomerId::parse(customer).unwrap());
    let pages = page_through(&store, filter.clone(), 7).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![7, 7, 7, 4],
        "full pages, then the rest"
    );
    let listed: Vec<_> = pages.into_iter().flatten().collect();
    assert_eq!(listed, mine, "newest first, every order once");

    let all = page_through(&store, filter, 100).await;
    assert_eq!(all.len(), 1, "one page when the limit covers everything");
    assert_eq!(all[0], mine);
}

/// Newest `updatedAt` first within one status; a view that changes status moves listings.
pub async fn listing_by_status_pages_by_last_update<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let mut confirmed_views = Vec::new();
    for i in 0..10i64 {
        let order = new_order_id();
        let status = if i % 2 == 0 {
            OrderStatus::Confirmed
        } else {
            OrderStatus::Pending
        };
        // updatedAt order differs from createdAt order, so the wrong sort key would show.
        let v = view(
            order,
            &format!("c-{i}"),
            status,
            1_000 + i,
            100_000 - i * 10,
            2,
        );
        store.put(&v, None).await.unwrap();
        if status == OrderStatus::Confirmed {
            confirmed_views.push(v);
        }
    }
    let by_update = |views: &mut Vec<OrderView>| {
        views.sort_by_key(|v| std::cmp::Reverse((v.order.updated_at, v.order_id)))
    };
    by_update(&mut confirmed_views);
    let filter = ListFilter::Status(OrderStatus::Confirmed);
    let pages = page_through(&store, filter.clone(), 2).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    assert_eq!(pages.concat(), confirmed_views);

    // Ship the oldest-updated confirmed order: it leaves CONFIRMED and tops SHIPPED.
    let moved = confirmed_views.pop().unwrap();
    let mut shipped_view = moved.clone();
    shipped_view.version = 3;
    shipped_view.order.status = OrderStatus::Shipped;
    shipped_view.order.updated_at = Timestamp::from_millis(200_000);
    assert_eq!(
        store.put(&shipped_view, Some(2)).await.unwrap(),
        PutOutcome::Written
    );
    assert_eq!(
        page_through(&store, filter, 100).await.concat(),
        confirmed_views
    );
    assert_eq!(
        page_through(&store, ListFilter::Status(OrderStatus::Shipped), 100)
            .await
            .concat(),
        vec![shipped_view]
    );
}

pub async fn listing_of_nothing_is_one_empty_page<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let page = store
        .list(&ListQuery {
            filter: ListFilter::Customer(CustomerId::parse("c-nobody").unwrap()),
            limit: 20,
            after: None,
        })
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.next, None);
}

// ---------------------------------------------------------------------------------------------
// Change feed and checkpoints
// ---------------------------------------------------------------------------------------------

/// Every event once, in append order across orders, by strictly increasing position; `limit`
/// and `after` page through it.
pub async fn change_feed_follows_append_order<B: FeedBackend>(backend: &B) {
    let store = backend.fresh().await;
    let start = feed_head(&store).await;
    let (a, b) = (new_order_id(), new_order_id());
    let appended = [
        vec![created(a, 1, "c-feed", at(1))],
        vec![created(b, 1, "c-feed", at(2)), confirmed(b, 2, at(3))],
        vec![confirmed(a, 2, at(4))],
    ];
    let expected_versions = [(a, 0), (b, 0), (a, 1)];
    for (events, (order, expected)) in appended.iter().zip(expected_versions) {
        store
            .append(request(order, expected, events.clone(), None))
            .await
            .unwrap();
    }
    let expected: Vec<StoredEvent> = appended.concat();

    let feed = store.read_after(start, 100).await.unwrap();
    assert_eq!(
        feed.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        expected,
        "the feed holds every event in append order"
    );
    assert!(
        feed.windows(2).all(|w| w[0].position < w[1].position),
        "positions increase strictly"
    );
    assert!(feed[0].position > start);

    let first_two = store.read_after(start, 2).await.unwrap();
    assert_eq!(first_two, feed[..2], "limit caps the entries");
    let rest = store.read_after(first_two[1].position, 100).await.unwrap();
    assert_eq!(rest, feed[2..], "after resumes strictly after a position");
    assert!(
        store
            .read_after(feed[3].position, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.read_after(start, 0).await.unwrap().is_empty());
}

/// The watch channel carries the position of the last append, and wakes a waiting consumer.
pub async fn watch_appends_reports_the_latest_position<B: FeedBackend>(backend: &B) {
    let store = backend.fresh().await;
    let mut watch = store.watch_appends();
    let order = new_order_id();
    let waiter = tokio::spawn(async move {
        watch.changed().await.expect("the store is alive");
        *watch.borrow_and_update()
    });
    store
        .append(request(
            order,
            0,
            vec![
                created(order, 1, "c-watch", at(1)),
                confirmed(order, 2, at(2)),
            ],
            None,
        ))
        .await
        .unwrap();
    let woken_at = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the watcher wakes")
        .unwrap();
    let head = feed_head(&store).await;
    assert_eq!(
        woken_at, head,
        "the watch carries the last appended position"
    );
    assert_eq!(*store.watch_appends().borrow(), head);
}

/// Positions are per consumer, start at 0, are overwritten by `save`, and survive a restart
/// along with the events.
pub async fn checkpoints_persist_across_reopen<B: FeedBackend>(backend: &B) {
    let store = backend.fresh().await;
    assert_eq!(store.load_checkpoint("projector").await.unwrap(), 0);
    store.save_checkpoint("projector", 5).await.unwrap();
    store.save_checkpoint("projector", 7).await.unwrap();
    store.save_checkpoint("publisher", 3).await.unwrap();
    assert_eq!(store.load_checkpoint("projector").await.unwrap(), 7);
    assert_eq!(store.load_checkpoint("publisher").await.unwrap(), 3);
    let order = new_order_id();
    store
        .append(request(
            order,
            0,
            vec![created(order, 1, "c-reopen", at(1))],
            None,
        ))
        .await
        .unwrap();
    let head = feed_head(&store).await;

    let store = backend.reopen(store).await;
    assert_eq!(store.load_checkpoint("projector").await.unwrap(), 7);
    assert_eq!(store.load_checkpoint("publisher").await.unwrap(), 3);
    assert_eq!(store.load_checkpoint("replay").await.unwrap(), 0);
    assert_eq!(store.load(order, None).await.unwrap().len(), 1);
    assert_eq!(feed_head(&store).await, head, "the feed survives too");
    assert_eq!(
        *store.watch_appends().borrow(),
        head,
        "a reopened store's watch starts at the feed's head"
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A rebuild's scan: the parts of a plan hold every event exactly once, each order wholly in
/// one part with its events together and in version order, page after page.
pub async fn scan_parts_hold_every_order_whole_and_in_order<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let mut appended = Vec::new();
    for n in 0..12u64 {
        let order = new_order_id();
        let events: Vec<_> = [
            created(order, 1, "c-scan", at(1_000)),
            confirmed(order, 2, at(2_000)),
            shipped(order, 3, at(3_000)),
        ]
        .into_iter()
        .take(1 + (n % 3) as usize)
        .collect();
        store
            .append(request(order, 0, events.clone(), None))
            .await
            .expect("append");
        appended.extend(events);
    }
    let parts = store.plan_scan(3).await.expect("plan");
    assert!((1..=3).contains(&parts.len()), "{parts:?}");
    let mut seen: Vec<StoredEvent> = Vec::new();
    let mut part_of = std::collections::HashMap::new();
    for part in &parts {
        let mut after = None;
        let mut in_part: Vec<StoredEvent> = Vec::new();
        loop {
            let page = store.scan_events(part, after, 2).await.expect("scan");
            assert!(page.items.len() <= 2, "a page holds at most the limit");
            in_part.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // Together and in order: each order's events are one run 1, 2, 3...
        let mut previous: Option<&StoredEvent> = None;
        for event in &in_part {
            let continues = previous.is_some_and(|p| p.order_id == event.order_id);
            let expected = if continues {
                previous.map_or(1, |p| p.version + 1)
            } else {
                1
            };
            assert_eq!(event.version, expected, "order {}", event.order_id);
            assert!(
                continues || part_of.insert(event.order_id, part.index).is_none(),
                "order {} starts twice",
                event.order_id
            );
            previous = Some(event);
        }
        seen.extend(in_part);
    }
    let key = |e: &StoredEvent| (e.order_id, e.version);
    let mut seen_keys: Vec<_> = seen.iter().map(key).collect();
    let mut appended_keys: Vec<_> = appended.iter().map(key).collect();
    seen_keys.sort();
    appended_keys.sort();
    assert_eq!(seen_keys, appended_keys, "every event exactly once");
    let first = appended[0].clone();
    assert!(seen.contains(&first), "events come back whole");
    let estimate = store.estimated_events().await.expect("estimate");
    assert!(estimate.is_none_or(|n| n <= appended.len() as u64));

    let ids: Vec<OrderId> = part_of.keys().copied().collect();
    let unknown = new_order_id();
    let with_events = store
        .orders_with_events(&[ids[0], unknown, ids[1], ids[0]])
        .await
        .expect("orders with events");
    assert_eq!(with_events, HashSet::from([ids[0], ids[1]]));
}

/// The read model scanned in the same parts, and the orphan's conditional delete.
pub async fn read_model_scan_and_orphan_delete<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let views: Vec<OrderView> = (0..7)
        .map(|i| {
            view(
                new_order_id(),
                "c-vscan",
                OrderStatus::Pending,
                1_000,
                1_000 + i,
                1,
            )
        })
        .collect();
    for v in &views {
        assert_eq!(store.put(v, None).await.unwrap(), PutOutcome::Written);
    }
    let mut seen = Vec::new();
    for part in store.plan_scan(2).await.expect("plan") {
        let mut after = None;
        loop {
            let page = store.scan_views(&part, after, 3).await.expect("scan views");
            seen.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    let mut seen_ids: Vec<_> = seen.iter().map(|v| v.order_id).collect();
    let mut ids: Vec<_> = views.iter().map(|v| v.order_id).collect();
    seen_ids.sort();
    ids.sort();
    assert_eq!(seen_ids, ids, "every view exactly once");
    assert!(seen.contains(&views[0]));

    let orphan = &views[0];
    assert_eq!(
        store.delete(orphan.order_id, 2).await.unwrap(),
        DeleteOutcome::VersionMismatch,
        "a delete at the wrong version is refused"
    );
    assert!(
        ReadModelStore::get(&store, orphan.order_id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.delete(orphan.order_id, 1).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        ReadModelStore::get(&store, orphan.order_id).await.unwrap(),
        None
    );
    assert_eq!(
        store.delete(orphan.order_id, 1).await.unwrap(),
        DeleteOutcome::VersionMismatch,
        "nothing left to delete"
    );
}

fn new_order_id() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

fn new_key() -> IdempotencyKey {
    IdempotencyKey::parse(&format!("key-{}", Uuid::now_v7())).unwrap()
}

fn at(millis: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + millis)
}

fn wall_clock() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_millis(i64::try_from(millis).unwrap())
}

fn live_expiry() -> Timestamp {
    Timestamp::from_millis(wall_clock().millis() + 24 * 3_600_000)
}

fn metadata() -> EventMetadata {
    EventMetadata {
        correlation_id: Uuid::now_v7().to_string(),
        causation_id: Uuid::now_v7().to_string(),
        idempotency_key: None,
        source: "contract-test".into(),
    }
}

fn stored(order: OrderId, version: u64, occurred_at: Timestamp, data: EventData) -> StoredEvent {
    StoredEvent::new(
        order,
        version,
        Uuid::now_v7(),
        &OrderEvent { occurred_at, data },
        metadata(),
    )
}

fn items() -> Items {
    Items::parse(vec![LineItem {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: Quantity::parse(2).unwrap(),
        unit_price: UnitPrice::parse(150).unwrap(),
    }])
    .unwrap()
}

fn created(order: OrderId, version: u64, customer: &str, occurred_at: Timestamp) -> StoredEvent {
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

fn confirmed(order: OrderId, version: u64, occurred_at: Timestamp) -> StoredEvent {
    stored(order, version, occurred_at, EventData::OrderConfirmed)
}

fn shipped(order: OrderId, version: u64, occurred_at: Timestamp) -> StoredEvent {
    stored(order, version, occurred_at, EventData::OrderShipped)
}

fn cancelled(order: OrderId, version: u64, occurred_at: Timestamp) -> StoredEvent {
    stored(
        order,
        version,
        occurred_at,
        EventData::OrderCancelled {
            reason: Some(CancelReason::parse("contract test").unwrap()),
        },
    )
}

fn request(
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
    }
}

fn idempotency_record(
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

fn versions(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

/// Follows `next` to the end; fails on a page past the limit or a listing that never ends.
async fn page_through<S: ReadModelStore>(
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

async fn feed_head<S: ChangeFeed>(store: &S) -> u64 {
    let mut head = 0;
    loop {
        let batch = store.read_after(head, 1_000).await.expect("read the feed");
        match batch.last() {
            Some(last) => head = last.position,
            None => return head,
        }
    }
}
