//! The publisher: sends every stored event to the bus as one entry, with EventBridge
//! `PutEvents` semantics (DESIGN §6).
//!
//! - Entry: `Source` (configurable, default `orders`), `DetailType` = the `eventType`,
//!   `Detail` = the envelope JSON (eventId, orderId, version, eventType, occurredAt,
//!   schemaVersion, data, metadata).
//! - Order: one order's events go out in the order they are given (the stream and the feed
//!   give them in version order). An event is sent only once every earlier event of its order
//!   has been accepted, so a call never holds two events of one order and no two calls in
//!   flight do either. EventBridge does not promise to deliver a call's entries to targets in
//!   entry order, so sending v1 and v2 in the same call would not keep them in order; they
//!   go in consecutive calls instead.
//! - Batches: the events that may go now (at most one per order) are packed, in input order,
//!   into calls of at most [`MAX_BATCH_ENTRIES`] entries and [`MAX_BATCH_BYTES`] bytes,
//!   counted as EventBridge counts them, several calls at once. So 100 events of 100 orders
//!   take 10 calls, 10 orders of 3 events 3 calls, but 100 events of one order 100 calls,
//!   one after the other: the price of its order. An entry that alone exceeds the byte limit
//!   can never be sent and fails at once.
//! - `PutEvents` can accept part of a batch: each entry's result is checked (the
//!   `FailedEntryCount` case) and only the failed entries are resent, with exponential backoff
//!   and jitter, a bounded number of times each. Other orders carry on meanwhile, in the same
//!   calls.
//! - An event that still fails stops its order: its later events are not sent in this call
//!   of [`Publisher::publish`] and are reported as failed too ([`PRIOR_EVENT_FAILED`]), so a
//!   subscriber never sees v2 without v1. Everything is reported per event; the lowest failed
//!   index ([`PublishError::first_failure`]) is where the caller resumes (the partial batch
//!   response's `SequenceNumber`, the feed's checkpoint), and the retry from there sends the
//!   held-back events in order.
//!
//! Metrics ([`orders_lambda::metrics`]): the publish lag of each event as its entry is
//! accepted, and each entry the bus refuses, by its code (every attempt counts; a call that
//! failed as a whole counts each of its entries, as `BusUnavailable` or `BusRejected`).
//!
//! Delivery is at-least-once: a retried call may duplicate entries the bus had accepted
//! before failing, and a resumed batch resends the other orders' events after the first
//! failure. Subscribers dedupe on `eventId`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use orders_domain::OrderId;
use orders_lambda::metrics;
use orders_store::StoredEvent;
use thiserror::Error;
use uuid::Uuid;

pub use orders_store::retry::RetryPolicy;

/// EventBridge's `PutEvents` limit on entries per call.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// EventBridge's `PutEvents` limit on a call's total entry size (256 KB).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// The [`FailedEvent::code`] of an event not sent because an earlier event of its order failed.
pub const PRIOR_EVENT_FAILED: &str = "PriorEventFailed";

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

/// The entries' `Source` unless configured (`EVENT_SOURCE`, `orders serve --event-source`).
pub const DEFAULT_BUS_SOURCE: &str = "orders";

