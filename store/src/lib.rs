//! Storage for the order service, as ports with adapters.
//!
//! - [`EventStore`]: the append-only log of [`StoredEvent`]s, one stream per order.
//! - [`IdempotencyStore`]: the first response to each `Idempotency-Key`.
//! - [`ReadModelStore`]: the [`OrderView`]s the projector maintains, with listings.
//! - [`EventScan`] and [`ReadModelScan`]: both read whole, in parallel parts, for rebuilds.
//! - [`ChangeFeed`] and [`CheckpointStore`]: the embedded change feed and its consumers'
//!   positions (DynamoDB Streams plays this role on AWS).
//!
//! Adapters: [`sqlite`] (embedded default) and [`dynamodb`] (production), both implementing the
//! same traits.
//! Every adapter runs the same [`contract`] suite (feature `contract`), so they cannot drift.

pub mod aws;
mod clock;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod dynamodb;
mod envelope;
mod fold;
mod ports;
pub mod retry;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod table_name;
mod view;

pub use clock::{Clock, SystemClock};
pub use envelope::{EventMetadata, FeedEntry, StoredEvent};
pub use fold::{FoldError, check_decodes, fold, fold_event};
pub use ports::{
    AppendError, AppendRequest, ChangeFeed, CheckpointStore, ConditionalPut, DeleteOutcome,
    EventKey, EventScan, EventStore, IdempotencyKey, IdempotencyRecord, IdempotencyStore,
    ListFilter, ListQuery, Page, PageKey, PutOutcome, ReadModelScan, ReadModelStore, ScanPage,
    ScanSegment, StoreError,
};
pub use table_name::TableName;
pub use view::OrderView;
