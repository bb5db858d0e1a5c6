//! Rebuild scans: the event log and the read model read in parts, and the orphan's delete.

use std::collections::HashSet;

use orders_domain::{OrderId, OrderStatus};

use super::Backend;
use super::fixtures::*;
use crate::{
    DeleteOutcome, EventScan, EventStore, OrderView, PutOutcome, ReadModelScan, ReadModelStore,
    StoredEvent,
};

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
