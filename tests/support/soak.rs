//! Sustained create/confirm load on a running `orders serve` while something breaks under it
//! (the process is killed, DynamoDB goes away), and the checks that nothing acknowledged was
//! lost afterwards: every 2xx is in the event store, every view converges to the fold of its
//! events, and every event reached the bus at least once.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orders_domain::{OrderId, OrderState};
use orders_store::{EventScan, OrderView, ReadModelStore, StoredEvent, fold};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::bus_queue::QueueCollector;
use crate::{client, new_order};

/// What the clients of a [`Load`] saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Orders whose create was acknowledged (201 with a body).
    pub created: Vec<String>,
    /// Orders whose confirm was acknowledged (200).
    pub confirmed: Vec<String>,
    /// 503 answers, each a problem+json with a whole-seconds `Retry-After` of at least 1.
    pub unavailable: usize,
    /// Requests that got no complete answer (the server was killed or restarting).
    pub transport_errors: usize,
    /// Every answer the API must never give under these faults: a 5xx other than a
    /// well-formed 503, or any other status a create or a fresh confirm cannot have.
    pub unexpected: Vec<String>,
}

impl Tally {
    /// Asserts the clients got no answer the API must never give under these faults.
    #[track_caller]
    pub fn assert_nothing_unexpected(&self) {
        assert!(
            self.unexpected.is_empty(),
            "answers other than 2xx or a well-formed 503: {:#?}",
            self.unexpected
        );
    }
}

/// Writers that create orders (and confirm every other one) as fast as the server lets them,
/// until stopped. [`Load::retarget`] points them at a restarted server.
pub struct Load {
    tally: Arc<Mutex<Tally>>,
    target: watch::Sender<String>,
    stop: watch::Sender<bool>,
    writers: Vec<JoinHandle<()>>,
}

/// How long a writer waits after a 503 or a failed connection before its next request:
/// sooner than `Retry-After` asks, to keep the pressure on while things are broken.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(100);

impl Load {
    /// `writers` clients on the server at `base`, creating orders for `customer`.
    pub fn start(base: &str, writers: usize, customer: &str) -> Load {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (target, _) = watch::channel(base.to_owned());
        let (stop, _) = watch::channel(false);
        let writers = (0..writers)
            .map(|writer| {
                let tally = tally.clone();
                let target = target.subscribe();
                let stop = stop.subscribe();
                let customer = customer.to_owned();
                tokio::spawn(async move { write(writer, &customer, target, stop, &tally).await })
            })
            .collect();
        Load {
            tally,
            target,
            stop,
            writers,
        }
    }

    /// Sends the following requests to the server at `base`.
    pub fn retarget(&self, base: &str) {
        self.target.send_replace(base.to_owned());
    }

    /// What the clients saw so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// Waits until at least `count` creates are acknowledged, or panics after `timeout`.
    pub async fn wait_for_creates(&self, count: usize, timeout: Duration) {
        let tally = self.tally.clone();
        crate::eventually(
            &format!("{count} creates acknowledged"),
            timeout,
            || async { (tally.lock().unwrap().created.len() >= count).then_some(()) },
        )
        .await;
    }

    /// Stops the writers (each finishes the request in hand) and returns what they saw.
    pub async fn stop(self) -> Tally {
        self.stop.send_replace(true);
        for writer in self.writers {
            writer.await.expect("a writer task");
        }
        self.tally.lock().unwrap().clone()
    }
}

async fn write(
    writer: usize,
    customer: &str,
    target: watch::Receiver<String>,
    stop: watch::Receiver<bool>,
    tally: &Mutex<Tally>,
) {
    let c = client();
    for n in 0.. {
        if *stop.borrow() {
            return;
        }
        let base = target.borrow().clone();
        let id = match answer(&c, &base, "/orders", Some(&new_order(customer)), tally).await {
            Some((StatusCode::CREATED, body)) => body["orderId"]
                .as_str()
                .unwrap_or_else(|| panic!("a created order without an orderId: {body}"))
                .to_owned(),
            Some((status, body)) => {
                let surprise = format!("POST /orders: {status}: {body}");
                tally.lock().unwrap().unexpected.push(surprise);
                tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
                continue;
            }
            None => {
                tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
                continue;
            }
        };
        tally.lock().unwrap().created.push(id.clone());
        if (n + writer).is_multiple_of(2) {
            let confirm = format!("/orders/{id}/confirm");
            match answer(&c, &base, &confirm, None, tally).await {
                Some((StatusCode::OK, _)) => tally.lock().unwrap().confirmed.push(id),
                Some((status, body)) => {
                    let surprise = format!("POST {confirm}: {status}: {body}");
                    tally.lock().unwrap().unexpected.push(surprise);
                }
                None => tokio::time::sleep(PAUSE_AFTER_FAILURE).await,
            }
        }
    }
}

