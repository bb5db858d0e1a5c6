//! The embedded change feed and its consumers' checkpoints.

use std::time::Duration;

use super::FeedBackend;
use super::fixtures::*;
use crate::{ChangeFeed, CheckpointStore, EventStore, StoredEvent};

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
    append_created_and_confirmed(&store, order, "c-watch").await;
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
