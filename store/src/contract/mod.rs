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

use std::future::Future;

use crate::{
    ChangeFeed, CheckpointStore, EventScan, EventStore, IdempotencyStore, ReadModelScan,
    ReadModelStore,
};

mod events;
mod feed;
mod fixtures;
mod idempotency;
mod read_model;
mod scan;

pub use events::*;
pub use feed::*;
pub use fixtures::view;
pub use idempotency::*;
pub use read_model::*;
pub use scan::*;

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
            an_append_judges_key_expiry_at_its_now,
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