#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// The entries' EventBridge `Source` (`EVENT_SOURCE`), e.g. `orders`; not the events'
    /// `metadata.source`, which names the function that wrote them.
    pub bus_source: String,
    /// The target bus (`EVENT_BUS_NAME`); `None` for the default bus.
    pub event_bus_name: Option<String>,
    /// The retries of failed entries (default [`RetryPolicy::PUBLISH`]).
    pub retry: RetryPolicy,
    /// `PutEvents` calls in flight at once. Calls in flight never hold two events of one order
    /// (an order's next event waits until the previous one is accepted), so this trades
    /// throughput against load, not order. 1 makes a local file's lines follow the send order
    /// exactly (across orders too).
    pub max_concurrent_batches: usize,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            bus_source: DEFAULT_BUS_SOURCE.to_owned(),
            event_bus_name: None,
            retry: RetryPolicy::PUBLISH,
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
    /// `BusRejected`, `InvalidResponse`, or [`PRIOR_EVENT_FAILED`] for an event held back
    /// because an earlier event of its order failed.
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
    /// The lowest input index of an unpublished event, whichever order it belongs to and
    /// whenever it failed: where a retry must resume. Every event before it was accepted.
    pub fn first_failure(&self) -> usize {
        self.failed.iter().map(|f| f.index).min().unwrap_or(0)
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} event(s) not published", self.failed.len())?;
        if let Some(first) = self.failed.iter().min_by_key(|f| f.index) {
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
            source: self.config.bus_source.clone(),
            detail_type: event.event_type.clone(),
            detail: serde_json::to_string(event)
                .expect("an envelope is plain JSON data and always serializes"),
            event_bus_name: self.config.event_bus_name.clone(),
        }
    }

    /// Publishes every event at least once, each order's in input order, or reports which
    /// ones could not be published (see the module docs).
    pub async fn publish(&self, events: &[StoredEvent]) -> Result<(), PublishError> {
        let entries: Vec<BusEntry> = events.iter().map(|e| self.entry(e)).collect();
        let mut orders = Orders::new(events);
        // Times each entry was sent.
        let mut attempts = vec![0u32; events.len()];
        let mut failed = Vec::new();

        loop {
            // The next entry of every order still going: at most one per order.
            let mut ready = Vec::new();
            for order in 0..orders.queues.len() {
                let Some(i) = orders.next(order) else {
                    continue;
                };
                if entries[i].size() > MAX_BATCH_BYTES {
                    let message = format!(
                        "the entry is {} bytes; PutEvents takes at most {MAX_BATCH_BYTES}",
                        entries[i].size()
                    );
                    orders.fail(events, i, "EntryTooLarge", message, &mut failed);
                } else {
                    ready.push(i);
                }
            }
            if ready.is_empty() {
                break;
            }
            ready.sort_unstable();

            for &i in &ready {
                attempts[i] += 1;
            }
            let calls = futures::stream::iter(batches(&entries, &ready))
                .map(|batch| {
                    let request: Vec<BusEntry> =
                        batch.iter().map(|&i| entries[i].clone()).collect();
                    async move { (batch, self.bus.put_events(&request).await) }
                })
                .buffer_unordered(self.config.max_concurrent_batches.max(1))
                .collect::<Vec<_>>()
                .await;

            // The most attempts among the entries to resend, for the backoff; 0: none.
            let mut retried = 0;
            for (batch, outcome) in calls {
                for (i, sent) in sent(batch, outcome) {
                    match &sent {
                        Sent::Accepted => {}
                        Sent::Failed { code, .. } => metrics::publish_entry_failed(code),
                        Sent::Rejected { .. } => metrics::publish_entry_failed("BusRejected"),
                    }
                    match sent {
                        Sent::Accepted => {
                            metrics::published(events[i].occurred_at.millis());
                            orders.accepted(i);
                        }
                        Sent::Failed { code, message }
                            if attempts[i] >= self.config.retry.max_attempts =>
                        {
                            orders.fail(events, i, &code, message, &mut failed)
                        }
                        Sent::Failed { .. } => retried = retried.max(attempts[i]),
                        Sent::Rejected { message } => {
                            orders.fail(events, i, "BusRejected", message, &mut failed)
                        }
                    }
                }
            }
            if retried > 0 {
                // One pause for the whole next round, not only for the failed orders: the
                // usual cause is throttling, which is the account's, not an order's.
                let delay = self.config.retry.delay(retried);
                tracing::debug!(
                    attempt = retried,
                    delay_ms = delay.as_millis() as u64,
                    "bus entries failed; retrying them"
                );
                tokio::time::sleep(delay).await;
            }
        }

        if failed.is_empty() {
            return Ok(());
        }
        failed.sort_by_key(|f| f.index);
        Err(PublishError { failed })
    }
}

/// Each order's entries still to send, in input order: the front one is the only one that
/// may be in flight.
struct Orders {
    /// Per order, in order of first appearance: input indexes.
    queues: Vec<VecDeque<usize>>,
    /// Per input index: its order's queue.
    order_of: Vec<usize>,
}

