//! The contract suite on DynamoDB Local, plus what only DynamoDB has: table creation, the item
//! layout of DESIGN §3, loads past 1 MB, and the faults DynamoDB Local never produces.
//!
//! Faults are injected by an SDK interceptor ([`Fault`]) on an otherwise normal client: the
//! faulted attempt sends DynamoDB Local a harmless `ListTables` instead of the real request (so
//! it cannot write anything), and its response is replaced by a canned DynamoDB error. The
//! SDK's real error parsing and retry logic, and this adapter's mapping, all run as they would
//! on AWS; every other call goes to DynamoDB Local.
//!
//! These tests need DynamoDB Local at `DYNAMODB_ENDPOINT`. Without it they fail, never skip.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::retry::RetryPartition;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType, StreamViewType,
    TimeToLiveStatus,
};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use orders_domain::{
    Currency, CustomerId, EventData, Items, LineItem, OrderEvent, OrderId, OrderStatus, Quantity,
    Sku, Timestamp, UnitPrice,
};
use serde_json::json;
use uuid::Uuid;

use super::events::{MAX_TRANSACTION_ACTIONS, MAX_TRANSACTION_ATTEMPTS};
use super::{DynamoStore, DynamoTables, TableOutcome, create_tables};
use crate::aws::{SDK_MAX_ATTEMPTS, retry_config, timeout_config};
use crate::contract::Backend;
use crate::{
    AppendError, AppendRequest, EventMetadata, EventStore, IdempotencyKey, IdempotencyRecord,
    IdempotencyStore, ListFilter, ListQuery, PageKey, ReadModelStore, StoreError, StoredEvent,
};

const NOT_RUNNING: &str = "DynamoDB Local is not running: run ./scripts/test.sh, or start it \
     with scripts/dynamodb-local.sh and export DYNAMODB_ENDPOINT=http://127.0.0.1:<port>";

fn endpoint() -> String {
    match std::env::var("DYNAMODB_ENDPOINT") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!("{NOT_RUNNING} (DYNAMODB_ENDPOINT is unset)"),
    }
}

/// A client for `endpoint` with the adapter's timeouts and retries, the environment's
/// credentials and region if set (dummy ones otherwise: DynamoDB Local accepts any), and its
/// own retry partition, so one test's throttling cannot drain another's retry quota.
fn config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            Credentials::new(id, secret, env("AWS_SESSION_TOKEN"), None, "environment")
        }
        _ => Credentials::new("local", "local", None, None, "orders-store-tests"),
    };
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .timeout_config(timeout_config())
        .retry_config(retry_config())
        .retry_partition(RetryPartition::new(format!("test-{}", Uuid::now_v7())))
}

fn local_client() -> Client {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Client::from_conf(config(&endpoint()).build())
}

fn faulty_client(fault: &Fault) -> Client {
    Client::from_conf(config(&endpoint()).interceptor(fault.clone()).build())
}

async fn fresh_tables(client: &Client) -> DynamoTables {
    let suffix = Uuid::now_v7().simple();
    let tables = DynamoTables {
        events: format!("test-{suffix}-events"),
        orders: format!("test-{suffix}-orders"),
        idempotency: format!("test-{suffix}-idempotency"),
    };
    create_tables(client, &tables)
        .await
        .unwrap_or_else(|err| panic!("creating the test tables failed: {err}. {NOT_RUNNING}"));
    tables
}

/// Each `fresh` store gets three new tables on DynamoDB Local.
struct DynamoLocal {
    client: Client,
}

impl DynamoLocal {
    fn new() -> Self {
        Self {
            client: local_client(),
        }
    }
}

impl Backend for DynamoLocal {
    type Store = DynamoStore;
    async fn fresh(&self) -> DynamoStore {
        DynamoStore::new(self.client.clone(), fresh_tables(&self.client).await)
    }
}

crate::store_contract_tests!(DynamoLocal::new());

// ---------------------------------------------------------------------------------------------
// Fault injection
// ---------------------------------------------------------------------------------------------

/// Answers the first `times` attempts of `operation` with a canned error (HTTP 400, the JSON
/// body DynamoDB sends), and counts the attempts.
#[derive(Debug, Clone)]
struct Fault {
    operation: &'static str,
    body: String,
    times: usize,
    attempts: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Injected(bool);

impl Storable for Injected {
    type Storer = StoreReplace<Self>;
}

impl Fault {
    fn new(operation: &'static str, body: serde_json::Value, times: usize) -> Self {
        Self {
            operation,
            body: body.to_string(),
            times,
            attempts: Arc::default(),
        }
    }

