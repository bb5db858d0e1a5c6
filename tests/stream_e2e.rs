//! The read side end to end on DynamoDB Local and the moto server (EventBridge + SQS):
//! commands through the `command-api` handler; the events table's stream through the local
//! poller into the `projector` (views visible through the `query-api` handler) and the
//! `publisher` (EventBridge -> a rule -> an SQS queue that receives every event). Then the
//! publisher's faults, injected by a layer around the real EventBridge bus, directly and
//! through the poller: each order's events reach the bus in version order, and a batch the
//! publisher gives up on resumes at its lowest failed record.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent};
use orders_domain::OrderId;
use orders_handlers::lambda::{Api, ApiHandler, LambdaConfig};
use orders_handlers::{Stores, command_router, query_router};
use orders_projections::eventbridge::EventBridgeBus;
use orders_projections::poller::{
    BoxError, PollerConfig, StreamHandler, StreamPoller, StreamReader,
};
use orders_projections::stream::{DynamoDbEvent, DynamoDbEventResponse, decode_record, publish};
use orders_projections::{
    Bus, BusEntry, BusError, EntryResult, Projector, Publisher, PublisherConfig, RetryPolicy,
};
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::{EventStore, StoredEvent};
use orders_tests::apigw_events::{self, GatewayResponse};
use orders_tests::bus_queue::BusWithQueue;
use orders_tests::streams::*;
use orders_tests::{create_unique_tables, dynamodb_endpoint, eventually, new_order};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

const CURSOR_KEY: &str = "stream-e2e-cursor-key-0123456789abcdef";

async fn call(handler: &ApiHandler, event: Value) -> GatewayResponse {
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    let response = handler
        .handle(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the handler answers");
    GatewayResponse::parse(&serde_json::to_value(&response).unwrap())
}

/// Logs at INFO through the test writer, and a store on fresh DynamoDB Local tables named
/// after `prefix`: returns the endpoint, the tables as the binaries' environment, and the store.
async fn logged_store(prefix: &str) -> (String, Vec<(&'static str, String)>, DynamoStore) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_test_writer()
        .try_init();
    let endpoint = dynamodb_endpoint();
    let (names, tables) = create_unique_tables(&endpoint, prefix).await;
    let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables);
    (endpoint, names, store)
}

/// Runs `poller` with `handler` on a task of its own until `stopped` turns true.
fn run_until_stopped(
    poller: StreamPoller,
    handler: Arc<dyn StreamHandler>,
    mut stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        poller
            .run(handler, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
            .expect("the poller runs")
    })
}

