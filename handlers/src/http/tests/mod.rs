//! Router tests: the real router, driven with `oneshot`, over a real store: a `SqliteStore` on
//! a temporary file ([`TestApi::sqlite`]), or a `DynamoStore` on fresh tables in DynamoDB Local
//! at `DYNAMODB_ENDPOINT` ([`TestApi::dynamodb`]; without it those tests fail, never skip).
//! The only stand-in is `FlakyStore`, a thin wrapper around the SQLite store that fails on
//! demand to exercise 503 and 500; a DynamoDB outage is a real closed port (`outage.rs`).

mod commands;
mod concurrency;
mod contract;
mod fuzz;
mod hostile;
mod openapi;
mod outage;
mod queries;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::Select;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use orders_domain::{EventData, OrderEvent, OrderId, OrderState, Timestamp};
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::sqlite::SqliteStore;
use orders_store::{
    AppendError, AppendRequest, ChangeFeed, EventMetadata, EventStore, IdempotencyKey,
    IdempotencyRecord, IdempotencyStore, ListQuery, OrderView, Page, PutOutcome, ReadModelStore,
    StoreError, StoredEvent, fold,
};
use orders_testkit::problem::assert_problem;
use orders_testkit::stores;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

use crate::app::{Clock, Stores, SystemClock};
use crate::http::{Api, ApiConfig, router};

/// A clock the test moves by hand, starting at the real time. The stores judge idempotency
/// expiry by it too: the command passes its `now` down.
pub struct TestClock(AtomicI64);

impl TestClock {
    fn new() -> Self {
        Self(AtomicI64::new(SystemClock.now().millis()))
    }
    pub fn advance(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// What a [`FlakyStore`] does on each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Healthy = 0,
    Unavailable = 1,
    Broken = 2,
    /// Just before an append, a competing writer appends `OrderCancelled` at the same version
    /// (once), so the command loses the race in the real store.
    LoseRace = 3,
}

/// The real store, with failures injected on demand.
pub struct FlakyStore {
    inner: SqliteStore,
    mode: AtomicU8,
}

/// Leaked by a failure injected as `Mode::Broken`; must never reach a client.
pub const SECRET_DETAIL: &str = "disk /dev/sda1 on fire at 0xdeadbeef";

impl FlakyStore {
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        match self.mode.load(Ordering::SeqCst) {
            0 | 3 => Ok(()),
            1 => Err(StoreError::Unavailable {
                reason: "throttled".into(),
                retry_after: Duration::from_millis(1500),
            }),
            _ => Err(StoreError::Internal(SECRET_DETAIL.into())),
        }
    }
}

#[async_trait]
impl EventStore for FlakyStore {
    async fn append(&self, request: AppendRequest) -> Result<(), AppendError> {
        if self
            .mode
            .compare_exchange(
                Mode::LoseRace as u8,
                Mode::Healthy as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
        {
            let competitor = OrderEvent {
                occurred_at: SystemClock.now(),
                data: EventData::OrderCancelled { reason: None },
            };
            let metadata = EventMetadata {
                correlation_id: "competitor".into(),
                causation_id: "competitor".into(),
                idempotency_key: None,
                source: "orders.test".into(),
            };
            self.inner
                .append(AppendRequest {
                    order_id: request.order_id,
                    expected_version: request.expected_version,
                    events: vec![StoredEvent::new(
                        request.order_id,
                        request.expected_version + 1,
                        uuid::Uuid::now_v7(),
                        &competitor,
                        metadata,
                    )],
                    idempotency: None,
                    now: request.now,
                })
                .await
                .expect("the competing write lands first");
        }
        self.check()?;
        self.inner.append(request).await
    }
    async fn load(
        &self,
        order_id: OrderId,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.check()?;
        self.inner.load(order_id, up_to).await
    }
}

#[async_trait]
impl IdempotencyStore for FlakyStore {
    async fn get(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.check()?;
        IdempotencyStore::get(&self.inner, key, now).await
    }
}

#[async_trait]
impl ReadModelStore for FlakyStore {
    async fn get(&self, order_id: OrderId) -> Result<Option<OrderView>, StoreError> {
        self.check()?;
        ReadModelStore::get(&self.inner, order_id).await
    }
    async fn put(
        &self,
        view: &OrderView,
        expected_version: Option<u64>,
    ) -> Result<PutOutcome, StoreError> {
        self.check()?;
        self.inner.put(view, expected_version).await
    }
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.check()?;
        self.inner.list(query).await
    }
}

/// The three ports on one value, as every adapter provides them.
pub trait Ports: EventStore + IdempotencyStore + ReadModelStore + Send + Sync {}
impl<S: EventStore + IdempotencyStore + ReadModelStore + Send + Sync> Ports for S {}

/// The store behind a [`TestApi`], for what the ports do not offer: counting every event.
enum Backend {
    Sqlite {
        store: SqliteStore,
        flaky: Arc<FlakyStore>,
        _dir: TempDir,
    },
    Dynamo(DynamoStore),
}

pub struct TestApi {
    pub router: Router,
    /// What the router serves: its responses are checked against that API's document.
    api: Api,
    /// The real store (never the `FlakyStore` wrapper): what the router wrote, read directly.
    pub store: Arc<dyn Ports>,
    pub clock: Arc<TestClock>,
    backend: Backend,
}

