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
//! - **Scheduling.** Each shard has its own next poll: at once after a batch, after
//!   `idle_wait` when it had nothing, after its own backoff (with jitter, growing to
//!   `retry.max_delay`) when it failed, so one failing shard never delays the others. The
//!   listing (`DescribeStream`) is refreshed at most once per `shard_refresh`.
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::{EventRecord, StreamViewType};
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use orders_store::aws;

use crate::backoff::RetryPolicy;
use crate::projector::Projector;
use crate::publisher::Publisher;
use crate::stream::{self, DynamoDbEvent, DynamoDbEventResponse};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A function on the stream: the projector or the publisher.
#[async_trait]
pub trait StreamHandler: Send + Sync {
    async fn handle(&self, event: DynamoDbEvent) -> Result<DynamoDbEventResponse, BoxError>;
}

#[async_trait]
impl StreamHandler for Projector {
    async fn handle(&self, event: DynamoDbEvent) -> Result<DynamoDbEventResponse, BoxError> {
        Ok(stream::project(self, &event).await?)
    }
}

#[async_trait]
impl StreamHandler for Publisher {
    async fn handle(&self, event: DynamoDbEvent) -> Result<DynamoDbEventResponse, BoxError> {
        Ok(stream::publish(self, &event).await?)
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
    /// The pause before polling a shard again after it had no new records.
    pub idle_wait: Duration,
    /// The least time between two listings of the stream's shards (`DescribeStream`, which
    /// AWS allows 10 times a second): how soon a new shard (a split) is noticed.
    pub shard_refresh: Duration,
    pub start: StartPosition,
    /// The backoff of a shard after a failed batch or call, per shard (`max_attempts` is not
    /// used: it retries until the batch succeeds).
    pub retry: RetryPolicy,
}

impl PollerConfig {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            batch_size: 100,
            idle_wait: Duration::from_millis(200),
            shard_refresh: Duration::from_millis(200),
            start: StartPosition::TrimHorizon,
            retry: RetryPolicy {
                max_attempts: u32::MAX,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(5),
            },
        }
    }
}

/// The events table's stream, and the clients to read it.
#[derive(Clone, Debug)]
pub struct StreamSource {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: StreamsClient,
    table: String,
    region: String,
}

impl StreamSource {
    /// Clients for `endpoint_url` (DynamoDB Local serves the Streams API on its one
    /// endpoint), or the SDK's defaults.
    pub async fn connect(endpoint_url: Option<&str>, table: impl Into<String>) -> Self {
        let dynamodb = aws::sdk_config(endpoint_url, "AWS_ENDPOINT_URL_DYNAMODB").await;
        let streams = aws::sdk_config(endpoint_url, "AWS_ENDPOINT_URL_DYNAMODB_STREAMS").await;
        let region = streams
            .region()
            .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
        let mut streams_config = aws_sdk_dynamodbstreams::config::Builder::from(&streams);
        if endpoint_url.is_some() {
            let http = streams
                .http_client()
                .unwrap_or_else(aws::default_http_client);
            streams_config = streams_config.http_client(
                aws_sdk_dynamodbstreams::config::SharedHttpClient::new(emulator::EmptyMapFix(http)),
            );
        }
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&dynamodb),
            streams: StreamsClient::from_conf(streams_config.build()),
            table: table.into(),
            region,
        }
    }

    /// The table's current stream ARN.
    pub async fn stream_arn(&self) -> Result<String, BoxError> {
        let table = self
            .dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| aws::describe("DynamoDB DescribeTable", &e))?;
        table
            .table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "table {} has no stream: create the tables with `orders tables create`",
                    self.table
                )
                .into()
            })
    }
}

