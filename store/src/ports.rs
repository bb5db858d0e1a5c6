//! The storage ports. The application layer and the projections depend on these traits only;
//! each backend (SQLite, DynamoDB) implements all of them.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use orders_domain::{CustomerId, OrderId, OrderStatus, Timestamp};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{FeedEntry, OrderView, StoredEvent};

/// Why a store call failed, in terms the caller can act on.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Throttled, busy or unreachable: worth retrying later (HTTP 503 with `Retry-After`).
    #[error("the store is unavailable: {reason}")]
    Unavailable {
        reason: String,
        retry_after: Duration,
    },
    /// Stored data that cannot be read back (an undecodable event, a malformed record).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Anything else: a bug or a misconfiguration.
    #[error("store failure: {0}")]
    Internal(String),
}

/// An `Idempotency-Key` as a client sends it, 1..=255 printable ASCII characters; or, made by
/// [`within`](Self::within), the key of its record within a scope (one caller's keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;
    /// Ends the scope in a scoped record key. Not printable ASCII, so no client's key has it.
    pub const SCOPE_SEPARATOR: char = '\u{1f}';

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if (1..=Self::MAX_LEN).contains(&raw.len())
            && raw.bytes().all(|b| (0x20..=0x7e).contains(&b))
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1 to 255 printable ASCII characters")
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The record key of this client key within `scope`: `{scope}\u{1f}{key}`. Neither part
    /// contains the separator, so a record key splits back into exactly one (scope, key):
    /// keys of different scopes never collide, nor with unscoped (global) keys, which are
    /// stored as sent. Panics if `scope` contains [`SCOPE_SEPARATOR`](Self::SCOPE_SEPARATOR).
    pub fn within(&self, scope: &str) -> Self {
        assert!(
            !scope.contains(Self::SCOPE_SEPARATOR),
            "an idempotency scope must not contain U+001F"
        );
        Self(format!("{scope}{}{}", Self::SCOPE_SEPARATOR, self.0))
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outcome of the first request made with a key. The response is replayed by rendering
/// the order at `version`, so the body itself need not be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    pub key: IdempotencyKey,
    /// Hex SHA-256 of method, path and canonical body.
    pub fingerprint: String,
    pub order_id: OrderId,
    pub version: u64,
    pub status: u16,
    pub expires_at: Timestamp,
}

/// One command's events, appended all or none.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub order_id: OrderId,
    /// The version the command was decided against; the new events follow it contiguously.
    /// It must be one the caller read (the newest event of a [`EventStore::load`], 0 for a
    /// new order): a version beyond the stream is a caller bug, which a store need not detect
    /// (the DynamoDB store checks only that the next version is free: checking the other side
    /// would cost a `ConditionCheck`, 2 WRU, on every append with a key).
    pub expected_version: u64,
    /// May be empty: a no-op command with an idempotency key stores the record alone.
    pub events: Vec<StoredEvent>,
    /// Committed in the same transaction as the events. Its key must be unused or expired.
    pub idempotency: Option<IdempotencyRecord>,
    /// When the command was decided: a stored record of the same key whose `expires_at` is at
    /// or before it has expired (as for [`IdempotencyStore::get`]). The stores read no clock.
    pub now: Timestamp,
}

#[derive(Debug, Error)]
pub enum AppendError {
    /// Another writer appended first. The caller may re-decide against `current_version`.
    #[error("concurrent write: the order is now at version {current_version}")]
    Conflict { current_version: u64 },
    /// A live record already holds the idempotency key (a concurrent request with the same key).
    #[error("the idempotency key is already in use")]
    IdempotencyKeyInUse,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `request.events` (versions `expected_version + 1 ..`) and the idempotency record
    /// atomically. Nothing is written unless everything is.
    async fn append(&self, request: AppendRequest) -> Result<(), AppendError>;

    /// The order's events in version order, up to and including `up_to` if given.
    async fn load(
        &self,
        order_id: OrderId,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError>;
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The live record for `key`. Records past `expires_at` are treated as absent, because
    /// TTL deletion lags.
    async fn get(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
}

/// Which listing of the read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFilter {
    /// GSI `byCustomer`: newest `createdAt` first.
    Customer(CustomerId),
    /// GSI `byStatus`: newest `updatedAt` first.
    Status(OrderStatus),
}

/// Where a listing resumes: the adapter's own key (e.g. DynamoDB's `LastEvaluatedKey`). The
/// HTTP layer wraps it in a signed, opaque cursor; the store never sees a client's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PageKey(pub serde_json::Value);

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: ListFilter,
    pub limit: u32,
    pub after: Option<PageKey>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<OrderView>,
    /// `None` on the last page.
    pub next: Option<PageKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Written,
    /// The stored view was not at the expected version (a concurrent writer got there first).
    VersionMismatch,
}

/// What [`ReadModelScan::delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// No view was at the expected version (a concurrent writer changed it, or it is gone).
    VersionMismatch,
}

/// One conditional write of [`ReadModelStore::put_many`].
#[derive(Debug, Clone)]
pub struct ConditionalPut {
    pub view: OrderView,
    /// As for [`ReadModelStore::put`]: the stored view's version, or `None` for "no view yet".
    pub expected_version: Option<u64>,
}

