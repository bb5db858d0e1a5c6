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
//! [`create_tables`] creates them; [`client`] builds an SDK client from the standard AWS config
//! chain with timeouts that make an unreachable endpoint fail in seconds.
//!
//! Error mapping (`error.rs`): throttling, server errors, timeouts and connection failures are
//! [`StoreError::Unavailable`] (HTTP 503 with `Retry-After`) after the SDK's bounded retries;
//! a missing table or a rejected request is [`StoreError::Internal`]; an item that does not
//! decode is [`StoreError::Corrupt`].

mod error;
mod events;
mod https;
mod read_model;
mod tables;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use orders_domain::{OrderId, Timestamp};

pub use self::tables::{TableOutcome, TableStatus, create_tables};
use crate::{
    AppendError, AppendRequest, ConditionalPut, EventStore, IdempotencyKey, IdempotencyRecord,
    IdempotencyStore, ListQuery, OrderView, Page, PutOutcome, ReadModelStore, StoreError,
    StoredEvent,
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

/// Connect timeout: a dead endpoint is noticed in about this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One HTTP attempt. Every call this adapter makes is small (at most 1 MB of response).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// One operation, all of the SDK's retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
/// The SDK's own attempts per operation (standard mode: throttling, 5xx, timeouts and
/// connection errors are retried with jittered exponential backoff and a retry quota).
const SDK_MAX_ATTEMPTS: u32 = 3;

/// The timeouts every client of this adapter should have.
pub(crate) fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Bounded, jittered retries with a short first backoff: a request that is throttled three
/// times is better answered with a 503 and `Retry-After` than held for many seconds.
pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(SDK_MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(1))
}

/// An SDK client from the standard AWS config chain (region, credentials, `AWS_ENDPOINT_URL` /
/// `AWS_ENDPOINT_URL_DYNAMODB`), with this adapter's timeouts and retries. `endpoint_url`
/// overrides the endpoint (e.g. DynamoDB Local).
///
/// For an emulator, so that it works without any AWS configuration: when an endpoint is set
/// (by `endpoint_url` or the env vars) and no region is configured, the region is `us-east-1`;
/// when the endpoint is on loopback and neither `AWS_ACCESS_KEY_ID` nor `AWS_PROFILE` is set,
/// the credentials are a fixed dummy pair (`local`/`local`). DynamoDB Local keeps a separate
/// database per access key and region unless it runs with `-sharedDb`, so every process that
/// shares one should agree on both.
pub async fn client(endpoint_url: Option<&str>) -> Client {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let endpoint = endpoint_url
        .map(str::to_owned)
        .or_else(|| env("AWS_ENDPOINT_URL_DYNAMODB"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeout_config())
        .retry_config(retry_config());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(url) = &endpoint {
        let region = aws_config::meta::region::RegionProviderChain::default_provider()
            .or_else(aws_config::Region::from_static("us-east-1"));
        loader = loader.region(region);
        if is_loopback(url) && env("AWS_ACCESS_KEY_ID").is_none() && env("AWS_PROFILE").is_none() {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "orders-local-endpoint",
            ));
        }
    }
    if let Some(http_client) = https::client_trusting_the_system_bundle() {
        loader = loader.http_client(http_client);
    }
    let config = loader.load().await;
    tracing::debug!(endpoint = ?endpoint, region = ?config.region(), "built the DynamoDB client");
    Client::new(&config)
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
