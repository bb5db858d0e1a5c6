//! The read side end to end on DynamoDB Local and the moto server (EventBridge + SQS):
//! commands through the `command-api` handler; the events table's stream through the local
//! poller into the `projector` (views visible through the `query-api` handler) and the
//! `publisher` (EventBridge -> a rule -> an SQS queue that receives every event). Then the
//! publisher's faults, injected by a layer around the real EventBridge bus.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use orders_domain::OrderId;
use orders_handlers::lambda::{Api, ApiHandler, LambdaConfig};
use orders_handlers::{Stores, command_router, query_router};
use orders_projections::eventbridge::EventBridgeBus;
use orders_projections::poller::{PollerConfig, StreamHandler, StreamPoller, StreamSource};
use orders_projections::stream::publish;
use orders_projections::{
    Bus, BusEntry, BusError, EntryResult, Projector, Publisher, PublisherConfig, RetryPolicy,
};
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::{EventStore, StoredEvent};
use orders_tests::apigw_events::{self, GatewayResponse};
use orders_tests::streams::*;
use orders_tests::{create_unique_tables, dynamodb_endpoint, new_order};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

const CURSOR_KEY: &str = "stream-e2e-cursor-key-0123456789abcdef";

/// A bus on moto with a rule that sends every `orders` event to a new SQS queue.
struct BusWithQueue {
    bus_name: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl BusWithQueue {
    async fn create(prefix: &str) -> Self {
        let endpoint = moto_endpoint();
        let config =
            orders_store::aws::sdk_config(Some(&endpoint), "AWS_ENDPOINT_URL_EVENTBRIDGE").await;
        let events = aws_sdk_eventbridge::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let suffix = Uuid::now_v7().simple().to_string();
        let bus_name = format!("{prefix}-{suffix}");
        events
            .create_event_bus()
            .name(&bus_name)
            .send()
            .await
            .expect("create the bus");
        events
            .put_rule()
            .name("all-orders")
            .event_bus_name(&bus_name)
            .event_pattern(json!({"source": ["orders"]}).to_string())
            .send()
            .await
            .expect("put the rule");
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{prefix}-{suffix}"))
            .send()
            .await
            .expect("create the queue")
            .queue_url()
            .unwrap()
            .to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the queue's ARN");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .unwrap()
            .clone();
        events
            .put_targets()
            .rule("all-orders")
            .event_bus_name(&bus_name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("target the queue");
        Self {
            bus_name,
            sqs,
            queue_url,
        }
    }

    /// Every message the queue holds now, as the EventBridge events they carry.
    async fn drain(&self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = out.messages();
            if messages.is_empty() {
                return all;
            }
            for message in messages {
                all.push(serde_json::from_str(message.body().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }

    fn publisher_config(&self) -> PublisherConfig {
        PublisherConfig {
            event_bus_name: Some(self.bus_name.clone()),
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
            },
            ..PublisherConfig::default()
        }
    }
}

async fn call(handler: &ApiHandler, event: Value) -> GatewayResponse {
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    let response = Adapter::from(handler.clone())
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the handler answers");
    GatewayResponse::parse(&serde_json::to_value(&response).unwrap())
}

#[tokio::test]
async fn commands_flow_through_the_stream_to_views_and_to_an_sqs_queue_behind_the_bus() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_test_writer()
        .try_init();
    let endpoint = dynamodb_endpoint();
    let (names, tables) = create_unique_tables(&endpoint, "stream-e2e").await;
    let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables.clone());
    let vars = |name: &str| match name {
        "CURSOR_KEY" => Some(CURSOR_KEY.to_owned()),
        _ => names
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone()),
    };
    let commands = ApiHandler::new(command_router(
        Stores::shared(store.clone()),
        LambdaConfig::from_vars(Api::Commands, vars).unwrap().http,
    ));
    let queries = ApiHandler::new(query_router(
        Stores::shared(store.clone()),
        LambdaConfig::from_vars(Api::Queries, vars).unwrap().http,
    ));
    let bus = BusWithQueue::create("stream-e2e").await;

    // Both consumers, through the local poller, with small batches.
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(store.clone());
    let handlers: Vec<Arc<dyn StreamHandler>> = vec![
        Arc::new(Projector::new(shared.clone(), shared)),
        Arc::new(Publisher::new(
            Arc::new(EventBridgeBus::connect(Some(&moto_endpoint())).await),
            bus.publisher_config(),
        )),
    ];
    let source = StreamSource::connect(Some(&endpoint), tables.events.clone()).await;
    let pollers: Vec<_> = handlers
        .into_iter()
        .enumerate()
        .map(|(i, handler)| {
            let mut config = PollerConfig::new(["projector", "publisher"][i]);
            config.batch_size = 7;
            config.idle_wait = Duration::from_millis(50);
            let poller = StreamPoller::new(source.clone(), config);
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                poller
                    .run(handler, async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
                    .expect("the poller runs")
            })
        })
        .collect();

