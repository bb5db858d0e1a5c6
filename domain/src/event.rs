//! Events: the facts an order records, and their stored form.
//!
//! The stored form is `(eventType, schemaVersion, data)`. Every payload has a schema version;
//! decoding runs the stored payload through the [`Upcaster`] until it reaches the version this
//! build writes, so events written by older code still load.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::values::{CancelReason, Currency, CustomerId, Items, Money, Timestamp};

/// An event with the instant it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    pub occurred_at: Timestamp,
    pub data: EventData,
}

/// What happened. The variant names are the stored `eventType` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    OrderCreated {
        customer_id: CustomerId,
        currency: Currency,
        items: Items,
        total: Money,
    },
    OrderConfirmed,
    OrderCancelled {
        reason: Option<CancelReason>,
    },
    OrderShipped,
}

pub const ORDER_CREATED: &str = "OrderCreated";
pub const ORDER_CONFIRMED: &str = "OrderConfirmed";
pub const ORDER_CANCELLED: &str = "OrderCancelled";
pub const ORDER_SHIPPED: &str = "OrderShipped";

/// The schema version this build writes, per event type; `None` for a type it does not know.
pub fn current_schema_version(event_type: &str) -> Option<u32> {
    match event_type {
        ORDER_CREATED | ORDER_CONFIRMED | ORDER_CANCELLED | ORDER_SHIPPED => Some(1),
        _ => None,
    }
}

/// An event payload in its stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub event_type: &'static str,
    pub schema_version: u32,
    pub data: Value,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("{event_type} payload (schema {schema_version}) is invalid: {reason}")]
    InvalidPayload {
        event_type: String,
        schema_version: u32,
        reason: String,
    },
    #[error(
        "{event_type} schema {schema_version} is newer than this build understands ({current})"
    )]
    FutureSchema {
        event_type: String,
        schema_version: u32,
        current: u32,
    },
    #[error("{event_type} schema {schema_version} has no upcaster")]
    NoUpcaster {
        event_type: String,
        schema_version: u32,
    },
}

// Schema 1 payloads. Field names are the stored (and published) JSON names.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrderCreatedV1 {
    customer_id: CustomerId,
    currency: Currency,
    items: Items,
    total: Money,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderCancelledV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<CancelReason>,
}

impl EventData {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::OrderCreated { .. } => ORDER_CREATED,
            Self::OrderConfirmed => ORDER_CONFIRMED,
            Self::OrderCancelled { .. } => ORDER_CANCELLED,
            Self::OrderShipped => ORDER_SHIPPED,
        }
    }

    /// The stored form, at the current schema version.
    pub fn encode(&self) -> EncodedEvent {
        let data = match self {
            Self::OrderCreated {
                customer_id,
                currency,
                items,
                total,
            } => serde_json::to_value(OrderCreatedV1 {
                customer_id: customer_id.clone(),
                currency: *currency,
                items: items.clone(),
                total: *total,
            }),
            Self::OrderCancelled { reason } => serde_json::to_value(OrderCancelledV1 {
                reason: reason.clone(),
            }),
            Self::OrderConfirmed | Self::OrderShipped => Ok(Value::Object(Default::default())),
        }
        .expect("event payloads are plain data and always serialize");
        let event_type = self.event_type();
        let schema_version =
            current_schema_version(event_type).expect("every variant has a schema");
        EncodedEvent {
            event_type,
            schema_version,
            data,
        }
    }
}

/// One upcasting step: turns a payload of schema `from` into schema `from + 1`.
pub type UpcastStep = fn(Value) -> Result<Value, String>;

/// Lifts stored payloads to the current schema, one version at a time, then decodes them.
#[derive(Debug, Clone, Default)]
pub struct Upcaster {
    steps: Vec<(&'static str, u32, UpcastStep)>,
}

/// Production's chain. Every event type is still at its first schema, so it is empty; when a
/// payload changes, its step goes here and `current_schema_version` moves up by one.
static CURRENT: LazyLock<Upcaster> = LazyLock::new(Upcaster::default);

impl Upcaster {
    pub fn current() -> &'static Upcaster {
        &CURRENT
    }

    /// Adds the step that lifts `event_type` from schema `from` to `from + 1`.
    pub fn with_step(mut self, event_type: &'static str, from: u32, step: UpcastStep) -> Self {
        self.steps.push((event_type, from, step));
        self
    }

    /// Decodes a stored payload. `Ok(None)` means an event type this build does not know:
    /// the caller still counts it (it advances the version) but cannot apply it.
    pub fn decode(
        &self,
        event_type: &str,
        schema_version: u32,
        data: &Value,
    ) -> Result<Option<EventData>, DecodeError> {
        let Some(current) = current_schema_version(event_type) else {
            return Ok(None);
        };
        if schema_version > current {
            return Err(DecodeError::FutureSchema {
                event_type: event_type.to_owned(),
                schema_version,
                current,
            });
        }
        let invalid = |version: u32, reason: String| DecodeError::InvalidPayload {
            event_type: event_type.to_owned(),
            schema_version: version,
            reason,
        };
        // Borrowed unless a step has to rewrite it: the common case (current schema) copies nothing.
        let mut data = Cow::Borrowed(data);
        for version in schema_version..current {
            let (_, _, step) = self
                .steps
                .iter()
                .find(|(t, from, _)| *t == event_type && *from == version)
                .ok_or_else(|| DecodeError::NoUpcaster {
                    event_type: event_type.to_owned(),
                    schema_version: version,
                })?;
            let lifted = step(data.into_owned()).map_err(|reason| invalid(version, reason))?;
            data = Cow::Owned(lifted);
        }
        let data: &Value = &data;
        let decoded = match event_type {
            ORDER_CREATED => OrderCreatedV1::deserialize(data).map(|p| EventData::OrderCreated {
                customer_id: p.customer_id,
                currency: p.currency,
                items: p.items,
                total: p.total,
            }),
            ORDER_CANCELLED => OrderCancelledV1::deserialize(data)
                .map(|p| EventData::OrderCancelled { reason: p.reason }),
            ORDER_CONFIRMED => Ok(EventData::OrderConfirmed),
            ORDER_SHIPPED => Ok(EventData::OrderShipped),
            _ => unreachable!("current_schema_version knows exactly these types"),
        };
        decoded
            .map(Some)
            .map_err(|e| invalid(current, e.to_string()))
    }
}
