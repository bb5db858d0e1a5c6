//! Test helpers: the test kit's fixtures and SQLite store (`orders-testkit`), and what only
//! this crate's tests check.

pub use orders_testkit::fixtures::{cancelled, created, new_order_id};
pub use orders_testkit::stored::{
    append, event, feed_head, folded_view, insert_record, lifecycle, raw_event,
};
pub use orders_testkit::stores::sqlite as store;

use orders_domain::OrderId;
use orders_store::sqlite::SqliteStore;
use orders_store::{OrderView, ReadModelStore};
use uuid::Uuid;

use crate::publisher::BusEntry;

pub async fn stored_view(store: &SqliteStore, order_id: OrderId) -> Option<OrderView> {
    ReadModelStore::get(store, order_id).await.unwrap()
}

/// Asserts the stored view equals the fold of all the order's events.
pub async fn assert_converged(store: &SqliteStore, order_id: OrderId) {
    let expected = folded_view(store, order_id).await;
    assert!(expected.is_some(), "the order {order_id} has a view");
    assert_eq!(stored_view(store, order_id).await, expected);
}

/// The `eventId` in a bus entry's detail: what a fake bus keys its faults and records by.
pub fn entry_event_id(entry: &BusEntry) -> Uuid {
    let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
    detail["eventId"].as_str().unwrap().parse().unwrap()
}