    // Twelve orders; every third is confirmed, then shipped.
    let mut orders = Vec::new();
    for i in 0..12 {
        let created = call(
            &commands,
            apigw_events::v2(
                "POST",
                "/orders",
                "",
                &[],
                Some(&new_order(&format!("e2e-{i}"))),
            ),
        )
        .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["orderId"].as_str().unwrap().to_owned();
        if i % 3 == 0 {
            for (action, version) in [("confirm", "1"), ("ship", "2")] {
                let path = format!("/orders/{id}/{action}");
                let etag = format!("\"{version}\"");
                let response = call(
                    &commands,
                    apigw_events::v2("POST", &path, "", &[("if-match", &etag)], None),
                )
                .await;
                assert_eq!(response.status, 200, "{action}: {:?}", response.body);
            }
        }
        orders.push(id);
    }

    // Projector: every view visible through the query API, at its last version.
    let mut sent: Vec<StoredEvent> = Vec::new();
    for id in &orders {
        let order_id = OrderId::parse(id).unwrap();
        let history = store.load(order_id, None).await.unwrap();
        let last = history.len() as u64;
        sent.extend(history);
        let path = format!("/orders/{id}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let response = call(&queries, apigw_events::v2("GET", &path, "", &[], None)).await;
            if response.status == 200 && response.body["version"] == last {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the view of {id} did not reach version {last}: {} {:?}",
                response.status,
                response.body
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_converged(&store, &store, order_id).await;
    }
    let listed = call(
        &queries,
        apigw_events::v2("GET", "/orders", "status=SHIPPED&limit=100", &[], None),
    )
    .await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        4,
        "{:?}",
        listed.body
    );

    // Publisher: the queue receives every event, as sent.
    let mut received: HashMap<String, Value> = HashMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while received.len() < sent.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue received {} of {} events",
            received.len(),
            sent.len()
        );
        for message in bus.drain().await {
            let id = message["detail"]["eventId"].as_str().unwrap().to_owned();
            received.insert(id, message);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(received.len(), sent.len(), "no unexpected events");
    for event in &sent {
        let message = &received[&event.event_id.to_string()];
        assert_eq!(message["source"], "orders");
        assert_eq!(message["detail-type"], event.event_type);
        assert_eq!(message["detail"]["orderId"], event.order_id.to_string());
        assert_eq!(message["detail"]["version"], event.version);
        assert_eq!(message["detail"]["eventId"], event.event_id.to_string());
    }

    stop.send(true).unwrap();
    for poller in pollers {
        tokio::time::timeout(Duration::from_secs(10), poller)
            .await
            .expect("the pollers stop")
            .unwrap();
    }
}

/// The real EventBridge bus behind a layer that fails chosen entries (by eventId) a number of
/// times with `ThrottlingException`, and records which entries each call carried.
struct FaultLayer {
    inner: EventBridgeBus,
    failures: Mutex<HashMap<Uuid, u32>>,
    calls: Mutex<Vec<Vec<Uuid>>>,
}

fn event_id(entry: &BusEntry) -> Uuid {
    let detail: Value = serde_json::from_str(&entry.detail).unwrap();
    detail["eventId"].as_str().unwrap().parse().unwrap()
}

#[async_trait]
impl Bus for FaultLayer {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        self.calls
            .lock()
            .unwrap()
            .push(entries.iter().map(event_id).collect());
        let failing: Vec<bool> = {
            let mut failures = self.failures.lock().unwrap();
            entries
                .iter()
                .map(|entry| match failures.get_mut(&event_id(entry)) {
                    Some(left) if *left > 0 => {
                        *left = left.saturating_sub(u32::from(*left != u32::MAX));
                        true
                    }
                    _ => false,
                })
                .collect()
        };
        let forward: Vec<BusEntry> = entries
            .iter()
            .zip(&failing)
            .filter(|(_, fail)| !**fail)
            .map(|(entry, _)| entry.clone())
            .collect();
        let mut forwarded = self.inner.put_events(&forward).await?.into_iter();
        Ok(failing
            .into_iter()
            .map(|fail| {
                if fail {
                    EntryResult::Failed {
                        code: "ThrottlingException".into(),
                        message: "injected".into(),
                    }
                } else {
                    forwarded.next().expect("one result per forwarded entry")
                }
            })
            .collect())
    }
}