pub fn test_config() -> ApiConfig {
    ApiConfig {
        source: "orders.test".into(),
        cursor_key: b"test cursor key".to_vec(),
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts an RFC 9457 problem with this status, and returns its `errors[].field`s.
    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> Vec<String> {
        assert_problem(
            self.status.as_u16(),
            self.header("content-type"),
            &self.body,
            status,
        )
    }

    pub fn order_id(&self) -> OrderId {
        OrderId::parse(self.body["orderId"].as_str().expect("an orderId")).unwrap()
    }
}

impl TestApi {
    /// On SQLite, through the `FlakyStore` wrapper.
    pub fn new() -> Self {
        Self::sqlite()
    }

    /// On SQLite, through the `FlakyStore` wrapper.
    pub fn sqlite() -> Self {
        Self::serving(Api::Both)
    }

    /// On SQLite, through the `FlakyStore` wrapper, serving `api`.
    pub fn serving(api: Api) -> Self {
        let (dir, store) = stores::sqlite();
        let flaky = Arc::new(FlakyStore {
            inner: store.clone(),
            mode: AtomicU8::new(Mode::Healthy as u8),
        });
        let stores = Stores {
            events: flaky.clone(),
            idempotency: flaky.clone(),
            read_model: flaky.clone(),
        };
        let clock = Arc::new(TestClock::new());
        Self {
            router: router(stores, test_config(), clock.clone(), api),
            api,
            store: Arc::new(store.clone()),
            clock,
            backend: Backend::Sqlite {
                store,
                flaky,
                _dir: dir,
            },
        }
    }

    /// On DynamoDB Local at `DYNAMODB_ENDPOINT`, on three new uniquely named tables. Panics
    /// when the endpoint is unset or the tables cannot be created.
    pub async fn dynamodb() -> Self {
        let client = dynamodb::client(Some(&stores::dynamodb_endpoint())).await;
        let tables = stores::create_unique_tables(&client, "test").await;
        let store = DynamoStore::new(client, tables);
        let clock = Arc::new(TestClock::new());
        Self {
            router: router(
                Stores::shared(store.clone()),
                test_config(),
                clock.clone(),
                Api::Both,
            ),
            api: Api::Both,
            store: Arc::new(store.clone()),
            clock,
            backend: Backend::Dynamo(store),
        }
    }

    /// The fault injector; SQLite only.
    #[track_caller]
    pub fn flaky(&self) -> &FlakyStore {
        match &self.backend {
            Backend::Sqlite { flaky, .. } => flaky,
            Backend::Dynamo(_) => panic!("FlakyStore wraps the SQLite store only"),
        }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        send_to(self.api, self.router.clone(), request).await
    }

    pub async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> TestResponse {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    /// A POST without a body (confirm, ship, cancel without reason).
    pub async fn post_empty(&self, path: &str, headers: &[(&str, &str)]) -> TestResponse {
        let mut request = Request::post(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn create(&self) -> OrderId {
        self.create_for("customer-1").await
    }

    pub async fn create_for(&self, customer: &str) -> OrderId {
        let response = self.post("/orders", create_body(customer), &[]).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.order_id()
    }

    /// Every event stored, across all orders: the change feed on SQLite, a counting `Scan` of
    /// the events table on DynamoDB.
    pub async fn event_count(&self) -> usize {
        match &self.backend {
            Backend::Sqlite { store, .. } => store.read_after(0, usize::MAX).await.unwrap().len(),
            Backend::Dynamo(store) => {
                let mut count = 0;
                let mut start = None;
                loop {
                    let page = store
                        .client()
                        .scan()
                        .table_name(&store.tables().events)
                        .select(Select::Count)
                        .consistent_read(true)
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .unwrap_or_else(|err| panic!("counting events: {err:?}"));
                    count += usize::try_from(page.count()).unwrap();
                    start = page.last_evaluated_key;
                    if start.is_none() {
                        break count;
                    }
                }
            }
        }
    }

    /// One order's events, through the `EventStore` port.
    pub async fn history(&self, id: OrderId) -> Vec<StoredEvent> {
        EventStore::load(&*self.store, id, None).await.unwrap()
    }

    /// Plays the projector for one order: folds its events and stores the view.
    pub async fn project(&self, id: OrderId) -> OrderView {
        let state = fold(OrderState::default(), &self.history(id).await).unwrap();
        let view = OrderView::from_state(id, state).unwrap();
        let current = ReadModelStore::get(&*self.store, id)
            .await
            .unwrap()
            .map(|v| v.version);
        assert_eq!(
            self.store.put(&view, current).await.unwrap(),
            PutOutcome::Written
        );
        view
    }
}

/// Sends `request` through `router`, which serves both APIs.
pub async fn send(router: Router, request: Request<Body>) -> TestResponse {
    send_to(Api::Both, router, request).await
}

/// Sends `request` through `router`, which serves `api`, and checks the response against that
/// API's OpenAPI document ([`contract::check`]): every response of the router tests passes
/// through here.
pub async fn send_to(api: Api, router: Router, request: Request<Body>) -> TestResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    };
    contract::check(api, &method, &path, status, &headers, &body);
    TestResponse {
        status,
        headers,
        body,
    }
}

/// The kit's create request with a total of 1300: two of `SKU-1` at 150, one of `SKU-2` at 1000.
pub fn create_body(customer: &str) -> Value {
    let mut body = orders_testkit::fixtures::create_body(customer);
    body["items"][0]["unitPrice"] = json!(150);
    body["items"][1]["unitPrice"] = json!(1000);
    body
}

pub fn request(method: Method, path: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(path)
}
