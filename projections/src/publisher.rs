//! The publisher: sends every stored event to the bus as one entry, with EventBridge
//! `PutEvents` semantics (DESIGN §6).
//!
//! - Entry: `Source` (configurable, default `orders`), `DetailType` = the `eventType`,
//!   `Detail` = the envelope JSON (eventId, orderId, version, eventType, occurredAt,
//!   schemaVersion, data, metadata).
//! - Batches: at most [`MAX_BATCH_ENTRIES`] entries and [`MAX_BATCH_BYTES`] bytes, counted as
//!   EventBridge counts them. An entry that alone exceeds the limit can never be sent and is
//!   reported as failed at once.
//! - `PutEvents` can accept part of a batch: each entry's result is checked (the
//!   `FailedEntryCount` case) and only the failed entries are resent, with exponential backoff
//!   and jitter, a bounded number of times. What still fails is reported per event, so the
//!   caller can resume from the first of them.
//!
//! Delivery is at-least-once: a retried call may duplicate entries the bus had accepted
//! before failing. Subscribers dedupe on `eventId`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use orders_domain::OrderId;
use orders_store::StoredEvent;
use thiserror::Error;
use uuid::Uuid;

pub use crate::backoff::RetryPolicy;

/// EventBridge's `PutEvents` limit on entries per call.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// EventBridge's `PutEvents` limit on a call's total entry size (256 KB).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// One `PutEventsRequestEntry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEntry {
    pub source: String,
    pub detail_type: String,
    /// A JSON object, as a string (as `PutEvents` takes it).
    pub detail: String,
    /// `None`: the account's default bus.
    pub event_bus_name: Option<String>,
}

impl BusEntry {
    /// The entry's size as EventBridge counts it against the 256 KB limit: the UTF-8 bytes of
    /// `Source`, `DetailType` and `Detail` (we send no `Time` or `Resources`).
    pub fn size(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

/// One `PutEventsResultEntry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    /// Accepted; `event_id` is the bus's own id for it, if it assigns one.
    Accepted { event_id: Option<String> },
    /// Rejected, with EventBridge's `ErrorCode` and `ErrorMessage`.
    Failed { code: String, message: String },
}

/// A whole `PutEvents` call failed.
#[derive(Debug, Error)]
pub enum BusError {
    /// Throttled, unreachable or a server error: every entry of the call is retried.
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
    /// Refused as a whole (validation, permissions): resending the same call cannot help, so
    /// its entries are reported as failed without retrying.
    #[error("the bus rejected the request: {0}")]
    Rejected(String),
}

/// The bus port, mirroring EventBridge `PutEvents`: adapters are EventBridge and [`LocalBus`].
///
/// [`LocalBus`]: crate::local_bus::LocalBus
#[async_trait]
pub trait Bus: Send + Sync {
    /// Sends up to [`MAX_BATCH_ENTRIES`] entries. `Ok` holds one result per entry, in order.
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError>;
}

#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// The entries' `Source` (`EVENT_SOURCE`).
    pub source: String,
    /// The target bus (`EVENT_BUS_NAME`); `None` for the default bus.
    pub event_bus_name: Option<String>,
    pub retry: RetryPolicy,
    /// `PutEvents` calls in flight at once. Entries are unordered on EventBridge anyway; 1
    /// keeps a local file in feed order.
    pub max_concurrent_batches: usize,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            source: "orders".to_owned(),
            event_bus_name: None,
            retry: RetryPolicy::default(),
            max_concurrent_batches: 4,
        }
    }
}

/// An event that was not published, after the retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEvent {
    /// Its index in the slice given to [`Publisher::publish`].
    pub index: usize,
    pub event_id: Uuid,
    pub order_id: OrderId,
    pub version: u64,
    /// The bus's `ErrorCode`, or one of ours: `EntryTooLarge`, `BusUnavailable`,
    /// `BusRejected`, `InvalidResponse`.
    pub code: String,
    pub message: String,
}

/// Some events were not published. The rest were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishError {
    /// In input order.
    pub failed: Vec<FailedEvent>,
}

