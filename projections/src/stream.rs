//! DynamoDB Streams in, partial batch responses out: what the `projector` and `publisher`
//! Lambdas do with each batch of the events table's stream (DESIGN §6, "Stream handling"),
//! and what the local [`poller`](crate::poller) calls with the same payloads.
//!
//! - Each `INSERT` record's `NewImage` is an event item (DESIGN §3); it is decoded with
//!   `serde_dynamo` into the [`StoredEvent`] envelope. The payload goes through the upcaster
//!   where the projector folds it.
//! - `MODIFY` and `REMOVE` are anomalies on an append-only table: logged, never applied or
//!   published, and not failures (retrying cannot change them).
//! - A record that cannot be decoded stops the batch there: the records before it are
//!   processed, and it is reported as failed, so Lambda retries from it until its retry limit
//!   sends it to the on-failure destination. Nothing after it is skipped silently.
//! - The response names the lowest failed `SequenceNumber` (`batchItemFailures`), which is
//!   where Lambda resumes; an empty list commits the whole batch.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
pub use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use orders_store::StoredEvent;
use thiserror::Error;

use crate::consumer::ConsumerHandler;
use crate::projector::Projector;
use crate::publisher::Publisher;

/// The stream event Lambda delivers (`aws_lambda_events`' DynamoDB `Event`).
pub type DynamoDbEvent = Event;

/// A batch that cannot be answered with a partial batch response: Lambda retries all of it.
#[derive(Debug, Error)]
pub enum StreamError {
    /// A record to report has no `SequenceNumber`, so no resume point can be named.
    #[error("stream record {event_id} has no SequenceNumber")]
    NoSequenceNumber { event_id: String },
}

/// The stored events of a batch's `INSERT` records, up to the first undecodable record.
#[derive(Debug, Default)]
pub struct DecodedBatch {
    /// The events, in record order.
    pub events: Vec<StoredEvent>,
    /// For each event, the index of its record in the batch.
    pub record_indexes: Vec<usize>,
    /// The first record that could not be decoded: its index and why. The records after it
    /// are left for the retry that starts at it.
    pub undecodable: Option<(usize, String)>,
}

/// Decodes a batch (see the module docs).
pub fn decode(event: &DynamoDbEvent) -> DecodedBatch {
    let mut batch = DecodedBatch::default();
    for (index, record) in event.records.iter().enumerate() {
        match record.event_name.as_str() {
            "INSERT" => match decode_record(record) {
                Ok(stored) => {
                    batch.events.push(stored);
                    batch.record_indexes.push(index);
                }
                Err(error) => {
                    tracing::error!(
                        eventID = %record.event_id,
                        sequenceNumber = ?record.change.sequence_number,
                        %error,
                        "stream record cannot be decoded; failing the batch from it"
                    );
                    batch.undecodable = Some((index, error));
                    break;
                }
            },
            other => tracing::warn!(
                eventID = %record.event_id,
                eventName = other,
                sequenceNumber = ?record.change.sequence_number,
                keys = ?record.change.keys,
                "the events table is append-only: ignoring a record that is not an INSERT"
            ),
        }
    }
    batch
}

/// One `INSERT` record's `NewImage` as the envelope.
pub fn decode_record(record: &EventRecord) -> Result<StoredEvent, String> {
    if record.change.new_image.is_empty() {
        return Err("the record has no NewImage (is the stream's view type NEW_IMAGE?)".into());
    }
    serde_dynamo::from_item(record.change.new_image.clone()).map_err(|e| e.to_string())
}

/// The partial batch response for `event` when its first failed record is `failed` (an index
/// into `event.records`), or none.
pub fn batch_response(
    event: &DynamoDbEvent,
    failed: Option<usize>,
) -> Result<DynamoDbEventResponse, StreamError> {
    let mut response = DynamoDbEventResponse::default();
    if let Some(index) = failed {
        let record = &event.records[index];
        let sequence_number =
            record
                .change
                .sequence_number
                .clone()
                .ok_or_else(|| StreamError::NoSequenceNumber {
                    event_id: record.event_id.clone(),
                })?;
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// The `projector` function: folds the batch's events into the read model (orders
/// concurrently, each order in version order; see [`Projector::apply_batch`]).
pub async fn project(
    projector: &Projector,
    event: &DynamoDbEvent,
) -> Result<DynamoDbEventResponse, StreamError> {
    consume(projector, event).await
}

/// The `publisher` function: sends the batch's events to the bus (see [`Publisher::publish`]).
pub async fn publish(
    publisher: &Publisher,
    event: &DynamoDbEvent,
) -> Result<DynamoDbEventResponse, StreamError> {
    consume(publisher, event).await
}

/// One stream batch through a consumer: decode, hand the events over (the same
/// [`ConsumerHandler`] the SQLite change feed calls), and answer with the lowest record that
/// was not handled, failed or undecodable.
pub async fn consume(
    consumer: &impl ConsumerHandler,
    event: &DynamoDbEvent,
) -> Result<DynamoDbEventResponse, StreamError> {
    let batch = decode(event);
    if batch.undecodable.is_some() {
        orders_lambda::metrics::decode_failed(consumer.name());
    }
    let failed_event = match consumer.handle(&batch.events).await {
        Ok(()) => None,
        Err(failure) => {
            let record = batch.record_indexes[failure.first_failed];
            tracing::warn!(record, error = %failure.reason, "batch not fully handled");
            Some(record)
        }
    };
    batch_response(event, lowest(failed_event, &batch))
}

/// The lower of a failed event's record and the undecodable record.
fn lowest(failed_event: Option<usize>, batch: &DecodedBatch) -> Option<usize> {
    let undecodable = batch.undecodable.as_ref().map(|(index, _)| *index);
    failed_event.into_iter().chain(undecodable).min()
}

#[cfg(test)]
mod tests;