    fn always(operation: &'static str, body: serde_json::Value) -> Self {
        Self::new(operation, body, usize::MAX)
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

impl Intercept for Fault {
    fn name(&self) -> &'static str {
        "FaultInjection"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let inject = target.strip_prefix("DynamoDB_20120810.") == Some(self.operation)
            && self.attempts.fetch_add(1, Ordering::SeqCst) < self.times;
        if inject {
            // DynamoDB Local gets a harmless read instead, so a faulted attempt writes nothing.
            let request = context.request_mut();
            request
                .headers_mut()
                .insert("x-amz-target", "DynamoDB_20120810.ListTables");
            request.headers_mut().insert("content-length", "2");
            *request.body_mut() = SdkBody::from("{}");
        }
        cfg.interceptor_state().store_put(Injected(inject));
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Injected>().is_some_and(|injected| injected.0) {
            let response = context.response_mut();
            *response.status_mut() = StatusCode::try_from(400u16).expect("a status code");
            let headers = response.headers_mut();
            headers.insert("content-type", "application/x-amz-json-1.0");
            headers.insert("content-length", self.body.len().to_string());
            headers.remove("x-amz-crc32");
            *response.body_mut() = SdkBody::from(self.body.clone());
        }
        Ok(())
    }
}

const DYNAMODB: &str = "com.amazonaws.dynamodb.v20120810";

fn cancelled(codes: &[&str]) -> serde_json::Value {
    json!({
        "__type": format!("{DYNAMODB}#TransactionCanceledException"),
        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons {codes:?}"),
        "CancellationReasons": codes.iter().map(|code| json!({"Code": code})).collect::<Vec<_>>(),
    })
}

fn throttling() -> serde_json::Value {
    json!({
        "__type": "com.amazon.coral.availability#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput.",
    })
}

fn throughput_exceeded() -> serde_json::Value {
    json!({
        "__type": format!("{DYNAMODB}#ProvisionedThroughputExceededException"),
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    })
}

/// A store whose client carries `fault`, on fresh tables; and a clean store on the same tables
/// to look at what was really written.
async fn faulty_store(fault: &Fault) -> (DynamoStore, DynamoStore) {
    let clean = local_client();
    let tables = fresh_tables(&clean).await;
    (
        DynamoStore::new(faulty_client(fault), tables.clone()),
        DynamoStore::new(clean, tables),
    )
}

fn metadata() -> EventMetadata {
    EventMetadata {
        correlation_id: Uuid::now_v7().to_string(),
        causation_id: Uuid::now_v7().to_string(),
        idempotency_key: Some("k-1".into()),
        source: "dynamodb-test".into(),
    }
}

fn created(order: OrderId) -> StoredEvent {
    let items = Items::parse(vec![LineItem {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: Quantity::parse(3).unwrap(),
        unit_price: UnitPrice::parse(250).unwrap(),
    }])
    .unwrap();
    StoredEvent::new(
        order,
        1,
        Uuid::now_v7(),
        &OrderEvent {
            occurred_at: Timestamp::from_millis(1_767_225_600_123),
            data: EventData::OrderCreated {
                customer_id: CustomerId::parse("c-dynamo").unwrap(),
                currency: Currency::parse("EUR").unwrap(),
                total: items.total().unwrap(),
                items,
            },
        },
        metadata(),
    )
}

fn confirmed(order: OrderId, version: u64) -> StoredEvent {
    StoredEvent::new(
        order,
        version,
        Uuid::now_v7(),
        &OrderEvent {
            occurred_at: Timestamp::from_millis(1_767_225_700_000),
            data: EventData::OrderConfirmed,
        },
        metadata(),
    )
}

fn wall_clock() -> Timestamp {
    Timestamp::from_millis(super::events::now_millis())
}

fn record(order: OrderId, version: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        key: IdempotencyKey::parse(&format!("key-{}", Uuid::now_v7())).unwrap(),
        fingerprint: "f".repeat(64),
        order_id: order,
        version,
        status: 201,
        expires_at: Timestamp::from_millis(wall_clock().millis() + 86_400_000),
    }
}

/// A create with an idempotency record: the request every fault test makes.
fn create_request(order: OrderId) -> AppendRequest {
    AppendRequest {
        order_id: order,
        expected_version: 0,
        events: vec![created(order)],
        idempotency: Some(record(order, 1)),
    }
}

/// Neither the events nor the idempotency record of `request` were written.
async fn assert_nothing_written(clean: &DynamoStore, request: &AppendRequest) {
    assert_eq!(
        clean.load(request.order_id, None).await.unwrap().len() as u64,
        request.expected_version,
        "no event of the failed append is stored"
    );
    if let Some(record) = &request.idempotency {
        assert_eq!(
            IdempotencyStore::get(clean, &record.key, wall_clock())
                .await
                .unwrap(),
            None,
            "the failed append stored no idempotency record"
        );
    }
}

fn assert_unavailable<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    retry_after: Duration,
    what: &str,
) {
    match result {
        Err(StoreError::Unavailable {
            retry_after: after, ..
        }) => assert_eq!(after, retry_after, "{what}: Retry-After"),
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

fn append_unavailable(result: Result<(), AppendError>, retry_after: Duration, what: &str) {
    match result {
        Err(AppendError::Store(err)) => assert_unavailable::<()>(Err(err), retry_after, what),
        other => panic!("{what}: expected Store(Unavailable), got {other:?}"),
    }
}

#[tokio::test]
async fn transaction_conflicts_are_retried_until_the_append_goes_through() {
    let fault = Fault::new(
        "TransactWriteItems",
        cancelled(&["None", "TransactionConflict"]),
        2,
    );
    let (store, clean) = faulty_store(&fault).await;
    let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
    store
        .append(request.clone())
        .await
        .expect("the third attempt commits");
    assert_eq!(
        fault.attempts(),
        3,
        "two cancelled attempts, then the real one"
    );
    assert_eq!(
        clean.load(request.order_id, None).await.unwrap(),
        request.events
    );
    let key = &request.idempotency.as_ref().unwrap().key;
    assert_eq!(
        IdempotencyStore::get(&clean, key, wall_clock())
            .await
            .unwrap(),
        request.idempotency
    );
}

#[tokio::test]
async fn persistent_transaction_conflicts_are_unavailable_and_write_nothing() {
    let fault = Fault::always(
        "TransactWriteItems",
        cancelled(&["TransactionConflict", "None"]),
    );
    let (store, clean) = faulty_store(&fault).await;
    let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
    append_unavailable(
        store.append(request.clone()).await,
        super::error::CONTENDED_RETRY_AFTER,
        "persistent transaction conflicts",
    );
    assert_eq!(
        fault.attempts(),
        MAX_TRANSACTION_ATTEMPTS as usize,
        "a bounded number of attempts"
    );
    assert_nothing_written(&clean, &request).await;
}

#[tokio::test]
async fn throttled_transaction_items_are_retried_then_unavailable() {
    for code in [
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    ] {
        let fault = Fault::always("TransactWriteItems", cancelled(&[code, "None"]));
        let (store, clean) = faulty_store(&fault).await;
        let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
        append_unavailable(
            store.append(request.clone()).await,
            super::error::THROTTLED_RETRY_AFTER,
            code,
        );
        assert_eq!(
            fault.attempts(),
            MAX_TRANSACTION_ATTEMPTS as usize,
            "{code}"
        );
        assert_nothing_written(&clean, &request).await;
    }
}

#[tokio::test]
async fn throttling_exceptions_are_retried_by_the_sdk_then_unavailable() {
    for (name, body) in [
        ("ThrottlingException", throttling()),
        (
            "ProvisionedThroughputExceededException",
            throughput_exceeded(),
        ),
    ] {
        // Once: the SDK's retry absorbs it.
        let fault = Fault::new("TransactWriteItems", body.clone(), 1);
        let (store, clean) = faulty_store(&fault).await;
        let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
        store
            .append(request.clone())
            .await
            .unwrap_or_else(|err| panic!("{name} once: {err}"));
        assert_eq!(fault.attempts(), 2, "{name} once");
        assert_eq!(
            clean.load(request.order_id, None).await.unwrap(),
            request.events
        );

        // Always: bounded retries, then 503 material.
        let fault = Fault::always("TransactWriteItems", body);
        let (store, clean) = faulty_store(&fault).await;
        let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
        append_unavailable(
            store.append(request.clone()).await,
            super::error::THROTTLED_RETRY_AFTER,
            name,
        );
        assert_eq!(
            fault.attempts(),
            SDK_MAX_ATTEMPTS as usize,
            "{name}: the SDK's attempts"
        );
        assert_nothing_written(&clean, &request).await;
    }
}

#[tokio::test]
async fn throttled_reads_and_read_model_writes_are_unavailable() {
    let throttled = super::error::THROTTLED_RETRY_AFTER;
    let order = OrderId::from_uuid(Uuid::now_v7());

    let fault = Fault::always("Query", throughput_exceeded());
    let (store, clean) = faulty_store(&fault).await;
    clean.append(create_request(order)).await.unwrap();
    assert_unavailable(store.load(order, None).await, throttled, "load");
    assert_eq!(fault.attempts(), SDK_MAX_ATTEMPTS as usize);

    let fault = Fault::always("GetItem", throttling());
    let (store, _clean) = faulty_store(&fault).await;
    let key = IdempotencyKey::parse("any").unwrap();
    assert_unavailable(
        IdempotencyStore::get(&store, &key, wall_clock()).await,
        throttled,
        "idempotency get",
    );
    assert_unavailable(
        ReadModelStore::get(&store, order).await,
        throttled,
        "read model get",
    );

    let fault = Fault::always("PutItem", throughput_exceeded());
    let (store, clean) = faulty_store(&fault).await;
    let view = crate::OrderView::from_state(
        order,
        crate::fold(Default::default(), &[created(order)]).unwrap(),
    )
    .unwrap();
    assert_unavailable(store.put(&view, None).await, throttled, "read model put");
    assert_unavailable(
        store
            .put_many(&[crate::ConditionalPut {
                view: view.clone(),
                expected_version: None,
            }])
            .await,
        throttled,
        "read model put_many",
    );
    assert_eq!(ReadModelStore::get(&clean, order).await.unwrap(), None);
    assert_eq!(
        clean.put(&view, None).await.unwrap(),
        crate::PutOutcome::Written
    );
}

fn created_view(order: OrderId) -> crate::OrderView {
    crate::contract::view(order, "c-batch", OrderStatus::Pending, 1_000, 1_000, 1)
}

fn new_views(count: usize) -> Vec<crate::ConditionalPut> {
    (0..count)
        .map(|_| crate::ConditionalPut {
            view: created_view(OrderId::from_uuid(Uuid::now_v7())),
            expected_version: None,
        })
        .collect()
}

async fn stored_views(store: &DynamoStore, puts: &[crate::ConditionalPut]) -> usize {
    let ids: Vec<OrderId> = puts.iter().map(|p| p.view.order_id).collect();
    store.get_many(&ids).await.unwrap().len()
}

/// `put_many` batches its writes in transactions of 25; a transaction cancelled by a conflict
/// on one item is tried again with every item, and each ends written.
#[tokio::test]
async fn read_model_transactions_retry_conflicted_items() {
    let mut reasons = vec!["None"; 25];
    reasons[7] = "TransactionConflict";
    let fault = Fault::new("TransactWriteItems", cancelled(&reasons), 1);
    let (store, clean) = faulty_store(&fault).await;
    let puts = new_views(60);
    let outcomes = store.put_many(&puts).await.unwrap();
    assert_eq!(outcomes, vec![crate::PutOutcome::Written; 60]);
    assert_eq!(
        fault.attempts(),
        4,
        "transactions of 25 + 25 + 10, the cancelled one once more"
    );
    assert_eq!(stored_views(&clean, &puts).await, 60);
}

/// A transaction that keeps colliding gives up after a bounded number of attempts, as an append
/// does; nothing of it is written.
#[tokio::test]
async fn read_model_transactions_that_keep_conflicting_are_unavailable() {
    let fault = Fault::always(
        "TransactWriteItems",
        cancelled(&["None", "TransactionConflict", "None"]),
    );
    let (store, clean) = faulty_store(&fault).await;
    let puts = new_views(3);
    assert_unavailable(
        store.put_many(&puts).await,
        super::error::CONTENDED_RETRY_AFTER,
        "persistent read-model conflicts",
    );
    assert_eq!(fault.attempts(), MAX_TRANSACTION_ATTEMPTS as usize);
    assert_eq!(stored_views(&clean, &puts).await, 0);
}

/// Against DynamoDB Local itself: one transaction whose conditions fail for some items reports
/// those as version mismatches and writes the others; the same order twice in one batch goes
/// into separate transactions (a transaction may touch an item only once).
#[tokio::test]
async fn read_model_transactions_judge_each_item_and_split_repeated_orders() {
    let store = DynamoLocal::new().fresh().await;
    let puts = new_views(30);
    // Every third view already exists, so its "no view yet" condition fails.
    for put in puts.iter().step_by(3) {
        assert_eq!(
            store.put(&put.view, None).await.unwrap(),
            crate::PutOutcome::Written
        );
    }
    let outcomes = store.put_many(&puts).await.unwrap();
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = if i % 3 == 0 {
            crate::PutOutcome::VersionMismatch
        } else {
            crate::PutOutcome::Written
        };
        assert_eq!(*outcome, expected, "write {i}");
    }
    assert_eq!(stored_views(&store, &puts).await, 30);

    let order = OrderId::from_uuid(Uuid::now_v7());
    let v1 = created_view(order);
    let mut v2 = v1.clone();
    v2.version = 2;
    let twice = [
        crate::ConditionalPut {
            view: v1,
            expected_version: None,
        },
        crate::ConditionalPut {
            view: v2.clone(),
            expected_version: Some(1),
        },
    ];
    assert_eq!(
        store.put_many(&twice).await.unwrap(),
        [crate::PutOutcome::Written, crate::PutOutcome::Written]
    );
    assert_eq!(ReadModelStore::get(&store, order).await.unwrap(), Some(v2));
}

/// A failed condition is definitive: reported at once, without retrying, even when other items
/// of the same transaction were cancelled for a conflict or throttling.
#[tokio::test]
async fn mixed_cancellations_report_the_failed_condition_without_retrying() {
    // An event's condition failed, another item collided with a transaction: a conflict.
    let fault = Fault::always(
        "TransactWriteItems",
        cancelled(&["None", "ConditionalCheckFailed", "TransactionConflict"]),
    );
    let (store, clean) = faulty_store(&fault).await;
    let order = OrderId::from_uuid(Uuid::now_v7());
    clean.append(create_request(order)).await.unwrap();
    let request = AppendRequest {
        order_id: order,
        expected_version: 1,
        events: vec![confirmed(order, 2)],
        idempotency: Some(record(order, 2)),
    };
    let result = store.append(request.clone()).await;
    assert!(
        matches!(result, Err(AppendError::Conflict { current_version: 1 })),
        "expected a conflict at the stored version, got {result:?}"
    );
    assert_eq!(fault.attempts(), 1, "a failed condition is not retried");
    assert_nothing_written(&clean, &request).await;

    // The idempotency record's condition failed, an event was throttled: the key is in use.
    let fault = Fault::always(
        "TransactWriteItems",
        cancelled(&["ThrottlingError", "ConditionalCheckFailed"]),
    );
    let (store, clean) = faulty_store(&fault).await;
    let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
    let result = store.append(request.clone()).await;
    assert!(
        matches!(result, Err(AppendError::IdempotencyKeyInUse)),
        "expected IdempotencyKeyInUse, got {result:?}"
    );
    assert_eq!(fault.attempts(), 1, "a failed condition is not retried");
    assert_nothing_written(&clean, &request).await;
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable_within_seconds() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::from_conf(config(&format!("http://127.0.0.1:{port}")).build());
    let store = DynamoStore::new(client.clone(), DynamoTables::default());
    let order = OrderId::from_uuid(Uuid::now_v7());
    let unreachable = super::error::UNREACHABLE_RETRY_AFTER;

    let started = Instant::now();
    append_unavailable(
        store.append(create_request(order)).await,
        unreachable,
        "append",
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the append failed in {:?}",
        started.elapsed()
    );
    assert_unavailable(store.load(order, None).await, unreachable, "load");
    assert_unavailable(ReadModelStore::get(&store, order).await, unreachable, "get");
    assert_unavailable(
        store
            .list(&ListQuery {
                filter: ListFilter::Customer(CustomerId::parse("c").unwrap()),
                limit: 10,
                after: None,
            })
            .await,
        unreachable,
        "list",
    );
    assert_unavailable(
        create_tables(&client, &DynamoTables::default()).await,
        unreachable,
        "create_tables",
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------------
// Tables, items and pagination on DynamoDB Local
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_tables_is_idempotent_and_sets_up_streams_indexes_and_ttl() {
    let client = local_client();
    let suffix = Uuid::now_v7().simple();
    let tables = DynamoTables {
        events: format!("ct-{suffix}-events"),
        orders: format!("ct-{suffix}-orders"),
        idempotency: format!("ct-{suffix}-idempotency"),
    };
    let first = create_tables(&client, &tables).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|s| (s.name.as_str(), s.outcome))
            .collect::<Vec<_>>(),
        [
            (tables.events.as_str(), TableOutcome::Created),
            (tables.orders.as_str(), TableOutcome::Created),
            (tables.idempotency.as_str(), TableOutcome::Created),
        ]
    );
    assert!(first.iter().all(|s| s.added.is_empty()));
    let second = create_tables(&client, &tables).await.unwrap();
    assert!(
        second
            .iter()
            .all(|s| s.outcome == TableOutcome::AlreadyExisted && s.added.is_empty()),
        "the second run changes nothing: {second:?}"
    );
    assert_tables_complete(&client, &tables, true).await;
}

#[tokio::test]
async fn create_tables_adds_what_existing_tables_lack() {
    let client = local_client();
    let suffix = Uuid::now_v7().simple();
    let tables = DynamoTables {
        events: format!("bare-{suffix}-events"),
        orders: format!("bare-{suffix}-orders"),
        idempotency: format!("bare-{suffix}-idempotency"),
    };
    // Bare tables: the keys only, no stream, no TTL; the orders table has one GSI of two
    // (DynamoDB builds one added index at a time per table, so one is what a run can add).
    for (name, keys) in [
        (
            &tables.events,
            &[
                ("orderId", ScalarAttributeType::S),
                ("version", ScalarAttributeType::N),
            ][..],
        ),
        (&tables.orders, &[("orderId", ScalarAttributeType::S)][..]),
        (
            &tables.idempotency,
            &[("idempotencyKey", ScalarAttributeType::S)][..],
        ),
    ] {
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest);
        for (i, (attribute, kind)) in keys.iter().enumerate() {
            request = request
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(*attribute)
                        .attribute_type(kind.clone())
                        .build()
                        .unwrap(),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(*attribute)
                        .key_type(if i == 0 {
                            KeyType::Hash
                        } else {
                            KeyType::Range
                        })
                        .build()
                        .unwrap(),
                );
        }
        if name == &tables.orders {
            request = request
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("customerId")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .unwrap(),
                )
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("createdAt")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .unwrap(),
                )
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name("byCustomer")
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name("customerId")
                                .key_type(KeyType::Hash)
                                .build()
                                .unwrap(),
                        )
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name("createdAt")
                                .key_type(KeyType::Range)
                                .build()
                                .unwrap(),
                        )
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                );
        }
        request.send().await.expect("create a bare table");
    }
    let statuses = create_tables(&client, &tables).await.unwrap();
    assert!(
        statuses
            .iter()
            .all(|s| s.outcome == TableOutcome::AlreadyExisted)
    );
    assert!(
        statuses[0].added.contains(&"stream NEW_IMAGE".to_owned()),
        "{statuses:?}"
    );
    // Either built within the wait, or reported as still CREATING (DynamoDB Local can be slow).
    assert_eq!(statuses[1].added.len(), 1, "{statuses:?}");
    assert!(
        statuses[1].added[0].starts_with("GSI byStatus"),
        "{statuses:?}"
    );
    assert_eq!(statuses[2].added, ["TTL on expiresAt"]);
    assert_tables_complete(&client, &tables, false).await;
    let again = create_tables(&client, &tables).await.unwrap();
    assert!(again.iter().all(|s| s.added.is_empty()), "{again:?}");
    // DynamoDB Local counts tables with indexes still CREATING against a limit of 5: drop
    // these, so that reruns on one DynamoDB Local keep passing.
    for name in [&tables.events, &tables.orders, &tables.idempotency] {
        client.delete_table().table_name(name).send().await.unwrap();
    }
}