impl Orders {
    fn new(events: &[StoredEvent]) -> Self {
        let mut by_id: HashMap<OrderId, usize> = HashMap::new();
        let mut queues: Vec<VecDeque<usize>> = Vec::new();
        let mut order_of = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let order = *by_id.entry(event.order_id).or_insert_with(|| {
                queues.push(VecDeque::new());
                queues.len() - 1
            });
            queues[order].push_back(i);
            order_of.push(order);
        }
        Self { queues, order_of }
    }

    /// The order's next entry to send, if it has one left.
    fn next(&self, order: usize) -> Option<usize> {
        self.queues[order].front().copied()
    }

    /// Entry `i`, its order's front one, was accepted: the next one may go.
    fn accepted(&mut self, i: usize) {
        let front = self.queues[self.order_of[i]].pop_front();
        debug_assert_eq!(front, Some(i), "only an order's front entry is sent");
    }

    /// Entry `i`, its order's front one, failed for good: it is reported with `code`, and the
    /// order's later entries, never sent, as [`PRIOR_EVENT_FAILED`].
    fn fail(
        &mut self,
        events: &[StoredEvent],
        i: usize,
        code: &str,
        message: String,
        failed: &mut Vec<FailedEvent>,
    ) {
        let queue = std::mem::take(&mut self.queues[self.order_of[i]]);
        debug_assert_eq!(queue.front(), Some(&i), "only an order's front entry fails");
        let event = &events[i];
        tracing::warn!(
            orderId = %event.order_id,
            correlationId = %event.metadata.correlation_id,
            eventId = %event.event_id,
            version = event.version,
            code,
            %message,
            held_back = queue.len().saturating_sub(1),
            "event not published; the order's later events in the batch are not sent"
        );
        failed.push(failure(events, i, code, message));
        let reason = format!(
            "not sent: event {} of the order was not published ({code})",
            event.version
        );
        for later in queue.into_iter().filter(|&later| later != i) {
            let held = &events[later];
            tracing::debug!(
                orderId = %held.order_id,
                correlationId = %held.metadata.correlation_id,
                eventId = %held.event_id,
                version = held.version,
                "event not sent: an earlier event of its order failed"
            );
            failed.push(failure(events, later, PRIOR_EVENT_FAILED, reason.clone()));
        }
    }
}

/// What became of one sent entry.
enum Sent {
    Accepted,
    /// Not accepted, with the bus's `ErrorCode` or ours: worth resending.
    Failed {
        code: String,
        message: String,
    },
    /// The whole call was refused: resending it cannot help.
    Rejected {
        message: String,
    },
}

/// Each entry of a call, with what became of it.
fn sent(batch: Vec<usize>, outcome: Result<Vec<EntryResult>, BusError>) -> Vec<(usize, Sent)> {
    let all = |code: &str, message: String| {
        batch
            .iter()
            .map(|&i| {
                let (code, message) = (code.to_owned(), message.clone());
                (i, Sent::Failed { code, message })
            })
            .collect()
    };
    match outcome {
        Ok(results) if results.len() == batch.len() => batch
            .iter()
            .zip(results)
            .map(|(&i, result)| match result {
                EntryResult::Accepted { .. } => (i, Sent::Accepted),
                EntryResult::Failed { code, message } => (i, Sent::Failed { code, message }),
            })
            .collect(),
        Ok(results) => all(
            "InvalidResponse",
            format!(
                "the bus answered {} results for {} entries",
                results.len(),
                batch.len()
            ),
        ),
        Err(BusError::Unavailable(message)) => all("BusUnavailable", message),
        Err(BusError::Rejected(message)) => batch
            .iter()
            .map(|&i| {
                let message = message.clone();
                (i, Sent::Rejected { message })
            })
            .collect(),
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

/// Splits `pending` (indexes into `entries`, each within the byte limit on its own, at most
/// one per order) into `PutEvents` calls, in order, each within both limits.
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
