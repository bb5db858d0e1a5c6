//! How stored events become read-model views and bus messages (DESIGN §6).
//!
//! - [`projector`]: folds each event into its order's [`OrderView`](orders_store::OrderView),
//!   idempotently and with version-conditional writes, healing gaps from the event store.
//! - [`publisher`]: sends each event to a [`Bus`] (EventBridge `PutEvents` semantics:
//!   batches of at most 10 entries and 256 KB, only failed entries retried), each order's
//!   events in version order, an order's next event only once the previous one is accepted.
//! - [`local_bus`]: the [`Bus`] used when there is no EventBridge: a JSON-lines file plus a
//!   live Server-Sent Events feed at `GET /local/bus`.
//! - [`consumer`]: what the projector and the publisher do with a batch of stored events,
//!   and how far they got.
//! - [`feed`]: tails the embedded change feed for one named consumer from its checkpoint.
//! - [`local`]: the projector and the publisher as feed consumers in-process, with the local
//!   bus: [`LocalRuntime`] is what `orders serve` starts on SQLite.
//! - [`stream`]: DynamoDB Streams batches in, partial batch responses out: the handler
//!   functions of the `projector` and `publisher` Lambdas ([`lambda`], `src/bin/`).
//! - [`eventbridge`]: the [`Bus`] on EventBridge.
//! - [`replay`]: rebuilds or verifies the read model from the whole event store
//!   (`orders replay`).
//! - [`poller`]: reads the events table's stream and calls the same handler functions with
//!   the same payloads, as an event source mapping would: `orders serve --backend dynamodb`.

pub mod consumer;
pub mod eventbridge;
pub mod feed;
pub mod lambda;
pub mod local;
pub mod local_bus;
pub mod poller;
pub mod projector;
pub mod publisher;
pub mod replay;
pub mod stream;
#[cfg(test)]
mod test_support;

pub use consumer::{BatchFailure, ConsumerHandler};
pub use feed::FeedConsumer;
pub use local::{LocalRuntime, PROJECTOR_CONSUMER, PUBLISHER_CONSUMER, spawn_local_consumers};
pub use local_bus::{LocalBus, router};
pub use projector::{Applied, BatchOutcome, ProjectionError, Projector};
pub use publisher::{
    Bus, BusEntry, BusError, DEFAULT_BUS_SOURCE, EntryResult, FailedEvent, PublishError, Publisher,
    PublisherConfig, RetryPolicy,
};