impl PublishError {
    /// The input index of the first unpublished event: where a retry must resume.
    pub fn first_failure(&self) -> usize {
        self.failed.first().map_or(0, |f| f.index)
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} event(s) not published", self.failed.len())?;
        if let Some(first) = self.failed.first() {
            write!(
                f,
                "; first: event {} of order {} ({}: {})",
                first.version, first.order_id, first.code, first.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for PublishError {}

/// Sends stored events to a [`Bus`]. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    bus: Arc<dyn Bus>,
    config: PublisherConfig,
}

impl Publisher {
    pub fn new(bus: Arc<dyn Bus>, config: PublisherConfig) -> Self {
        Self { bus, config }
    }

    /// The bus entry for one event.
    pub fn entry(&self, event: &StoredEvent) -> BusEntry {
        BusEntry {
            source: self.config.source.clone(),
            detail_type: event.event_type.clone(),
            detail: serde_json::to_string(event)
                .expect("an envelope is plain JSON data and always serializes"),
            event_bus_name: self.config.event_bus_name.clone(),
        }
    }

    /// Publishes every event at least once, or reports which ones could not be published.
    pub async fn publish(&self, events: &[StoredEvent]) -> Result<(), PublishError> {
        let entries: Vec<BusEntry> = events.iter().map(|e| self.entry(e)).collect();
        let mut failed = Vec::new();
        let mut pending = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if entry.size() > MAX_BATCH_BYTES {
                let message = format!(
                    "the entry is {} bytes; PutEvents takes at most {MAX_BATCH_BYTES}",
                    entry.size()
                );
                failed.push(failure(events, i, "EntryTooLarge", message));
            } else {
                pending.push(i);
            }
        }

        let mut attempt = 1;
        while !pending.is_empty() {
            let calls = futures::stream::iter(batches(&entries, &pending))
                .map(|batch| {
                    let request: Vec<BusEntry> =
                        batch.iter().map(|&i| entries[i].clone()).collect();
                    async move { (batch, self.bus.put_events(&request).await) }
                })
                .buffer_unordered(self.config.max_concurrent_batches.max(1))
                .collect::<Vec<_>>()
                .await;

            // (index, code, message) of every entry worth another attempt.
            let mut retry: Vec<(usize, String, String)> = Vec::new();
            for (batch, outcome) in calls {
                match outcome {
                    Ok(results) if results.len() == batch.len() => {
                        for (i, result) in batch.into_iter().zip(results) {
                            if let EntryResult::Failed { code, message } = result {
                                retry.push((i, code, message));
                            }
                        }
                    }
                    Ok(results) => {
                        let message = format!(
                            "the bus answered {} results for {} entries",
                            results.len(),
                            batch.len()
                        );
                        retry.extend(
                            batch
                                .into_iter()
                                .map(|i| (i, "InvalidResponse".to_owned(), message.clone())),
                        );
                    }
                    Err(BusError::Unavailable(message)) => retry.extend(
                        batch
                            .into_iter()
                            .map(|i| (i, "BusUnavailable".to_owned(), message.clone())),
                    ),
                    Err(BusError::Rejected(message)) => failed.extend(
                        batch
                            .into_iter()
                            .map(|i| failure(events, i, "BusRejected", message.clone())),
                    ),
                }
            }
            if retry.is_empty() {
                break;
            }
            if attempt >= self.config.retry.max_attempts {
                failed.extend(
                    retry
                        .into_iter()
                        .map(|(i, code, message)| failure(events, i, &code, message)),
                );
                break;
            }
            let delay = self.config.retry.delay(attempt);
            tracing::debug!(
                entries = retry.len(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                "bus entries failed; retrying them"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
            pending = retry.into_iter().map(|(i, ..)| i).collect();
            pending.sort_unstable();
        }

        if failed.is_empty() {
            return Ok(());
        }
        failed.sort_by_key(|f| f.index);
        for f in &failed {
            let event = &events[f.index];
            tracing::warn!(
                orderId = %event.order_id,
                correlationId = %event.metadata.correlation_id,
                eventId = %event.event_id,
                version = event.version,
                code = %f.code,
                message = %f.message,
                "event not published"
            );
        }
        Err(PublishError { failed })
    }
}

fn failure(events: &[StoredEvent], index: usize, code: &str, message: String) -> FailedEvent {
    let event = &events[index];
    FailedEvent {
        index,
        event_id: event.event_id,
        order_id: event.order_id,
        version: event.version,
        code: code.to_owned(),
        message,
    }
}

/// Splits `pending` (indexes into `entries`, each within the byte limit on its own) into
/// `PutEvents` calls, in order, each within both limits.
fn batches(entries: &[BusEntry], pending: &[usize]) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for &i in pending {
        let size = entries[i].size();
        match batches.last_mut() {
            Some(batch) if batch.len() < MAX_BATCH_ENTRIES && bytes + size <= MAX_BATCH_BYTES => {
                batch.push(i);
                bytes += size;
            }
            _ => {
                batches.push(vec![i]);
                bytes = size;
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests;