/// `indexes_active`: whether the GSIs must be ACTIVE (not for ones added to an existing table,
/// which DynamoDB Local never finishes).
async fn assert_tables_complete(client: &Client, tables: &DynamoTables, indexes_active: bool) {
    let describe = |name: &str| {
        let request = client.describe_table().table_name(name);
        async move { request.send().await.unwrap().table.unwrap() }
    };
    let keys = |table: &aws_sdk_dynamodb::types::TableDescription| {
        table
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
            .collect::<Vec<_>>()
    };

    let events = describe(&tables.events).await;
    assert_eq!(
        keys(&events),
        [
            ("orderId".into(), KeyType::Hash),
            ("version".into(), KeyType::Range)
        ]
    );
    let stream = events.stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert_eq!(stream.stream_view_type(), Some(&StreamViewType::NewImage));
    assert!(events.latest_stream_arn().is_some());

    let orders = describe(&tables.orders).await;
    assert_eq!(keys(&orders), [("orderId".into(), KeyType::Hash)]);
    let mut indexes: Vec<_> = orders
        .global_secondary_indexes()
        .iter()
        .map(|gsi| {
            if indexes_active {
                assert_eq!(gsi.index_status(), Some(&IndexStatus::Active));
            }
            assert_eq!(
                gsi.projection().and_then(|p| p.projection_type()),
                Some(&ProjectionType::All)
            );
            let keys: Vec<_> = gsi
                .key_schema()
                .iter()
                .map(|k| k.attribute_name().to_owned())
                .collect();
            (gsi.index_name().unwrap().to_owned(), keys)
        })
        .collect();
    indexes.sort();
    assert_eq!(
        indexes,
        [
            (
                "byCustomer".to_owned(),
                vec!["customerId".to_owned(), "createdAt".to_owned()]
            ),
            (
                "byStatus".to_owned(),
                vec!["status".to_owned(), "updatedAt".to_owned()]
            ),
        ]
    );

    let idempotency = describe(&tables.idempotency).await;
    assert_eq!(
        keys(&idempotency),
        [("idempotencyKey".into(), KeyType::Hash)]
    );
    for table in [&events, &orders, &idempotency] {
        assert_eq!(
            table.billing_mode_summary().and_then(|b| b.billing_mode()),
            Some(&BillingMode::PayPerRequest),
            "{:?} is on demand",
            table.table_name()
        );
    }
    let ttl = client
        .describe_time_to_live()
        .table_name(&tables.idempotency)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert!(matches!(
        ttl.time_to_live_status(),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ));
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));
}

