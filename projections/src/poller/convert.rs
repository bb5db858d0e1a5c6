//! Stream records → the `DynamoDbEvent` Lambda would deliver for them, field by field, so the
//! poller hands the handlers exactly what an event source mapping would.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{EventRecord, StreamViewType};
use aws_sdk_dynamodbstreams::types::Record;

use crate::stream::DynamoDbEvent;

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