#[tokio::test]
async fn commands_flow_through_the_stream_to_views_and_to_an_sqs_queue_behind_the_bus() {
    let (endpoint, names, store) = logged_store("stream-e2e").await;
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
    let reader = StreamReader::connect(Some(&endpoint), store.tables().events.clone()).await;
    let pollers: Vec<_> = handlers
        .into_iter()
        .enumerate()
        .map(|(i, handler)| {
            let mut config = PollerConfig::new(["projector", "publisher"][i]);
            config.batch_size = 7;
            let poller = StreamPoller::new(reader.clone(), config);
            run_until_stopped(poller, handler, stopped.clone())
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
    /// Every call going out and its answer, in the order they happened.
    journal: Mutex<Vec<BusStep>>,
}

/// One moment in the bus's life, as the publisher saw it.
#[derive(Debug, Clone)]
enum BusStep {
    /// Call number `call` went out with these entries.
    Sent { call: usize, ids: Vec<Uuid> },
    /// Call number `call` was answered; these of its entries were accepted.
    Answered { call: usize, accepted: Vec<Uuid> },
}

fn event_id(entry: &BusEntry) -> Uuid {
    let detail: Value = serde_json::from_str(&entry.detail).unwrap();
    detail["eventId"].as_str().unwrap().parse().unwrap()
}

#[async_trait]
impl Bus for FaultLayer {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let ids: Vec<Uuid> = entries.iter().map(event_id).collect();
        let call = {
            let mut journal = self.journal.lock().unwrap();
            let mut calls = self.calls.lock().unwrap();
            calls.push(ids.clone());
            journal.push(BusStep::Sent {
                call: calls.len() - 1,
                ids: ids.clone(),
            });
            calls.len() - 1
        };
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
        let forwarded = self.inner.put_events(&forward).await;
        let results: Result<Vec<EntryResult>, BusError> = forwarded.map(|forwarded| {
            let mut forwarded = forwarded.into_iter();
            failing
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
                .collect()
        });
        let accepted = match &results {
            Ok(results) => ids
                .iter()
                .zip(results)
                .filter(|(_, result)| matches!(result, EntryResult::Accepted { .. }))
                .map(|(id, _)| *id)
                .collect(),
            Err(_) => Vec::new(),
        };
        self.journal
            .lock()
            .unwrap()
            .push(BusStep::Answered { call, accepted });
        results
    }
}

#[tokio::test]
async fn the_publisher_resends_only_failed_entries_and_every_event_arrives() {
    let bus = BusWithQueue::create("publisher-faults").await;
    let events: Vec<StoredEvent> = (0..25)
        .map(|i| event(new_order_id(), 1, created_by(&format!("faults-{i}"))))
        .collect();
    let refs: Vec<&StoredEvent> = events.iter().collect();
    let layer = |failures: HashMap<Uuid, u32>| async move {
        Arc::new(FaultLayer {
            inner: EventBridgeBus::connect(Some(&moto_endpoint())).await,
            failures: Mutex::new(failures),
            calls: Mutex::default(),
            journal: Mutex::default(),
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
        .map(|i| event(new_order_id(), 1, created_by(&format!("clean-{i}"))))
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

/// One batch the poller handed to the publisher, and what the publisher answered.
#[derive(Debug, Clone)]
struct Invocation {
    /// The batch's records: their `SequenceNumber` and the eventId of their `NewImage`.
    records: Vec<(String, Uuid)>,
    /// The `SequenceNumber` the partial batch response named, if any.
    failed_at: Option<String>,
}

/// The publisher's stream handler, recording every batch and answer.
struct RecordingHandler {
    publisher: Publisher,
    invocations: Mutex<Vec<Invocation>>,
}

#[async_trait]
impl StreamHandler for RecordingHandler {
    async fn handle(&self, event: DynamoDbEvent) -> Result<DynamoDbEventResponse, BoxError> {
        let records = event
            .records
            .iter()
            .map(|record| {
                let sequence = record.change.sequence_number.clone().unwrap();
                (sequence, decode_record(record).unwrap().event_id)
            })
            .collect();
        let response = self.publisher.handle(event).await?;
        assert!(response.batch_item_failures.len() <= 1, "{response:?}");
        let failed_at = response
            .batch_item_failures
            .first()
            .map(|failure| failure.item_identifier.clone().unwrap());
        self.invocations
            .lock()
            .unwrap()
            .push(Invocation { records, failed_at });
        Ok(response)
    }
}

/// Asserts what a subscriber of the bus would observe: no call carried two events of one
/// order, no call went out while another call with an event of the same order was in flight,
/// and none carried an order's version n+1 before a call with its version n was answered
/// with that entry accepted.
fn assert_version_order(journal: &[BusStep], events: &HashMap<Uuid, (OrderId, u64)>) {
    let mut accepted: HashSet<(OrderId, u64)> = HashSet::new();
    let mut in_flight: HashMap<OrderId, usize> = HashMap::new();
    for step in journal {
        match step {
            BusStep::Sent { call, ids } => {
                let mut orders = HashSet::new();
                for id in ids {
                    let (order, version) = events[id];
                    assert!(
                        orders.insert(order),
                        "call {call} carried two events of order {order}: {journal:#?}"
                    );
                    assert!(
                        version == 1 || accepted.contains(&(order, version - 1)),
                        "call {call} carried version {version} of order {order} before version \
                         {} was accepted: {journal:#?}",
                        version - 1
                    );
                    if let Some(other) = in_flight.insert(order, *call) {
                        panic!(
                            "call {call} carried order {order} while call {other} with it was \
                             in flight: {journal:#?}"
                        );
                    }
                }
            }
            BusStep::Answered {
                call,
                accepted: ids,
            } => {
                accepted.extend(ids.iter().map(|id| events[id]));
                in_flight.retain(|_, in_call| in_call != call);
            }
        }
    }
}

#[tokio::test]
async fn through_the_poller_an_orders_events_reach_the_bus_in_version_order_despite_faults() {
    let (endpoint, _, store) = logged_store("stream-order").await;
    let bus = BusWithQueue::create("stream-order").await;

    // Three orders of three events, appended version by version across the orders, before
    // the poller starts: the stream holds a1 b1 c1 a2 b2 c2 a3 b3 c3.
    let orders: Vec<Vec<StoredEvent>> = (0..3).map(|_| lifecycle(new_order_id())).collect();
    for version in 0..3 {
        for events in &orders {
            append(&store, &events[version..=version]).await;
        }
    }
    let (a, b) = (&orders[0], &orders[1]);
    let by_id: HashMap<Uuid, (OrderId, u64)> = orders
        .iter()
        .flatten()
        .map(|e| (e.event_id, (e.order_id, e.version)))
        .collect();

    // a1 is throttled once: the publisher resends it and a2 waits for it. b1 is throttled as
    // often as the publisher tries an event in one invocation: it gives up on b1, holds back
    // b2 and b3, and the poller must resume at b1, which then goes through.
    let config = PublisherConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        ..bus.publisher_config()
    };
    let max_attempts = config.retry.max_attempts;
    let faults = Arc::new(FaultLayer {
        inner: EventBridgeBus::connect(Some(&moto_endpoint())).await,
        failures: Mutex::new([(a[0].event_id, 1), (b[0].event_id, max_attempts)].into()),
        calls: Mutex::default(),
        journal: Mutex::default(),
    });
    let handler = Arc::new(RecordingHandler {
        publisher: Publisher::new(faults.clone(), config),
        invocations: Mutex::default(),
    });

    let (stop, stopped) = watch::channel(false);
    let reader = StreamReader::connect(Some(&endpoint), store.tables().events.clone()).await;
    let mut poller_config = PollerConfig::new("publisher");
    poller_config.retry = RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    let poller = StreamPoller::new(reader, poller_config);
    let running = run_until_stopped(poller, handler.clone(), stopped);

    // Every event reaches the queue behind the bus (SQS does not keep the order; the bus
    // calls below do).
    let received: Arc<Mutex<HashMap<Uuid, usize>>> = Arc::default();
    eventually(
        "every event reaches the queue",
        Duration::from_secs(30),
        || {
            let received = received.clone();
            let bus = &bus;
            let expected = by_id.len();
            async move {
                let drained = delivered_ids(bus).await;
                let mut received = received.lock().unwrap();
                for (id, count) in drained {
                    *received.entry(id).or_default() += count;
                }
                (received.len() >= expected).then_some(())
            }
        },
    )
    .await;
    let received = received.lock().unwrap().clone();
    for event in orders.iter().flatten() {
        assert!(
            received.contains_key(&event.event_id),
            "v{} of {} arrived",
            event.version,
            event.order_id
        );
    }
    assert_eq!(received.len(), by_id.len(), "no unexpected events");

    // The poller commits the batch that delivered b3 before it moves on.
    let b3 = b[2].event_id;
    eventually(
        "the batch with b3 is answered",
        Duration::from_secs(10),
        || {
            let handler = handler.clone();
            async move {
                let invocations = handler.invocations.lock().unwrap();
                invocations
                    .iter()
                    .any(|i| i.failed_at.is_none() && i.records.iter().any(|(_, id)| *id == b3))
                    .then_some(())
            }
        },
    )
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the poller stops")
        .unwrap();

    // At the bus: each order's events went out one at a time, in version order, each only
    // after the previous one was accepted.
    let journal = faults.journal.lock().unwrap().clone();
    assert_version_order(&journal, &by_id);
    let sends = |id: Uuid| {
        journal
            .iter()
            .filter(|step| matches!(step, BusStep::Sent { ids, .. } if ids.contains(&id)))
            .count()
    };
    assert_eq!(sends(a[0].event_id), 2, "a1: throttled once, then accepted");
    assert_eq!(
        sends(b[0].event_id),
        max_attempts as usize + 1,
        "b1: given up after {max_attempts} attempts, then accepted on the poller's retry"
    );

    // The poller: exactly one batch failed, at b1's record; the next batch started at that
    // record, and nothing before it was handed over again.
    let invocations = handler.invocations.lock().unwrap().clone();
    let failed: Vec<usize> = (0..invocations.len())
        .filter(|&i| invocations[i].failed_at.is_some())
        .collect();
    assert_eq!(failed.len(), 1, "one failed batch: {invocations:#?}");
    let failing = &invocations[failed[0]];
    let b1_sequence = failing
        .records
        .iter()
        .find(|(_, id)| *id == b[0].event_id)
        .map(|(sequence, _)| sequence.clone())
        .expect("b1 was in the failed batch");
    assert_eq!(
        failing.failed_at.as_deref(),
        Some(b1_sequence.as_str()),
        "the response named b1's record: {invocations:#?}"
    );
    let resumed = invocations
        .get(failed[0] + 1)
        .expect("the poller retried the failed batch");
    assert_eq!(
        resumed.records.first().map(|(sequence, _)| sequence),
        Some(&b1_sequence),
        "the retry started at b1's record: {invocations:#?}"
    );
    let committed: HashSet<&String> = failing
        .records
        .iter()
        .take_while(|(sequence, _)| *sequence != b1_sequence)
        .map(|(sequence, _)| sequence)
        .collect();
    for later in &invocations[failed[0] + 1..] {
        assert!(
            later.records.iter().all(|(s, _)| !committed.contains(s)),
            "a record before b1 was handed over again: {invocations:#?}"
        );
    }
    let handed: HashSet<Uuid> = invocations
        .iter()
        .flat_map(|i| i.records.iter().map(|(_, id)| *id))
        .collect();
    assert_eq!(handed, by_id.keys().copied().collect(), "every record read");
}
