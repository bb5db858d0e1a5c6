//! Events in the store's envelope, and what tests do with them: append an order's events as
//! the command side would, and fold them into the view the read model must converge to.

use orders_domain::{EventData, OrderEvent, OrderId, OrderState};
use orders_store::{
    AppendRequest, ChangeFeed, EventMetadata, EventStore, OrderView, StoredEvent, fold,
};
use serde_json::Value;
use uuid::Uuid;

use crate::fixtures::{at, created};

pub fn metadata() -> EventMetadata {
    EventMetadata {
        correlation_id: "corr-test".to_owned(),
        causation_id: "cause-test".to_owned(),
        idempotency_key: None,
        source: "test".to_owned(),
    }
}

/// A domain event of `order_id`, stored at `version` and stamped [`at`]`(version * 1000)`.
pub fn event(order_id: OrderId, version: u64, data: EventData) -> StoredEvent {
    let occurred_at = at(version as i64 * 1000);
    StoredEvent::new(
        order_id,
        version,
        Uuid::now_v7(),
        &OrderEvent { occurred_at, data },
        metadata(),
    )
}

/// A stored event with any type and payload (unknown types, undecodable payloads).
pub fn raw_event(
    order_id: OrderId,
    version: u64,
    event_type: &str,
    schema_version: u32,
    data: Value,
) -> StoredEvent {
    StoredEvent {
        event_type: event_type.to_owned(),
        schema_version,
        data,
        ..event(order_id, version, EventData::OrderConfirmed)
    }
}

/// Created, confirmed, shipped.
pub fn lifecycle(order_id: OrderId) -> Vec<StoredEvent> {
    vec![
        event(order_id, 1, created()),
        event(order_id, 2, EventData::OrderConfirmed),
        event(order_id, 3, EventData::OrderShipped),
    ]
}

/// Appends one order's contiguous events, as the command side would.
pub async fn append<S: EventStore + ?Sized>(store: &S, events: &[StoredEvent]) {
    let first = &events[0];
    store
        .append(AppendRequest {
            order_id: first.order_id,
            expected_version: first.version - 1,
            events: events.to_vec(),
            idempotency: None,
            now: first.occurred_at,
        })
        .await
        .unwrap();
}

/// The view the read model must converge to: the fold of all the order's stored events.
pub async fn folded_view<S: EventStore + ?Sized>(
    store: &S,
    order_id: OrderId,
) -> Option<OrderView> {
    let history = store.load(order_id, None).await.unwrap();
    OrderView::from_state(order_id, fold(OrderState::default(), &history).unwrap())
}

/// The change feed's last position (0 when it is empty).
pub async fn feed_head<S: ChangeFeed + ?Sized>(feed: &S) -> u64 {
    feed.read_after(0, usize::MAX)
        .await
        .unwrap()
        .last()
        .map_or(0, |e| e.position)
}

/// The `INSERT` record Lambda delivers for the append of `event` (with `NEW_IMAGE`), for
/// tests and benchmarks that feed the stream handlers without a stream.
pub fn insert_record(
    event: &StoredEvent,
    sequence_number: &str,
    stream_arn: &str,
) -> aws_lambda_events::event::dynamodb::EventRecord {
    let new_image: serde_dynamo::Item =
        serde_dynamo::to_item(event).expect("an envelope is plain data and always encodes");
    let keys: serde_dynamo::Item = ["orderId", "version"]
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), new_image.get(key)?.clone())))
        .collect::<std::collections::HashMap<_, _>>()
        .into();
    let size_bytes = serde_json::to_vec(&new_image).map_or(0, |bytes| bytes.len() as i64);
    let mut record = aws_lambda_events::event::dynamodb::EventRecord::default();
    record.event_id = event.event_id.simple().to_string();
    record.event_name = "INSERT".to_owned();
    record.event_version = Some("1.1".to_owned());
    record.event_source = Some("aws:dynamodb".to_owned());
    record.aws_region = "us-east-1".to_owned();
    record.event_source_arn = Some(stream_arn.to_owned());
    record.change.approximate_creation_date_time =
        chrono::DateTime::from_timestamp_millis(event.occurred_at.millis()).unwrap_or_default();
    record.change.keys = keys;
    record.change.new_image = new_image;
    record.change.sequence_number = Some(sequence_number.to_owned());
    record.change.size_bytes = size_bytes;
    record.change.stream_view_type =
        Some(aws_lambda_events::event::dynamodb::StreamViewType::NewImage);
    record
}