/// The DynamoDB Streams calls the poller makes: [`StreamSource`] makes them on the Streams
/// API; the tests of the shard scheduling (`poller/tests.rs`) script them.
#[async_trait]
trait StreamsApi: Send + Sync {
    /// One page of `DescribeStream`'s shards, after `exclusive_start`.
    async fn list_shards(
        &self,
        stream_arn: &str,
        exclusive_start: Option<String>,
    ) -> Result<ShardPage, StreamsError>;

    /// `GetShardIterator`; `None` when the response holds no iterator.
    async fn shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        from: IteratorStart<'_>,
    ) -> Result<Option<String>, StreamsError>;

    /// `GetRecords` with `Limit` = `limit`.
    async fn records(&self, iterator: String, limit: i32) -> Result<RecordPage, StreamsError>;
}

#[derive(Debug, Default)]
struct ShardPage {
    shards: Vec<ListedShard>,
    /// `LastEvaluatedShardId`: there are more shards after it.
    last_evaluated: Option<String>,
}

#[derive(Debug, Clone)]
struct ListedShard {
    id: String,
    parent: Option<String>,
    /// The shard has an `EndingSequenceNumber`: it receives no more records.
    closed: bool,
}

#[derive(Debug, Default)]
struct RecordPage {
    records: Vec<Record>,
    /// `NextShardIterator`; `None` when the shard is closed and read to its end.
    next_iterator: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum IteratorStart<'a> {
    TrimHorizon,
    Latest,
    After(&'a str),
    At(&'a str),
}

/// A failed Streams call, sorted by what the poller does about it.
#[derive(Debug, thiserror::Error)]
enum StreamsError {
    /// `TrimmedDataAccessException`: the position is older than the oldest record the shard
    /// keeps (records are trimmed after 24 hours).
    #[error("{0}")]
    Trimmed(String),
    /// `ExpiredIteratorException`: an iterator lasts 15 minutes.
    #[error("{0}")]
    ExpiredIterator(String),
    /// `ResourceNotFoundException`: the shard (or the stream) is gone.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

impl StreamsError {
    fn from_sdk<E>(call: &str, err: &aws_sdk_dynamodbstreams::error::SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let text = aws::describe(call, err);
        match err.code() {
            Some("TrimmedDataAccessException") => Self::Trimmed(text),
            Some("ExpiredIteratorException") => Self::ExpiredIterator(text),
            Some("ResourceNotFoundException") => Self::NotFound(text),
            _ => Self::Other(text),
        }
    }
}

#[async_trait]
impl StreamsApi for StreamSource {
    async fn list_shards(
        &self,
        stream_arn: &str,
        exclusive_start: Option<String>,
    ) -> Result<ShardPage, StreamsError> {
        let out = self
            .streams
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(exclusive_start)
            .send()
            .await
            .map_err(|e| StreamsError::from_sdk("DynamoDB Streams DescribeStream", &e))?;
        let Some(description) = out.stream_description() else {
            return Ok(ShardPage::default());
        };
        Ok(ShardPage {
            shards: description
                .shards()
                .iter()
                .filter_map(|shard| {
                    Some(ListedShard {
                        id: shard.shard_id()?.to_owned(),
                        parent: shard.parent_shard_id().map(str::to_owned),
                        closed: shard
                            .sequence_number_range()
                            .and_then(|range| range.ending_sequence_number())
                            .is_some(),
                    })
                })
                .collect(),
            last_evaluated: description.last_evaluated_shard_id().map(str::to_owned),
        })
    }

    async fn shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        from: IteratorStart<'_>,
    ) -> Result<Option<String>, StreamsError> {
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard_id);
        let request = match from {
            IteratorStart::TrimHorizon => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            IteratorStart::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            IteratorStart::After(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            IteratorStart::At(sequence) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(sequence),
        };
        let out = request
            .send()
            .await
            .map_err(|e| StreamsError::from_sdk("DynamoDB Streams GetShardIterator", &e))?;
        Ok(out.shard_iterator().map(str::to_owned))
    }

    async fn records(&self, iterator: String, limit: i32) -> Result<RecordPage, StreamsError> {
        let out = self
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StreamsError::from_sdk("DynamoDB Streams GetRecords", &e))?;
        let mut out = out;
        Ok(RecordPage {
            next_iterator: out.next_shard_iterator.take(),
            records: out.records.unwrap_or_default(),
        })
    }
}

/// What the poller knows of one shard.
#[derive(Debug)]
struct Shard {
    parent: Option<String>,
    /// Receives no more records: listed with an `EndingSequenceNumber`, or some listed shard
    /// names it as its parent.
    closed: bool,
    /// The iterator for the next `GetRecords`, when one is in hand.
    iterator: Option<String>,
    /// Where to get a new iterator.
    position: Resume,
    /// Done with: read to its end (a closed shard whose iterator ran out), or trimmed away.
    /// Its children may be read.
    finished: bool,
    /// Consecutive failed attempts, for the backoff.
    failures: u32,
    /// When to poll it next: later after an empty read or a failure, so a shard that has
    /// records never waits for one that backs off.
    due: Instant,
}

impl Shard {
    fn new(listed: &ListedShard, now: Instant) -> Self {
        Self {
            parent: listed.parent.clone(),
            closed: listed.closed,
            iterator: None,
            position: Resume::Start,
            finished: false,
            failures: 0,
            due: now,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Resume {
    /// Nothing read yet: where [`PollerConfig::start`] says.
    Start,
    /// The oldest record the shard keeps (`TRIM_HORIZON`): the position was trimmed away.
    OldestKept,
    /// After the last committed record.
    After(String),
    /// At a record that failed.
    At(String),
}

/// What one poll of a shard came to.
#[derive(Debug, PartialEq, Eq)]
enum Polled {
    /// A batch went to the handler and was committed: poll again at once.
    Delivered,
    /// Nothing new: poll again after the idle wait.
    Empty,
    /// The position moved without reading (trimmed, or an expired iterator): poll again at
    /// once from the new position.
    Moved,
    /// The shard is done with: its children may be read.
    Finished,
}

/// One consumer of the stream.
pub struct StreamPoller {
    source: StreamSource,
    config: PollerConfig,
}

impl StreamPoller {
    pub fn new(source: StreamSource, config: PollerConfig) -> Self {
        Self { source, config }
    }

    /// Polls until `shutdown` resolves (a batch in hand is finished first). Errors of the
    /// Streams API are logged and retried; only a table without a stream ends it early.
    pub async fn run(
        self,
        handler: Arc<dyn StreamHandler>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), BoxError> {
        let stream_arn = self.source.stream_arn().await?;
        tracing::info!(consumer = %self.config.name, %stream_arn, batch_size = self.config.batch_size, "polling the events stream");
        let region = self.source.region.clone();
        ShardScheduler::new(&self.source, &stream_arn, &region, &self.config, &*handler)
            .run(shutdown)
            .await;
        Ok(())
    }
}

/// The poller's loop over one stream's shards.
///
/// Each shard has its own next-poll instant ([`Shard::due`]): the loop polls the shards that
/// are due, then sleeps until the earliest next one. A shard with records is due again at
/// once, an empty one after [`PollerConfig::idle_wait`], a failing one after its own backoff,
/// so one shard's failures never delay the others. The shard listing (`DescribeStream`,
/// which AWS allows 10 times a second) is refreshed at most once per
/// [`PollerConfig::shard_refresh`], however busy the shards are.
struct ShardScheduler<'a> {
    api: &'a dyn StreamsApi,
    stream_arn: &'a str,
    region: &'a str,
    config: &'a PollerConfig,
    handler: &'a dyn StreamHandler,
    shards: BTreeMap<String, Shard>,
    next_refresh: Instant,
}

impl<'a> ShardScheduler<'a> {
    fn new(
        api: &'a dyn StreamsApi,
        stream_arn: &'a str,
        region: &'a str,
        config: &'a PollerConfig,
        handler: &'a dyn StreamHandler,
    ) -> Self {
        Self {
            api,
            stream_arn,
            region,
            config,
            handler,
            shards: BTreeMap::new(),
            next_refresh: Instant::now(),
        }
    }

    async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wake = self.turn().await;
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// Refreshes the shard listing if it is due and polls every shard that is due; returns
    /// when the next one is.
    async fn turn(&mut self) -> Instant {
        let now = Instant::now();
        if now >= self.next_refresh {
            if let Err(error) = self.refresh_shards(now).await {
                tracing::warn!(consumer = %self.config.name, %error, "cannot list the stream's shards; retrying");
            }
            self.next_refresh = Instant::now() + self.config.shard_refresh;
        }
        let due: Vec<String> = self
            .readable()
            .filter(|(_, shard)| shard.due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for shard_id in due {
            let mut shard = self.shards.remove(&shard_id).expect("listed above");
            let polled = self.poll_shard(&shard_id, &mut shard).await;
            // From the end of the poll, so a backoff is never shortened by the poll's length.
            let now = Instant::now();
            match polled {
                Ok(Polled::Delivered) => {
                    shard.failures = 0;
                    shard.due = now;
                }
                Ok(Polled::Moved) => shard.due = now,
                Ok(Polled::Empty) => {
                    shard.failures = 0;
                    shard.due = now + self.config.idle_wait;
                }
                Ok(Polled::Finished) => shard.finished = true,
                Err(error) => {
                    shard.failures += 1;
                    let delay = self.config.retry.delay(shard.failures);
                    shard.due = now + delay;
                    tracing::warn!(consumer = %self.config.name, shard = %shard_id, %error, attempts = shard.failures, retry_in_ms = delay.as_millis() as u64, "stream read failed");
                }
            }
            self.shards.insert(shard_id, shard);
        }
        // A child whose parent finished in this turn is due already: it is in this minimum.
        self.readable()
            .map(|(_, shard)| shard.due)
            .fold(self.next_refresh, Instant::min)
    }

    /// The shards that may be read now: unfinished, and their parent (if still known)
    /// finished, which keeps each item's records in order across a shard split.
    fn readable(&self) -> impl Iterator<Item = (&String, &Shard)> {
        self.shards.iter().filter(|(_, shard)| {
            !shard.finished
                && shard
                    .parent
                    .as_ref()
                    .and_then(|parent| self.shards.get(parent))
                    .is_none_or(|parent| parent.finished)
        })
    }

    /// Lists the stream's shards: adds the new ones, marks the closed ones, and forgets the
    /// ones no longer listed. A shard leaves the listing once its records are all trimmed
    /// (some time within 24 hours after that), so an unfinished one that left is done with:
    /// its children no longer wait for it.
    async fn refresh_shards(&mut self, now: Instant) -> Result<(), StreamsError> {
        let mut listed: Vec<ListedShard> = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page = self.api.list_shards(self.stream_arn, start.take()).await?;
            listed.extend(page.shards);
            match page.last_evaluated {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        let parents: HashSet<&str> = listed.iter().filter_map(|s| s.parent.as_deref()).collect();
        let ids: HashSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
        self.shards.retain(|id, shard| {
            let kept = ids.contains(id.as_str());
            if !kept && !shard.finished {
                tracing::warn!(consumer = %self.config.name, shard = %id, "the shard is no longer listed before it was read to its end: its remaining records were trimmed (kept 24 hours) and are lost to this consumer; its children are read now");
            }
            kept
        });
        for shard in &listed {
            let closed = shard.closed || parents.contains(shard.id.as_str());
            self.shards
                .entry(shard.id.clone())
                .or_insert_with(|| Shard::new(shard, now))
                .closed |= closed;
        }
        Ok(())
    }

    /// One `GetRecords` on one shard (after a `GetShardIterator` if no iterator is in hand)
    /// and, if it returned records, one handler call.
    async fn poll_shard(&self, shard_id: &str, shard: &mut Shard) -> Result<Polled, BoxError> {
        // An iterator just obtained from the saved position, rather than one held from the
        // last read: a failure of a fresh one is the position's, not the iterator's.
        let fresh = shard.iterator.is_none();
        let iterator = match shard.iterator.take() {
            Some(iterator) => iterator,
            None => {
                let from = match &shard.position {
                    Resume::Start => match self.config.start {
                        StartPosition::TrimHorizon => IteratorStart::TrimHorizon,
                        StartPosition::Latest => IteratorStart::Latest,
                    },
                    Resume::OldestKept => IteratorStart::TrimHorizon,
                    Resume::After(sequence) => IteratorStart::After(sequence),
                    Resume::At(sequence) => IteratorStart::At(sequence),
                };
                match self
                    .api
                    .shard_iterator(self.stream_arn, shard_id, from)
                    .await
                {
                    Ok(Some(iterator)) => iterator,
                    // No iterator on a closed shard: nothing is left to read there.
                    Ok(None) if shard.closed => {
                        tracing::warn!(consumer = %self.config.name, shard = %shard_id, position = ?shard.position, "the closed shard has no iterator: read to its end, or its records were trimmed (kept 24 hours) before they were read; its children are read now");
                        return Ok(Polled::Finished);
                    }
                    Ok(None) => return Err(format!("no iterator for shard {shard_id}").into()),
                    Err(error) => return self.unreadable(shard_id, shard, error, true),
                }
            }
        };
        let page = match self.api.records(iterator, self.config.batch_size).await {
            Ok(page) => page,
            // A new iterator from the saved position continues where this one was.
            Err(StreamsError::ExpiredIterator(_)) if !fresh => return Ok(Polled::Moved),
            Err(error) => return self.unreadable(shard_id, shard, error, fresh),
        };
        if page.records.is_empty() {
            return Ok(match page.next_iterator {
                Some(next) => {
                    shard.iterator = Some(next);
                    Polled::Empty
                }
                None => self.finished(shard_id, shard),
            });
        }
        let event = lambda_event(&page.records, self.stream_arn, self.region);
        let sequence_numbers: Vec<String> = event
            .records
            .iter()
            .map(|r| r.change.sequence_number.clone().unwrap_or_default())
            .collect();
        let failed_at: Option<String> = match self.handler.handle(event).await {
            Ok(response) => response
                .batch_item_failures
                .iter()
                .filter_map(|failure| failure.item_identifier.clone())
                .min_by(|a: &String, b: &String| compare_sequence_numbers(a, b)),
            Err(error) => {
                tracing::warn!(consumer = %self.config.name, shard = %shard_id, %error, "the handler failed the whole batch");
                Some(sequence_numbers[0].clone())
            }
        };
        match failed_at {
            None => {
                shard.position = sequence_numbers
                    .last()
                    .cloned()
                    .map_or(Resume::Start, Resume::After);
                Ok(match page.next_iterator {
                    Some(next) => {
                        shard.iterator = Some(next);
                        Polled::Delivered
                    }
                    None => self.finished(shard_id, shard),
                })
            }
            Some(failed) => {
                let committed = sequence_numbers
                    .iter()
                    .filter(|s| compare_sequence_numbers(s, &failed).is_lt())
                    .count();
                shard.position = Resume::At(failed.clone());
                Err(format!(
                    "batch failed at record {failed} ({committed} of {} records before it committed)",
                    sequence_numbers.len()
                )
                .into())
            }
        }
    }

    /// A shard cannot be read from its position (`fresh`: with an iterator just obtained for
    /// it): a trimmed position moves to the oldest record kept; a closed shard that is trimmed
    /// even there, or gone, is done with, so its children are read; any other failure is
    /// retried after the shard's backoff.
    fn unreadable(
        &self,
        shard_id: &str,
        shard: &mut Shard,
        error: StreamsError,
        fresh: bool,
    ) -> Result<Polled, BoxError> {
        match error {
            StreamsError::Trimmed(_) if !fresh || shard.position != Resume::OldestKept => {
                tracing::warn!(consumer = %self.config.name, shard = %shard_id, %error, "records were trimmed before they were read (kept 24 hours); continuing from the oldest kept");
                shard.position = Resume::OldestKept;
                Ok(Polled::Moved)
            }
            StreamsError::Trimmed(_) | StreamsError::NotFound(_) if shard.closed => {
                tracing::warn!(consumer = %self.config.name, shard = %shard_id, %error, "the closed shard cannot be read any more: its records may have been trimmed (kept 24 hours) before they were read; its children are read now");
                Ok(Polled::Finished)
            }
            error => Err(error.into()),
        }
    }

    fn finished(&self, shard_id: &str, shard: &Shard) -> Polled {
        tracing::debug!(consumer = %self.config.name, shard = %shard_id, position = ?shard.position, "the closed shard is read to its end");
        Polled::Finished
    }
}

/// Stream sequence numbers are decimal strings of varying length: compare them as numbers.
fn compare_sequence_numbers(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The `DynamoDbEvent` Lambda would deliver for these records of the stream `stream_arn`.
pub fn lambda_event(records: &[Record], stream_arn: &str, region: &str) -> DynamoDbEvent {
    let mut event = DynamoDbEvent::default();
    event.records = records
        .iter()
        .map(|record| lambda_record(record, stream_arn, region))
        .collect();
    event
}

fn lambda_record(record: &Record, stream_arn: &str, region: &str) -> EventRecord {
    let mut out = EventRecord::default();
    out.event_id = record.event_id().unwrap_or_default().to_owned();
    out.event_name = record
        .event_name()
        .map(|name| name.as_str().to_owned())
        .unwrap_or_default();
    out.event_version = Some(record.event_version().unwrap_or("1.1").to_owned());
    out.event_source = Some(record.event_source().unwrap_or("aws:dynamodb").to_owned());
    out.aws_region = record.aws_region().unwrap_or(region).to_owned();
    out.event_source_arn = Some(stream_arn.to_owned());
    if let Some(change) = record.dynamodb() {
        out.change.approximate_creation_date_time = change
            .approximate_creation_date_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .unwrap_or_default();
        out.change.keys = item(change.keys());
        out.change.new_image = item(change.new_image());
        out.change.old_image = item(change.old_image());
        out.change.sequence_number = change.sequence_number().map(str::to_owned);
        out.change.size_bytes = change.size_bytes().unwrap_or_default();
        out.change.stream_view_type = change.stream_view_type().and_then(|v| {
            Some(match v.as_str() {
                "NEW_IMAGE" => StreamViewType::NewImage,
                "OLD_IMAGE" => StreamViewType::OldImage,
                "NEW_AND_OLD_IMAGES" => StreamViewType::NewAndOldImages,
                "KEYS_ONLY" => StreamViewType::KeysOnly,
                _ => return None,
            })
        });
    }
    out
}

fn item(
    attributes: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
) -> serde_dynamo::Item {
    attributes
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| {
                    (
                        name.clone(),
                        serde_dynamo::AttributeValue::from(value.clone()),
                    )
                })
                .collect::<HashMap<_, _>>()
        })
        .unwrap_or_default()
        .into()
}

/// DynamoDB Local's Streams API renders an empty map attribute (`{"M": {}}`, e.g. the `data`
/// of an `OrderConfirmed`) as a bare `{}`, which no SDK can parse. For endpoints other than
/// AWS's, the Streams client's responses go through [`EmptyMapFix`], which restores `{"M": {}}`
/// in the records' images before the SDK reads them. AWS itself never sends `{}` there.
mod emulator {
    use aws_sdk_dynamodbstreams::config::{HttpClient, RuntimeComponents, SharedHttpClient};
    use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
    use aws_smithy_runtime_api::client::http::{
        HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::byte_stream::ByteStream;
    use serde_json::Value;

    #[derive(Debug)]
    pub(super) struct EmptyMapFix(pub(super) SharedHttpClient);

    impl HttpClient for EmptyMapFix {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(FixingConnector(self.0.http_connector(settings, components)))
        }

        fn connector_metadata(&self) -> Option<ConnectorMetadata> {
            self.0.connector_metadata()
        }
    }

    #[derive(Debug)]
    struct FixingConnector(SharedHttpConnector);

    impl HttpConnector for FixingConnector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let inner = self.0.clone();
            HttpConnectorFuture::new(async move {
                let mut response = inner.call(request).await?;
                if !response.status().is_success() {
                    return Ok(response);
                }
                let body = ByteStream::new(response.take_body())
                    .collect()
                    .await
                    .map_err(|e| ConnectorError::io(Box::new(e)))?
                    .into_bytes();
                let mut json = serde_json::from_slice::<Value>(&body).ok();
                let changed = json.as_mut().is_some_and(fix_records);
                let fixed = match json.filter(|_| changed) {
                    Some(json) => {
                        // The body changed: its length and checksum headers no longer hold.
                        response.headers_mut().remove("content-length");
                        response.headers_mut().remove("x-amz-crc32");
                        serde_json::to_vec(&json).expect("JSON re-encodes")
                    }
                    None => body.to_vec(),
                };
                *response.body_mut() = SdkBody::from(fixed);
                Ok(response)
            })
        }
    }