#[tokio::test]
async fn the_publisher_resends_only_failed_entries_and_every_event_arrives() {
    let bus = BusWithQueue::create("publisher-faults").await;
    let events: Vec<StoredEvent> = (0..25)
        .map(|i| event(new_order_id(), 1, created(&format!("faults-{i}"))))
        .collect();
    let refs: Vec<&StoredEvent> = events.iter().collect();
    let layer = |failures: HashMap<Uuid, u32>| async move {
        Arc::new(FaultLayer {
            inner: EventBridgeBus::connect(Some(&moto_endpoint())).await,
            failures: Mutex::new(failures),
            calls: Mutex::default(),
        })
    };

    // Entries 3, 11 and 20 fail twice, then go through.
    let flaky: HashSet<Uuid> = [3, 11, 20].iter().map(|&i| events[i].event_id).collect();
    let faults = layer(flaky.iter().map(|id| (*id, 2)).collect()).await;
    let publisher = Publisher::new(faults.clone(), bus.publisher_config());
    let response = publish(&publisher, &batch(&refs, 100)).await.unwrap();
    assert_eq!(failed_sequence(&response), None);
    let calls = faults.calls.lock().unwrap().clone();
    let first_round: usize = calls.iter().take(3).map(Vec::len).sum();
    assert_eq!(
        first_round, 25,
        "25 entries in calls of at most 10: {calls:?}"
    );
    assert!(calls.iter().all(|call| call.len() <= 10));
    for retry in &calls[3..] {
        assert!(
            retry.iter().all(|id| flaky.contains(id)),
            "a retry carried only the failed entries: {retry:?}"
        );
    }
    assert_eq!(calls.len(), 5, "two retry rounds: {calls:?}");
    let delivered = delivered_ids(&bus).await;
    for event in &events {
        assert!(
            delivered[&event.event_id] >= 1,
            "{} arrived",
            event.event_id
        );
    }

    // One entry always fails: the batch reports its record, the others arrive.
    let stuck = events[7].event_id;
    let faults = layer([(stuck, u32::MAX)].into()).await;
    let publisher = Publisher::new(faults, bus.publisher_config());
    let response = publish(&publisher, &batch(&refs, 200)).await.unwrap();
    assert_eq!(failed_sequence(&response), Some(207));
    let delivered = delivered_ids(&bus).await;
    assert!(!delivered.contains_key(&stuck));
    assert_eq!(delivered.len(), 24);

    // No fault: every event exactly once.
    let fresh: Vec<StoredEvent> = (0..25)
        .map(|i| event(new_order_id(), 1, created(&format!("clean-{i}"))))
        .collect();
    let publisher = Publisher::new(layer(HashMap::new()).await, bus.publisher_config());
    let response = publish(&publisher, &batch(&fresh.iter().collect::<Vec<_>>(), 300))
        .await
        .unwrap();
    assert_eq!(failed_sequence(&response), None);
    let delivered = delivered_ids(&bus).await;
    assert_eq!(delivered.len(), 25);
    for event in &fresh {
        assert_eq!(delivered.get(&event.event_id), Some(&1), "exactly once");
    }
}

/// eventId -> how many times the queue received it (the queue is drained).
async fn delivered_ids(bus: &BusWithQueue) -> HashMap<Uuid, usize> {
    let mut counts = HashMap::new();
    for message in bus.drain().await {
        let id: Uuid = message["detail"]["eventId"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        *counts.entry(id).or_default() += 1;
    }
    counts
}
