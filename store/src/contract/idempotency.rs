//! Idempotency records: written with the events, scoped, in use, expired.

use orders_domain::Timestamp;
use uuid::Uuid;

use super::Backend;
use super::fixtures::*;
use crate::{AppendError, AppendRequest, EventStore, IdempotencyKey, IdempotencyStore};

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
/// once expired by the request's `now` its key can be used again.
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

/// An append judges a stored record's expiry at its request's `now` (the stores read no
/// clock): a millisecond before `expires_at` the key is in use and nothing is written; at
/// `expires_at` it is free and the new record replaces the old.
pub async fn an_append_judges_key_expiry_at_its_now<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let key = new_key();
    let first = new_order_id();
    let expires_at = live_expiry();
    store
        .append(request(
            first,
            0,
            vec![created(first, 1, "c-now", at(1))],
            Some(idempotency_record(&key, first, 1, expires_at)),
        ))
        .await
        .unwrap();

    let second = new_order_id();
    let record = idempotency_record(
        &key,
        second,
        1,
        Timestamp::from_millis(expires_at.millis() + 60_000),
    );
    let append_at = |now: Timestamp| AppendRequest {
        now,
        ..request(
            second,
            0,
            vec![created(second, 1, "c-now", at(2))],
            Some(record.clone()),
        )
    };
    let early = store
        .append(append_at(Timestamp::from_millis(expires_at.millis() - 1)))
        .await;
    assert!(
        matches!(early, Err(AppendError::IdempotencyKeyInUse)),
        "{early:?}"
    );
    assert!(store.load(second, None).await.unwrap().is_empty());

    store
        .append(append_at(expires_at))
        .await
        .expect("a key is free from its record's expires_at on");
    assert_eq!(
        IdempotencyStore::get(&store, &key, expires_at)
            .await
            .unwrap(),
        Some(record)
    );
    assert_eq!(store.load(second, None).await.unwrap().len(), 1);
}

/// A command that decides no events (e.g. confirming a confirmed order) still records its
/// idempotency key, and appends nothing.
pub async fn no_op_append_stores_only_the_idempotency_record<B: Backend>(backend: &B) {
    let store = backend.fresh().await;
    let order = new_order_id();
    append_created_and_confirmed(&store, order, "c-noop").await;
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
