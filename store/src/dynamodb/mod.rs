//! DynamoDB adapter: the production backend (DESIGN §3). It implements the same ports as the
//! SQLite adapter and runs the same [`contract`](crate::contract) suite, against DynamoDB Local.
//!
//! Tables (names from `EVENTS_TABLE`, `ORDERS_TABLE`, `IDEMPOTENCY_TABLE`; see [`DynamoTables`]):
//! - **events**, key (`orderId` S, `version` N): one item per event, `data` and `metadata` as
//!   native maps (via `serde_dynamo`). An append is one `TransactWriteItems` (`events.rs`).
//! - **orders**, key `orderId`: the [`OrderView`](crate::OrderView) as item attributes, with the
//!   GSIs `byCustomer` (`customerId`, `createdAt`) and `byStatus` (`status`, `updatedAt`).
//! - **idempotency**, key `idempotencyKey`: the record, with `expiresAt` (epoch seconds, the TTL
//!   attribute) and `expiresAtMillis` (the exact expiry that the code checks).
//!
//! [`create_tables`] creates them; [`client`] builds an SDK client (see [`crate::aws`]: the
//! standard config chain, with timeouts that make an unreachable endpoint fail in seconds).
//!
//! Error mapping (`error.rs`): throttling, server errors, timeouts and connection failures are
//! [`StoreError::Unavailable`] (HTTP 503 with `Retry-After`) after the SDK's bounded retries;
//! a missing table or a rejected request is [`StoreError::Internal`]; an item that does not
//! decode is [`StoreError::Corrupt`].

mod attributes;
mod error;
mod events;
mod read_model;
mod scan;
mod tables;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use orders_domain::{OrderId, Timestamp};

pub use self::tables::{
    TableOutcome, TableStatus, create_read_model_table, create_tables, table_exists,
};
use crate::{
    AppendError, AppendRequest, ConditionalPut, DeleteOutcome, EventKey, EventScan, EventStore,
    IdempotencyKey, IdempotencyRecord, IdempotencyStore, ListQuery, OrderView, Page, PutOutcome,
    ReadModelScan, ReadModelStore, ScanPage, ScanSegment, StoreError, StoredEvent,
};

/// The three table names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoTables {
    pub events: String,
    pub orders: String,
    pub idempotency: String,
}

impl DynamoTables {
    pub const DEFAULT_EVENTS: &'static str = "orders-events";
    pub const DEFAULT_ORDERS: &'static str = "orders-read-model";
    pub const DEFAULT_IDEMPOTENCY: &'static str = "orders-idempotency";

    /// From `EVENTS_TABLE`, `ORDERS_TABLE`, `IDEMPOTENCY_TABLE` (unset or blank: the defaults
    /// `orders-events`, `orders-read-model`, `orders-idempotency`).
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Self {
            events: var("EVENTS_TABLE", Self::DEFAULT_EVENTS),
            orders: var("ORDERS_TABLE", Self::DEFAULT_ORDERS),
            idempotency: var("IDEMPOTENCY_TABLE", Self::DEFAULT_IDEMPOTENCY),
        }
    }
}

impl Default for DynamoTables {
    fn default() -> Self {
        Self {
            events: Self::DEFAULT_EVENTS.to_owned(),
            orders: Self::DEFAULT_ORDERS.to_owned(),
            idempotency: Self::DEFAULT_IDEMPOTENCY.to_owned(),
        }
    }
}

/// An SDK client for DynamoDB: [`crate::aws::sdk_config`] for the endpoint `endpoint_url`,
/// else `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL`, else AWS itself.
pub async fn client(endpoint_url: Option<&str>) -> Client {
    Client::new(&crate::aws::sdk_config(endpoint_url, "AWS_ENDPOINT_URL_DYNAMODB").await)
}

/// The three ports on DynamoDB. Cheap to clone; clones share the SDK client.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Arc<DynamoTables>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on existing tables (see [`create_tables`]); makes no call.
    pub fn new(client: Client, tables: DynamoTables) -> Self {
        Self {
            client,
            tables: Arc::new(tables),
        }
    }

    pub fn tables(&self) -> &DynamoTables {
        &self.tables
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn append(&self, request: AppendRequest) -> Result<(), AppendError> {
        events::append(&self.client, &self.tables, &request).await
    }

    async fn load(
        &self,
        order_id: OrderId,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        events::load(&self.client, &self.tables.events, order_id, up_to).await
    }
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn get(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        events::idempotency_record(&self.client, &self.tables.idempotency, key, now).await
    }
}

#[async_trait]
impl ReadModelStore for DynamoStore {
    async fn get(&self, order_id: OrderId) -> Result<Option<OrderView>, StoreError> {
        read_model::get(&self.client, &self.tables.orders, order_id).await
    }

    async fn get_many(
        &self,
        order_ids: &[OrderId],
    ) -> Result<HashMap<OrderId, OrderView>, StoreError> {
        read_model::get_many(&self.client, &self.tables.orders, order_ids).await
    }

    async fn put(
        &self,
        view: &OrderView,
        expected_version: Option<u64>,
    ) -> Result<PutOutcome, StoreError> {
        read_model::put(&self.client, &self.tables.orders, view, expected_version).await
    }

    async fn put_many(&self, puts: &[ConditionalPut]) -> Result<Vec<PutOutcome>, StoreError> {
        read_model::put_many(&self.client, &self.tables.orders, puts).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        read_model::list(&self.client, &self.tables.orders, query).await
    }
}

#[async_trait]
impl EventScan for DynamoStore {
    /// DynamoDB splits the key space itself: part `i` of `total` is `Segment = i`.
    async fn plan_scan(&self, total: u32) -> Result<Vec<ScanSegment>, StoreError> {
        let total = total.max(1);
        Ok((0..total)
            .map(|index| ScanSegment {
                index,
                total,
                from: None,
                to: None,
            })
            .collect())
    }

    async fn scan_events(
        &self,
        segment: &ScanSegment,
        after: Option<EventKey>,
        limit: usize,
    ) -> Result<ScanPage<StoredEvent, EventKey>, StoreError> {
        scan::scan_events(&self.client, &self.tables.events, segment, after, limit).await
    }

    async fn estimated_events(&self) -> Result<Option<u64>, StoreError> {
        scan::item_count(&self.client, &self.tables.events).await
    }

    async fn orders_with_events(
        &self,
        order_ids: &[OrderId],
    ) -> Result<std::collections::HashSet<OrderId>, StoreError> {
        scan::orders_with_events(&self.client, &self.tables.events, order_ids).await
    }
}

#[async_trait]
impl ReadModelScan for DynamoStore {
    async fn scan_views(
        &self,
        segment: &ScanSegment,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<ScanPage<OrderView, OrderId>, StoreError> {
        scan::scan_views(&self.client, &self.tables.orders, segment, after, limit).await
    }

    async fn delete(
        &self,
        order_id: OrderId,
        expected_version: u64,
    ) -> Result<DeleteOutcome, StoreError> {
        scan::delete_view(
            &self.client,
            &self.tables.orders,
            order_id,
            expected_version,
        )
        .await
    }
}
