//! The local stream poller: what a Lambda event source mapping does for the `projector` and
//! `publisher` functions, for `orders serve --backend dynamodb` and the tests.
//!
//! It reads the events table's stream with the DynamoDB Streams API, one consumer per
//! [`StreamPoller`], each with its own position in every shard (as two event source mappings
//! on one stream have):
//! - **Shards.** It lists the stream's shards and reads each one to its end; a child shard is
//!   read only once its parent is finished (or trimmed away), which keeps each order's
//!   events in order across a shard split.
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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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
    /// The pause after a round in which no shard had records.
    pub idle_wait: Duration,
    pub start: StartPosition,
    /// The backoff after a failed batch (`max_attempts` is not used: it retries until the
    /// batch succeeds).
    pub retry: RetryPolicy,
}

impl PollerConfig {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            batch_size: 100,
            idle_wait: Duration::from_millis(200),
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

/// What the poller knows of one shard.
#[derive(Debug, Default)]
struct Shard {
    parent: Option<String>,
    /// The iterator for the next `GetRecords`, when one is in hand.
    iterator: Option<String>,
    /// Where to get a new iterator: after the last committed record, or at a failed one.
    position: Option<Resume>,
    /// Read to its end (a closed shard whose iterator ran out).
    finished: bool,
    /// Consecutive failed batches, for the backoff.
    failures: u32,
}

#[derive(Debug, Clone)]
enum Resume {
    After(String),
    At(String),
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
        let mut shards: BTreeMap<String, Shard> = BTreeMap::new();
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.refresh_shards(&stream_arn, &mut shards).await {
                tracing::warn!(consumer = %self.config.name, %error, "cannot list the stream's shards; retrying");
            }
            let mut delivered = false;
            let ready: Vec<String> = shards
                .iter()
                .filter(|(_, shard)| !shard.finished)
                .filter(|(_, shard)| {
                    shard
                        .parent
                        .as_ref()
                        .and_then(|parent| shards.get(parent))
                        .is_none_or(|parent| parent.finished)
                })
                .map(|(id, _)| id.clone())
                .collect();
            for shard_id in ready {
                let shard = shards.get_mut(&shard_id).expect("listed above");
                match self
                    .poll_shard(&stream_arn, &shard_id, shard, &*handler)
                    .await
                {
                    Ok(had_records) => delivered |= had_records,
                    Err(error) => {
                        shard.failures += 1;
                        let delay = self.config.retry.delay(shard.failures);
                        tracing::warn!(consumer = %self.config.name, shard = %shard_id, %error, retry_in_ms = delay.as_millis() as u64, "stream read failed");
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = &mut shutdown => return Ok(()),
                        }
                    }
                }
            }
            if !delivered {
                tokio::select! {
                    () = tokio::time::sleep(self.config.idle_wait) => {}
                    () = &mut shutdown => return Ok(()),
                }
            } else if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
                return Ok(());
            }
        }
    }

    /// Adds the shards the stream lists that the poller does not know yet.
    async fn refresh_shards(
        &self,
        stream_arn: &str,
        shards: &mut BTreeMap<String, Shard>,
    ) -> Result<(), BoxError> {
        let mut start: Option<String> = None;
        loop {
            let out = self
                .source
                .streams
                .describe_stream()
                .stream_arn(stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| aws::describe("DynamoDB Streams DescribeStream", &e))?;
            let Some(description) = out.stream_description() else {
                return Ok(());
            };
            for listed in description.shards() {
                let Some(id) = listed.shard_id() else {
                    continue;
                };
                shards.entry(id.to_owned()).or_insert_with(|| Shard {
                    parent: listed.parent_shard_id().map(str::to_owned),
                    ..Shard::default()
                });
            }
            match description.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => return Ok(()),
            }
        }
    }

    /// One `GetRecords` on one shard and, if it returned records, one handler call. Returns
    /// whether there were records.
    async fn poll_shard(
        &self,
        stream_arn: &str,
        shard_id: &str,
        shard: &mut Shard,
        handler: &dyn StreamHandler,
    ) -> Result<bool, BoxError> {
        let iterator = match shard.iterator.take() {
            Some(iterator) => iterator,
            None => self.new_iterator(stream_arn, shard_id, shard).await?,
        };
        let out = match self
            .source
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(self.config.batch_size)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) => {
                match err.code() {
                    // A new iterator from the saved position continues where this one was.
                    Some("ExpiredIteratorException") => return Ok(false),
                    Some("TrimmedDataAccessException") => {
                        tracing::warn!(consumer = %self.config.name, shard = %shard_id, "records were trimmed before they were read; continuing from the oldest kept");
                        shard.position = None;
                        return Ok(false);
                    }
                    _ => {}
                }
                return Err(aws::describe("DynamoDB Streams GetRecords", &err).into());
            }
        };
        let next = out.next_shard_iterator().map(str::to_owned);
        let records = out.records();
        if records.is_empty() {
            shard.finished = next.is_none();
            shard.iterator = next;
            return Ok(false);
        }
        let event = lambda_event(records, stream_arn, &self.source.region);
        let sequence_numbers: Vec<String> = event
            .records
            .iter()
            .map(|r| r.change.sequence_number.clone().unwrap_or_default())
            .collect();
        let failed_at: Option<String> = match handler.handle(event).await {
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
                shard.failures = 0;
                shard.position = sequence_numbers.last().cloned().map(Resume::After);
                shard.finished = next.is_none();
                shard.iterator = next;
                Ok(true)
            }
            Some(failed) => {
                let committed = sequence_numbers
                    .iter()
                    .filter(|s| compare_sequence_numbers(s, &failed).is_lt())
                    .count();
                shard.position = Some(Resume::At(failed.clone()));
                Err(format!(
                    "batch failed at record {failed} ({committed} of {} records before it committed)",
                    sequence_numbers.len()
                )
                .into())
            }
        }
    }

    async fn new_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        shard: &Shard,
    ) -> Result<String, BoxError> {
        let request = self
            .source
            .streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard_id);
        let request = match &shard.position {
            Some(Resume::After(sequence)) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            Some(Resume::At(sequence)) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(sequence),
            None => request.shard_iterator_type(match self.config.start {
                StartPosition::TrimHorizon => ShardIteratorType::TrimHorizon,
                StartPosition::Latest => ShardIteratorType::Latest,
            }),
        };
        let out = request
            .send()
            .await
            .map_err(|e| aws::describe("DynamoDB Streams GetShardIterator", &e))?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| format!("no iterator for shard {shard_id}").into())
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