    /// Restores empty maps in `Records[].dynamodb.{Keys,NewImage,OldImage}`; whether any was.
    pub(super) fn fix_records(json: &mut Value) -> bool {
        let Some(records) = json.get_mut("Records").and_then(Value::as_array_mut) else {
            return false;
        };
        let mut fixed = false;
        for record in records {
            for image in ["Keys", "NewImage", "OldImage"] {
                if let Some(Value::Object(attributes)) = record
                    .get_mut("dynamodb")
                    .and_then(|change| change.get_mut(image))
                {
                    for value in attributes.values_mut() {
                        fixed |= fix_attribute(value);
                    }
                }
            }
        }
        fixed
    }

    fn fix_attribute(value: &mut Value) -> bool {
        let Value::Object(map) = value else {
            return false;
        };
        if map.is_empty() {
            *value = serde_json::json!({"M": {}});
            return true;
        }
        let mut fixed = false;
        if let Some(Value::Object(inner)) = map.get_mut("M") {
            for v in inner.values_mut() {
                fixed |= fix_attribute(v);
            }
        }
        if let Some(Value::Array(items)) = map.get_mut("L") {
            for v in items {
                fixed |= fix_attribute(v);
            }
        }
        fixed
    }

    #[cfg(test)]
    mod tests {
        use serde_json::json;

        #[test]
        fn empty_maps_in_images_are_restored_at_any_depth() {
            let mut body = json!({"Records": [{"dynamodb": {
                "Keys": {"orderId": {"S": "o"}},
                "NewImage": {"data": {}, "meta": {"M": {"x": {}, "l": {"L": [{}]}}}}
            }}]});
            assert!(super::fix_records(&mut body));
            assert_eq!(
                body["Records"][0]["dynamodb"]["NewImage"],
                json!({"data": {"M": {}}, "meta": {"M": {"x": {"M": {}}, "l": {"L": [{"M": {}}]}}}})
            );
            let mut clean = json!({"Records": [{"dynamodb": {"NewImage": {"data": {"M": {}}}}}]});
            assert!(!super::fix_records(&mut clean));
        }
    }
}

#[cfg(test)]
mod tests;
