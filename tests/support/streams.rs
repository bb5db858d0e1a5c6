//! Stream batches in the shape Lambda delivers and convergence checks, for the tests and
//! benchmarks of the stream Lambdas; the stored events themselves are the test kit's.

use orders_domain::OrderId;
use orders_projections::stream::{DynamoDbEvent, DynamoDbEventResponse};
use orders_store::{EventStore, ReadModelStore, StoredEvent};
use orders_testkit::stored::insert_record;

pub use orders_testkit::fixtures::{created_by, new_order_id};
pub use orders_testkit::stored::{append, event, folded_view, lifecycle, raw_event};

pub const STREAM_ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders-events/stream/2026-01-01T00:00:00.000";

/// The moto server the test command started (EventBridge and SQS). Missing fails the test.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "MOTO_ENDPOINT is not set: the moto server is not running. Run ./scripts/test.sh, \
             which installs and starts it, or wrap the command in ./scripts/moto.sh with ..."
        )
    })
}

/// A batch of `INSERT` records for `events` (in this order), with the sequence numbers
/// `first_sequence`, `first_sequence + 1`, ...
pub fn batch(events: &[&StoredEvent], first_sequence: u64) -> DynamoDbEvent {
    let mut batch = DynamoDbEvent::default();
    batch.records = events
        .iter()
        .zip(first_sequence..)
        .map(|(event, sequence)| insert_record(event, &sequence.to_string(), STREAM_ARN))
        .collect();
    batch
}

/// The sequence number the response names, if any (never more than one).
pub fn failed_sequence(response: &DynamoDbEventResponse) -> Option<u64> {
    assert!(response.batch_item_failures.len() <= 1, "{response:?}");
    response
        .batch_item_failures
        .first()
        .map(|f| f.item_identifier.as_deref().unwrap().parse().unwrap())
}

/// Asserts the order's view equals the fold of its events in the event store.
pub async fn assert_converged(events: &dyn EventStore, views: &dyn ReadModelStore, id: OrderId) {
    let expected = folded_view(events, id).await;
    assert!(expected.is_some(), "order {id} has events that make a view");
    assert_eq!(views.get(id).await.unwrap(), expected, "order {id}");
}