#[async_trait]
pub trait ReadModelStore: Send + Sync {
    async fn get(&self, order_id: OrderId) -> Result<Option<OrderView>, StoreError>;

    /// The stored views of several orders (absent ones are left out). The projector reads a
    /// whole batch's views at once; a backend overrides this to make it one round trip.
    ///
    /// A view may be a moment behind its newest write (DynamoDB: an eventually consistent read,
    /// half a strong one's capacity), never one that was not written: its callers write on
    /// condition of the version read, so a stale view only loses its condition, and they settle
    /// that order from [`ReadModelStore::get`], which reads the newest.
    async fn get_many(
        &self,
        order_ids: &[OrderId],
    ) -> Result<HashMap<OrderId, OrderView>, StoreError> {
        let mut views = HashMap::with_capacity(order_ids.len());
        for &order_id in order_ids {
            if let Some(view) = self.get(order_id).await? {
                views.insert(order_id, view);
            }
        }
        Ok(views)
    }

    /// Several conditional writes, each judged on its own condition; outcomes in input order.
    /// A backend overrides this to batch them (SQLite: one transaction; DynamoDB: concurrent
    /// conditional `PutItem`s, one order's in input order).
    async fn put_many(&self, puts: &[ConditionalPut]) -> Result<Vec<PutOutcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(puts.len());
        for put in puts {
            outcomes.push(self.put(&put.view, put.expected_version).await?);
        }
        Ok(outcomes)
    }

    /// Writes `view` only if the stored view is at `expected_version`, or, for `None`, only if
    /// there is no stored view.
    async fn put(
        &self,
        view: &OrderView,
        expected_version: Option<u64>,
    ) -> Result<PutOutcome, StoreError>;

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;
}

/// The embedded change feed: every event in append order, by global position.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Up to `limit` entries with a position greater than `after`, in position order.
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<FeedEntry>, StoreError>;

    /// Wakes when this process appends (a cheap hint; consumers still poll for other writers).
    fn watch_appends(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// Named consumers' positions in the change feed.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The last position `consumer` has fully processed (0 if none).
    async fn load_checkpoint(&self, consumer: &str) -> Result<u64, StoreError>;
    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError>;
}

/// Where a rebuild's scan of the event log stands: the key of the last event read. A scan
/// resumes strictly after it; any event's key will do, which is what lets a replay checkpoint
/// at an order boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventKey {
    pub order_id: OrderId,
    pub version: u64,
}

impl EventKey {
    pub fn of(event: &StoredEvent) -> Self {
        Self {
            order_id: event.order_id,
            version: event.version,
        }
    }
}

/// One of the disjoint parts a rebuild scan is split into, so that parts can be read in
/// parallel. Every order falls wholly in one part, in the event log and in the read model alike.
/// DynamoDB reads part `index` of `total` with `Segment`/`TotalSegments` (its own hash split of
/// the keys); SQLite reads the order ids in `[from, to)` (bounds fixed when the scan is planned,
/// so that a resumed scan reads the same parts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanSegment {
    pub index: u32,
    pub total: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<OrderId>,
}

/// A page of a scan: items, and where the next page starts (`None` when the part is done).
/// A page may be empty and still have a next page (DynamoDB stops at 1 MB read, matched or not).
#[derive(Debug, Clone)]
pub struct ScanPage<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

/// The event log read whole, for rebuilds (`orders replay`).
///
/// Within a part, a scan returns each order's events together and in version order on both
/// backends (DynamoDB keeps a partition's items in sort-key order; SQLite reads its
/// (order_id, version) index). Callers must still check, not assume: see the replay engine.
#[async_trait]
pub trait EventScan: Send + Sync {
    /// Splits the log into at most `total` parts (at least 1; fewer where there are fewer
    /// orders than parts) that together cover every order id.
    async fn plan_scan(&self, total: u32) -> Result<Vec<ScanSegment>, StoreError>;

    /// Up to `limit` events of `segment` after `after`, in (order, version) order.
    async fn scan_events(
        &self,
        segment: &ScanSegment,
        after: Option<EventKey>,
        limit: usize,
    ) -> Result<ScanPage<StoredEvent, EventKey>, StoreError>;

    /// Roughly how many events the log holds, for progress estimates (DynamoDB's item count is
    /// refreshed about every six hours). `None` if the backend cannot tell.
    async fn estimated_events(&self) -> Result<Option<u64>, StoreError>;

    /// Which of `order_ids` have any event.
    async fn orders_with_events(
        &self,
        order_ids: &[OrderId],
    ) -> Result<std::collections::HashSet<OrderId>, StoreError>;
}

/// The read model read whole, and its one destructive write, for rebuilds.
#[async_trait]
pub trait ReadModelScan: Send + Sync {
    /// Up to `limit` views of `segment` (a part planned by [`EventScan::plan_scan`]) after the
    /// order `after`.
    async fn scan_views(
        &self,
        segment: &ScanSegment,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<ScanPage<OrderView, OrderId>, StoreError>;

    /// Deletes the view of `order_id` only if it is at `expected_version` (a view with no
    /// events behind it: an orphan).
    async fn delete(
        &self,
        order_id: OrderId,
        expected_version: u64,
    ) -> Result<DeleteOutcome, StoreError>;
}