/// The stored items are DESIGN §3's records: native types, `data` and `metadata` as maps.
#[tokio::test]
async fn items_have_the_attribute_layout_of_the_design() {
    let client = local_client();
    let tables = fresh_tables(&client).await;
    let store = DynamoStore::new(client.clone(), tables.clone());
    let order = OrderId::from_uuid(Uuid::now_v7());
    let request = create_request(order);
    store.append(request.clone()).await.unwrap();
    let event = &request.events[0];

    let item = client
        .get_item()
        .table_name(&tables.events)
        .key("orderId", AttributeValue::S(order.to_string()))
        .key("version", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the event item");
    let mut names: Vec<_> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "data",
            "eventId",
            "eventType",
            "metadata",
            "occurredAt",
            "orderId",
            "schemaVersion",
            "version"
        ]
    );
    assert_eq!(
        item["eventId"],
        AttributeValue::S(event.event_id.to_string())
    );
    assert_eq!(item["eventType"], AttributeValue::S("OrderCreated".into()));
    assert_eq!(
        item["schemaVersion"],
        AttributeValue::N(event.schema_version.to_string())
    );
    assert_eq!(
        item["occurredAt"],
        AttributeValue::S("2026-01-01T00:00:00.123Z".into())
    );
    let data = item["data"].as_m().expect("data is a map");
    assert_eq!(data["customerId"], AttributeValue::S("c-dynamo".into()));
    assert_eq!(data["total"], AttributeValue::N("750".into()));
    let line = data["items"].as_l().expect("items is a list")[0]
        .as_m()
        .unwrap();
    assert_eq!(line["quantity"], AttributeValue::N("3".into()));
    let metadata = item["metadata"].as_m().expect("metadata is a map");
    assert_eq!(metadata["idempotencyKey"], AttributeValue::S("k-1".into()));
    assert_eq!(
        metadata["source"],
        AttributeValue::S("dynamodb-test".into())
    );

    let record = request.idempotency.as_ref().unwrap();
    let item = client
        .get_item()
        .table_name(&tables.idempotency)
        .key(
            "idempotencyKey",
            AttributeValue::S(record.key.as_str().into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the idempotency item");
    let expires_ms = record.expires_at.millis();
    assert_eq!(
        item["expiresAt"],
        AttributeValue::N(((expires_ms + 999) / 1000).to_string())
    );
    assert_eq!(
        item["expiresAtMillis"],
        AttributeValue::N(expires_ms.to_string())
    );
    assert_eq!(item["orderId"], AttributeValue::S(order.to_string()));
    assert_eq!(item["status"], AttributeValue::N("201".into()));
    assert_eq!(
        item["fingerprint"],
        AttributeValue::S(record.fingerprint.clone())
    );

    let view = crate::OrderView::from_state(
        order,
        crate::fold(Default::default(), &request.events).unwrap(),
    )
    .unwrap();
    store.put(&view, None).await.unwrap();
    let item = client
        .get_item()
        .table_name(&tables.orders)
        .key("orderId", AttributeValue::S(order.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the view item");
    assert_eq!(item["status"], AttributeValue::S("PENDING".into()));
    assert_eq!(item["version"], AttributeValue::N("1".into()));
    assert_eq!(item["total"], AttributeValue::N("750".into()));
    assert_eq!(item["currency"], AttributeValue::S("EUR".into()));
    assert_eq!(
        item["createdAt"],
        AttributeValue::S("2026-01-01T00:00:00.123Z".into())
    );
    assert!(item["items"].as_l().is_ok_and(|items| items.len() == 1));
    assert!(
        !item.contains_key("cancelReason"),
        "absent when there is none"
    );
}

/// More than one 1 MB query page of events loads whole and in order.
#[tokio::test]
async fn a_stream_larger_than_one_query_page_loads_whole() {
    const EVENTS: u64 = 24;
    let client = local_client();
    let tables = fresh_tables(&client).await;
    let store = DynamoStore::new(client.clone(), tables.clone());
    let order = OrderId::from_uuid(Uuid::now_v7());
    let padding = "x".repeat(100_000);
    let mut events = Vec::new();
    for version in 1..=EVENTS {
        let mut event = confirmed(order, version);
        // An event type this build does not know may carry any payload.
        event.event_type = "OrderAnnotated".into();
        event.data = json!({ "note": padding, "n": version });
        events.push(event);
    }
    for (i, chunk) in events.chunks(8).enumerate() {
        store
            .append(AppendRequest {
                order_id: order,
                expected_version: (i * 8) as u64,
                events: chunk.to_vec(),
                idempotency: None,
            })
            .await
            .unwrap();
    }
    let first_page = client
        .query()
        .table_name(&tables.events)
        .key_condition_expression("orderId = :id")
        .expression_attribute_values(":id", AttributeValue::S(order.to_string()))
        .send()
        .await
        .unwrap();
    assert!(
        first_page.last_evaluated_key().is_some() && (first_page.count() as u64) < EVENTS,
        "the events span more than one query page ({} items in the first)",
        first_page.count()
    );
    let loaded = store.load(order, None).await.unwrap();
    assert_eq!(loaded, events, "every event, in version order");
    let prefix = store.load(order, Some(EVENTS - 1)).await.unwrap();
    assert_eq!(prefix, events[..EVENTS as usize - 1]);
}

#[tokio::test]
async fn oversized_appends_and_malformed_page_keys_are_internal_errors() {
    let client = local_client();
    let store = DynamoStore::new(client.clone(), fresh_tables(&client).await);
    let order = OrderId::from_uuid(Uuid::now_v7());
    let events: Vec<_> = (1..=MAX_TRANSACTION_ACTIONS as u64)
        .map(|version| confirmed(order, version))
        .collect();
    let result = store
        .append(AppendRequest {
            order_id: order,
            expected_version: 0,
            events,
            idempotency: Some(record(order, 100)),
        })
        .await;
    assert!(
        matches!(result, Err(AppendError::Store(StoreError::Internal(_)))),
        "101 actions do not fit in one transaction: {result:?}"
    );
    assert!(store.load(order, None).await.unwrap().is_empty());

    for after in [
        json!("not a key"),
        json!({"orderId": {"S": "x"}}),
        json!({"orderId": {"S": "x"}, "customerId": {"S": "someone-else"}, "createdAt": {"S": "2026"}}),
    ] {
        let result = store
            .list(&ListQuery {
                filter: ListFilter::Customer(CustomerId::parse("c-1").unwrap()),
                limit: 5,
                after: Some(PageKey(after.clone())),
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::Internal(_))),
            "{after}: {result:?}"
        );
    }
}

/// The client others build with [`super::client`] (the standard config chain, with the
/// emulator fallbacks for region and credentials) works against an endpoint override.
#[tokio::test]
async fn the_standard_client_reaches_an_endpoint_override() {
    let client = super::client(Some(&endpoint())).await;
    let store = DynamoStore::new(client.clone(), fresh_tables(&client).await);
    let request = create_request(OrderId::from_uuid(Uuid::now_v7()));
    store.append(request.clone()).await.unwrap();
    assert_eq!(
        store.load(request.order_id, None).await.unwrap(),
        request.events
    );
}

#[test]
fn tables_default_to_the_documented_names() {
    let tables = DynamoTables::default();
    assert_eq!(tables.events, "orders-events");
    assert_eq!(tables.orders, "orders-read-model");
    assert_eq!(tables.idempotency, "orders-idempotency");
}
