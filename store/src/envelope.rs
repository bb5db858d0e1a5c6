//! The stored event: one record per event, the same in every backend (DESIGN §3).

use orders_domain::{DecodeError, OrderEvent, OrderId, Timestamp, Upcaster};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who caused an event and why; carried with it to every consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    pub correlation_id: String,
    pub causation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub source: String,
}

/// The envelope of one stored event. Its JSON form is the record of DESIGN §3 and the
/// `Detail` that the publisher sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    pub order_id: OrderId,
    pub version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: Timestamp,
    pub data: serde_json::Value,
    pub metadata: EventMetadata,
}

impl StoredEvent {
    /// Encodes a domain event at the current schema version.
    pub fn new(
        order_id: OrderId,
        version: u64,
        event_id: Uuid,
        event: &OrderEvent,
        metadata: EventMetadata,
    ) -> Self {
        let encoded = event.data.encode();
        Self {
            order_id,
            version,
            event_id,
            event_type: encoded.event_type.to_owned(),
            schema_version: encoded.schema_version,
            occurred_at: event.occurred_at,
            data: encoded.data,
            metadata,
        }
    }

    /// Decodes through the upcaster. `Ok(None)`: an event type this build does not know.
    pub fn decode(&self) -> Result<Option<OrderEvent>, DecodeError> {
        let data = Upcaster::current().decode(&self.event_type, self.schema_version, &self.data)?;
        Ok(data.map(|data| OrderEvent {
            occurred_at: self.occurred_at,
            data,
        }))
    }
}

/// An event with its position in the embedded change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub position: u64,
    pub event: StoredEvent,
}
