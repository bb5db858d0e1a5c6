//! The local stream poller: what a Lambda event source mapping does for the `projector` and
//! `publisher` functions, for `orders serve --backend dynamodb` and the tests.
//!
//! It reads the events table's stream with the DynamoDB Streams API, one consumer per
//! [`StreamPoller`], each with its own position in every shard (as two event source mappings
//! on one stream have):
//! - **Shards.** It lists the stream's shards and reads each one to its end; a child shard is
//!   read only once its parent is finished, which keeps each order's events in order across
//!   a shard split. A parent is finished when its iterator runs out (no `NextShardIterator`),
//!   when it is closed and cannot be read even from its oldest record
//!   (`TrimmedDataAccessException`, `ResourceNotFoundException`, no iterator), or when it
//!   leaves the listing: a closed shard stays listed for a while after its records are
//!   trimmed (24 hours), and none of that may hold its children back for good. Each case that
//!   may have lost records is logged as a warning naming the shard.
//! - **Scheduling.** Each shard has its own next poll: at once after a batch; after an idle
//!   wait when it had nothing, `idle_wait` doubling with every further empty read up to
//!   `max_idle_wait` (1 s: about one `GetRecords` per shard per second when idle, where a
//!   Lambda mapping makes four), back to `idle_wait` after records; after its own backoff
//!   (with jitter, growing to `retry.max_delay`) when it failed, so one failing shard never
//!   delays the others. The listing (`DescribeStream`, 10 calls/s allowed) is refreshed every
//!   `shard_refresh` (10 s) and when a shard ends, which is when its children appear; never
//!   per `GetRecords`.
//! - **Batches.** `GetRecords` with `Limit` = the batch size; the records become exactly the
//!   `DynamoDbEvent` payload Lambda delivers ([`lambda_event`]), handed to the same handler
//!   functions as the Lambdas ([`crate::stream`]).
//! - **Partial batch responses.** When the response names a failed `SequenceNumber`, the
//!   records before it are committed and the shard resumes *at* it, after a backoff; an error
//!   of the whole call retries the whole batch. Locally a record that keeps failing blocks its
//!   shard (logged at every attempt) instead of being dropped: there is no on-failure
//!   destination to keep it.
//! - **Start.** A new poller starts at the oldest record the stream keeps (`TRIM_HORIZON`,
//!   24 hours), so a restart loses nothing: the projector ignores what it has applied, and the
//!   bus receives some events again, which it may (delivery is at-least-once; subscribers
//!   dedupe on `eventId`). [`StartPosition::Latest`] starts with new records only.
//!
//! Its files: `schedule.rs` (the shards, their order and their polls), `reader.rs` (the
//! stream and the Streams calls made on it), `convert.rs` (records → the Lambda event), and
//! `local_repair.rs` (DynamoDB Local's Streams responses, repaired).

mod convert;
mod local_repair;
mod reader;
mod schedule;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orders_store::retry::RetryPolicy;

use crate::consumer::ConsumerHandler;
use crate::stream::{self, DynamoDbEvent, DynamoDbEventResponse};

pub use convert::lambda_event;
pub use reader::StreamReader;
use schedule::ShardScheduler;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the poller hands each batch to: Lambda's `DynamoDbEvent` in, the partial batch
/// response out, as an event source mapping calls a function.
///
/// Every [`ConsumerHandler`] (the projector, the publisher) is one, through the same
/// [`stream::consume`] the Lambdas run: it decodes the records, skips non-`INSERT` ones, stops
/// at an undecodable one and names the failed record's `SequenceNumber`. So there is one trait
/// to implement for a consumer of stored events; this one is only the poller's input, which
/// its tests script with raw records.
#[async_trait]
pub trait StreamHandler: Send + Sync {
    async fn handle(&self, event: DynamoDbEvent) -> Result<DynamoDbEventResponse, BoxError>;
}

#[async_trait]
impl<C: ConsumerHandler> StreamHandler for C {
    async fn handle(&self, event: DynamoDbEvent) -> Result<DynamoDbEventResponse, BoxError> {
        Ok(stream::consume(self, &event).await?)
    }
}

/// Where a new poller starts in each shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    TrimHorizon,
    Latest,
}

#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// The consumer's name, in logs (`projector`, `publisher`).
    pub name: String,
    /// Records per batch: `GetRecords`' `Limit`, at most 1 000 (an event source mapping's
    /// `BatchSize`; one `GetRecords` call returns at most 1 000).
    pub batch_size: i32,
    /// The pause before polling a shard again after its first empty read; it doubles with
    /// every further empty read, up to `max_idle_wait`, and a read with records resets it.
    /// Short, so records that follow a batch closely are read at once.
    pub idle_wait: Duration,
    /// The longest pause of an idle shard: about one `GetRecords` per shard per second
    /// (per poller: the projector and the publisher each make theirs), and how late the
    /// first record after a long idle spell can be read.
    pub max_idle_wait: Duration,
    /// How often the stream's shards are listed (`DescribeStream`, which AWS allows 10 times
    /// a second) besides when a shard ends. A split closes a shard, whose end (no
    /// `NextShardIterator`) lists the shards at once, so this only bounds how long a shard
    /// the poller could not see end (one trimmed away unread) takes to be noticed.
    pub shard_refresh: Duration,
    pub start: StartPosition,
    /// The backoff of a shard after a failed batch or call, per shard (default
    /// [`RetryPolicy::CONSUMER`]; `max_attempts` is not used: it retries until the batch
    /// succeeds).
    pub retry: RetryPolicy,
}

impl PollerConfig {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            batch_size: 100,
            idle_wait: Duration::from_millis(50),
            max_idle_wait: Duration::from_secs(1),
            shard_refresh: Duration::from_secs(10),
            start: StartPosition::TrimHorizon,
            retry: RetryPolicy::CONSUMER,
        }
    }

    /// The pause after the `empty_reads`-th empty read in a row (from 1): `idle_wait`
    /// doubled for each one before it, at most `max_idle_wait`.
    pub fn idle_wait_after(&self, empty_reads: u32) -> Duration {
        let doublings = empty_reads.saturating_sub(1).min(31);
        self.idle_wait
            .saturating_mul(1 << doublings)
            .min(self.max_idle_wait)
    }
}

/// One consumer of the stream.
pub struct StreamPoller {
    reader: StreamReader,
    config: PollerConfig,
}

impl StreamPoller {
    pub fn new(reader: StreamReader, config: PollerConfig) -> Self {
        Self { reader, config }
    }

    /// Polls until `shutdown` resolves (a batch in hand is finished first). Errors of the
    /// Streams API are logged and retried; only a table without a stream ends it early.
    pub async fn run(
        self,
        handler: Arc<dyn StreamHandler>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), BoxError> {
        let stream_arn = self.reader.stream_arn().await?;
        tracing::info!(consumer = %self.config.name, %stream_arn, batch_size = self.config.batch_size, "polling the events stream");
        let region = self.reader.region.clone();
        ShardScheduler::new(&self.reader, &stream_arn, &region, &self.config, &*handler)
            .run(shutdown)
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
