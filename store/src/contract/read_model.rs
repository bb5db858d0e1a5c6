//! Read model: conditional writes, batches and the two listings.

use orders_domain::{CancelReason, CustomerId, OrderStatus, Timestamp};

use super::Backend;
use super::fixtures::*;
use crate::{ConditionalPut, ListFilter, ListQuery, OrderView, PutOutcome, ReadModelStore};

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
