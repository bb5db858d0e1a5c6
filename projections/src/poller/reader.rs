//! The stream the poller reads: [`StreamReader`], the events table's stream and the clients
//! that read it, and [`StreamsApi`], the DynamoDB Streams calls the poller makes on it (the
//! seam the scheduling tests script).

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use orders_store::aws;

use super::BoxError;
use super::local_repair::EmptyMapFix;

/// The events table's stream, and the clients to read it.
#[derive(Clone, Debug)]
pub struct StreamReader {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: StreamsClient,
    table: String,
    pub(super) region: String,
}

impl StreamReader {
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
                aws_sdk_dynamodbstreams::config::SharedHttpClient::new(EmptyMapFix(http)),
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

/// The DynamoDB Streams calls the poller makes: [`StreamReader`] makes them on the Streams
/// API; the tests of the shard scheduling (`poller/tests.rs`) script them.
#[async_trait]
pub(super) trait StreamsApi: Send + Sync {
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
pub(super) struct ShardPage {
    pub(super) shards: Vec<ListedShard>,
    /// `LastEvaluatedShardId`: there are more shards after it.
    pub(super) last_evaluated: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct ListedShard {
    pub(super) id: String,
    pub(super) parent: Option<String>,
    /// The shard has an `EndingSequenceNumber`: it receives no more records.
    pub(super) closed: bool,
}

#[derive(Debug, Default)]
pub(super) struct RecordPage {
    pub(super) records: Vec<Record>,
    /// `NextShardIterator`; `None` when the shard is closed and read to its end.
    pub(super) next_iterator: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum IteratorStart<'a> {
    TrimHorizon,
    Latest,
    After(&'a str),
    At(&'a str),
}

/// A failed Streams call, sorted by what the poller does about it.
#[derive(Debug, thiserror::Error)]
pub(super) enum StreamsError {
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
impl StreamsApi for StreamReader {
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