/// POSTs to `base` + `path`: the status and JSON body of a 2xx, or `None` after recording
/// what else happened in `tally`.
async fn answer(
    c: &reqwest::Client,
    base: &str,
    path: &str,
    body: Option<&Value>,
    tally: &Mutex<Tally>,
) -> Option<(StatusCode, Value)> {
    let mut request = c.post(format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(body);
    }
    let Ok(response) = request.send().await else {
        tally.lock().unwrap().transport_errors += 1;
        return None;
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(bytes) = response.bytes().await else {
        tally.lock().unwrap().transport_errors += 1;
        return None;
    };
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut tally = tally.lock().unwrap();
    if status.is_success() {
        if json.is_null() {
            tally.transport_errors += 1; // a cut-off body is no acknowledgement
            return None;
        }
        return Some((status, json));
    }
    let well_formed_503 = status == StatusCode::SERVICE_UNAVAILABLE
        && content_type.as_deref() == Some("application/problem+json")
        && json["status"] == 503
        && retry_after
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|seconds| seconds >= 1);
    if well_formed_503 {
        tally.unavailable += 1;
    } else {
        tally.unexpected.push(format!(
            "POST {path}: {status}, content-type {content_type:?}, Retry-After {retry_after:?}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    None
}

/// The whole event log, read through the store's [`EventScan`] port, by order.
pub async fn all_events(store: &dyn EventScan) -> BTreeMap<OrderId, Vec<StoredEvent>> {
    let mut orders: BTreeMap<OrderId, Vec<StoredEvent>> = BTreeMap::new();
    for segment in store.plan_scan(1).await.expect("plan a scan") {
        let mut after = None;
        loop {
            let page = store
                .scan_events(&segment, after, 500)
                .await
                .expect("scan the event log");
            for event in page.items {
                orders.entry(event.order_id).or_default().push(event);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    for history in orders.values_mut() {
        history.sort_by_key(|e| e.version);
    }
    orders
}

/// Asserts every acknowledged create is in `log` (its first event `OrderCreated`) and every
/// acknowledged confirm is (an `OrderConfirmed` in its history). Returns how many
/// acknowledged commands were checked.
pub fn assert_acknowledged_in_log(
    tally: &Tally,
    log: &BTreeMap<OrderId, Vec<StoredEvent>>,
) -> usize {
    let history = |id: &str| {
        let order_id = OrderId::parse(id).unwrap_or_else(|_| panic!("an order id: {id}"));
        log.get(&order_id)
            .unwrap_or_else(|| panic!("acknowledged order {id} is not in the event store"))
    };
    for id in &tally.created {
        assert_eq!(
            history(id)[0].event_type,
            "OrderCreated",
            "the first event of {id}"
        );
    }
    for id in &tally.confirmed {
        assert!(
            history(id).iter().any(|e| e.event_type == "OrderConfirmed"),
            "acknowledged confirm of {id} is not in the event store: {:?}",
            history(id)
        );
    }
    tally.created.len() + tally.confirmed.len()
}

/// Waits until the read model holds, for every order of `log`, the fold of its events, or
/// fails after `timeout` showing the first view that differs. Returns how many converged.
pub async fn assert_views_converge(
    views: &dyn ReadModelStore,
    log: &BTreeMap<OrderId, Vec<StoredEvent>>,
    timeout: Duration,
) -> usize {
    let expected: BTreeMap<OrderId, Option<OrderView>> = log
        .iter()
        .map(|(id, history)| {
            let state = fold(OrderState::default(), history).expect("the history folds");
            (*id, OrderView::from_state(*id, state))
        })
        .collect();
    let ids: Vec<OrderId> = expected.keys().copied().collect();
    let deadline = Instant::now() + timeout;
    loop {
        let mut first_difference = None;
        let mut differing = 0;
        for chunk in ids.chunks(100) {
            let actual = views.get_many(chunk).await.expect("read the views");
            for id in chunk {
                if actual.get(id) != expected[id].as_ref() {
                    differing += 1;
                    first_difference.get_or_insert((*id, actual.get(id).cloned()));
                }
            }
        }
        let Some((id, actual)) = first_difference else {
            return ids.len();
        };
        if Instant::now() >= deadline {
            assert_eq!(
                actual,
                expected[&id],
                "{differing} of {} views differ from the fold of their events after {timeout:?}; \
                 the first, of order {id}",
                ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where a test reads what the publisher sent.
pub enum BusTap {
    /// The local bus file of `orders serve` (`bus.jsonl`), read whole each time.
    File(std::path::PathBuf),
    /// The SQS queue behind an EventBridge bus, drained in the background since the tap was
    /// made ([`BusWithQueue::collect_in_background`]).
    Queue(QueueCollector),
}

impl BusTap {
    /// Adds the `eventId` of every entry delivered so far to `seen`.
    pub async fn collect(&self, seen: &mut HashSet<Uuid>) {
        match self {
            BusTap::File(path) => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                for line in text.lines() {
                    let entry: Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("a bus line that is not JSON ({e}): {line}"));
                    let detail: Value =
                        serde_json::from_str(entry["Detail"].as_str().unwrap_or_default())
                            .unwrap_or_else(|e| {
                                panic!("a bus entry whose Detail is not JSON ({e}): {line}")
                            });
                    let id = detail["eventId"]
                        .as_str()
                        .and_then(|id| id.parse().ok())
                        .unwrap_or_else(|| panic!("a bus entry without an eventId: {line}"));
                    seen.insert(id);
                }
            }
            BusTap::Queue(collector) => seen.extend(collector.seen()),
        }
    }
}

/// Waits until `bus` has delivered every event of `log` at least once, or fails after
/// `timeout` naming what is missing. Returns how many distinct events it checked.
pub async fn assert_every_event_on_bus(
    log: &BTreeMap<OrderId, Vec<StoredEvent>>,
    bus: &BusTap,
    timeout: Duration,
) -> usize {
    let expected: HashSet<Uuid> = log.values().flatten().map(|e| e.event_id).collect();
    let deadline = Instant::now() + timeout;
    let mut seen = HashSet::new();
    loop {
        bus.collect(&mut seen).await;
        let missing: Vec<&Uuid> = expected.difference(&seen).collect();
        if missing.is_empty() {
            return expected.len();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} events never reached the bus within {timeout:?}, e.g. {:?}",
            missing.len(),
            expected.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
