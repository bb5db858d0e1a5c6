use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use orders_store::sqlite::SqliteStore;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::*;
use crate::consumer::BatchFailure;
use crate::publisher::{Bus, BusEntry, BusError, EntryResult, Publisher, PublisherConfig};
use crate::test_support::*;

/// Records what it handled; optionally fails once at one event, or dawdles over each batch.
struct Recorder {
    handled: Mutex<Vec<Uuid>>,
    count: watch::Sender<usize>,
    fail_once_at: Mutex<Option<Uuid>>,
    delay: Duration,
    /// Signalled when a batch arrives.
    entered: Notify,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Self::with(None, Duration::ZERO)
    }
    fn with(fail_once_at: Option<Uuid>, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            handled: Mutex::default(),
            count: watch::Sender::new(0),
            fail_once_at: Mutex::new(fail_once_at),
            delay,
            entered: Notify::new(),
        })
    }
    fn handled(&self) -> Vec<Uuid> {
        self.handled.lock().unwrap().clone()
    }
    async fn wait_for(&self, n: usize) {
        let mut count = self.count.subscribe();
        let reached = tokio::time::timeout(Duration::from_secs(10), count.wait_for(|&c| c >= n))
            .await
            .is_ok();
        assert!(
            reached,
            "{n} events handled in time; got {}",
            *self.count.borrow()
        );
    }
    fn record(&self, events: &[StoredEvent]) {
        self.handled
            .lock()
            .unwrap()
            .extend(events.iter().map(|e| e.event_id));
        self.count.send_modify(|c| *c += events.len());
    }
}

#[async_trait]
impl ConsumerHandler for Recorder {
    async fn handle(&self, events: &[StoredEvent]) -> Result<(), BatchFailure> {
        self.entered.notify_one();
        tokio::time::sleep(self.delay).await;
        let fail_at = {
            let mut target = self.fail_once_at.lock().unwrap();
            let at = target.and_then(|id| events.iter().position(|e| e.event_id == id));
            if at.is_some() {
                *target = None;
            }
            at
        };
        match fail_at {
            Some(first_failed) => {
                self.record(&events[..first_failed]);
                Err(BatchFailure {
                    first_failed,
                    reason: "injected".into(),
                })
            }
            None => {
                self.record(events);
                Ok(())
            }
        }
    }
}

const NAME: &str = "test-consumer";

/// Starts a consumer; send on the returned channel to shut it down.
fn start(
    store: &SqliteStore,
    handler: impl ConsumerHandler + 'static,
    batch_size: usize,
) -> (oneshot::Sender<()>, JoinHandle<u64>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let mut consumer = FeedConsumer::new(
        NAME,
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        batch_size,
    );
    // Long enough that only the append notification can explain a prompt wake-up.
    consumer.poll_interval = Duration::from_secs(60);
    consumer.retry = RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(10),
    };
    let run = consumer.run(handler, async {
        let _ = stopped.await;
    });
    (stop, tokio::spawn(run))
}

async fn append_orders(store: &SqliteStore, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let events = lifecycle(new_order_id());
        append(store, &events).await;
        ids.extend(events.iter().map(|e| e.event_id));
    }
    ids
}

#[tokio::test]
async fn processes_everything_then_resumes_from_its_checkpoint_after_a_restart() {
    let (_dir, store) = store();
    let first_ids = append_orders(&store, 10).await;

    let recorder = Recorder::new();
    let (stop, run) = start(&store, recorder.clone(), 7);
    recorder.wait_for(30).await;
    stop.send(()).unwrap();
    let checkpoint = run.await.unwrap();
    assert_eq!(
        recorder.handled(),
        first_ids,
        "everything, once, in feed order"
    );
    assert_eq!(checkpoint, feed_head(&store).await);
    assert_eq!(store.load_checkpoint(NAME).await.unwrap(), checkpoint);

    // Restarted: one order appended while it was down, one while it runs.
    let mut later_ids = append_orders(&store, 1).await;
    let recorder = Recorder::new();
    let (stop, run) = start(&store, recorder.clone(), 7);
    recorder.wait_for(3).await;
    let appended_at = Instant::now();
    later_ids.extend(append_orders(&store, 1).await);
    recorder.wait_for(6).await;
    assert!(
        appended_at.elapsed() < Duration::from_secs(5),
        "woken by the append, not the 60 s poll"
    );
    stop.send(()).unwrap();
    let checkpoint = run.await.unwrap();
    assert_eq!(recorder.handled(), later_ids, "nothing handled twice");
    assert_eq!(store.load_checkpoint(NAME).await.unwrap(), checkpoint);
    assert_eq!(checkpoint, feed_head(&store).await);
}

#[tokio::test]
async fn a_failed_event_is_retried_from_where_it_failed_and_never_skipped() {
    let (_dir, store) = store();
    let ids = append_orders(&store, 4).await;

    let recorder = Recorder::with(Some(ids[5]), Duration::ZERO);
    let (stop, run) = start(&store, recorder.clone(), 8);
    recorder.wait_for(12).await;
    stop.send(()).unwrap();
    run.await.unwrap();
    // The events before the failure were not redelivered; the failed one and the rest were.
    assert_eq!(recorder.handled(), ids);
    assert_eq!(
        store.load_checkpoint(NAME).await.unwrap(),
        feed_head(&store).await
    );
}

#[tokio::test]
async fn shutdown_finishes_the_batch_in_hand_and_saves_the_checkpoint() {
    let (_dir, store) = store();
    let ids = append_orders(&store, 2).await;
    let recorder = Recorder::with(None, Duration::from_millis(300));
    let (stop, run) = start(&store, recorder.clone(), 100);

    // Shut down while the (slow) batch is being handled.
    recorder.entered.notified().await;
    stop.send(()).unwrap();
    let checkpoint = run.await.unwrap();
    assert_eq!(recorder.handled(), ids);
    assert_eq!(checkpoint, feed_head(&store).await);
    assert_eq!(store.load_checkpoint(NAME).await.unwrap(), checkpoint);
}

#[tokio::test]
async fn an_idle_consumer_stops_at_once() {
    let (_dir, store) = store();
    let (stop, run) = start(&store, Recorder::new(), 10);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let asked = Instant::now();
    stop.send(()).unwrap();
    assert_eq!(run.await.unwrap(), 0);
    assert!(asked.elapsed() < Duration::from_secs(1));
}

/// Fails chosen entries a number of times, accepts the rest; logs what was sent and accepted.
#[derive(Default)]
struct FlakyBus {
    failures: Mutex<std::collections::HashMap<Uuid, u32>>,
    sent: Mutex<Vec<Uuid>>,
    accepted: Mutex<Vec<Uuid>>,
}

#[async_trait]
impl Bus for FlakyBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let mut failures = self.failures.lock().unwrap();
        Ok(entries
            .iter()
            .map(|entry| {
                let id = entry_event_id(entry);
                self.sent.lock().unwrap().push(id);
                match failures.get_mut(&id) {
                    Some(left) if *left > 0 => {
                        *left -= 1;
                        EntryResult::Failed {
                            code: "ThrottlingException".into(),
                            message: "injected".into(),
                        }
                    }
                    _ => {
                        self.accepted.lock().unwrap().push(id);
                        EntryResult::Accepted { event_id: None }
                    }
                }
            })
            .collect())
    }
}

#[tokio::test]
async fn the_publisher_resumes_at_its_lowest_failed_event_and_keeps_each_order_in_order() {
    // Given orders A, B and C of three events each in the feed, and a bus that fails B's v1
    // three times: more than one publish call's two attempts
    let (_dir, store) = store();
    let ids = append_orders(&store, 3).await;
    let bus = Arc::new(FlakyBus::default());
    bus.failures.lock().unwrap().insert(ids[3], 3);
    let publisher = Publisher::new(
        bus.clone(),
        PublisherConfig {
            retry: RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
            },
            ..PublisherConfig::default()
        },
    );

    // When the publisher consumes the feed until it is caught up
    let (stop, run) = start(&store, publisher, 100);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.load_checkpoint(NAME).await.unwrap() != feed_head(&store).await {
        assert!(Instant::now() < deadline, "caught up in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    run.await.unwrap();

    // Then B's v2 was first sent only after B's v1 was accepted, in the retried batch
    let sent = bus.sent.lock().unwrap().clone();
    let accepted = bus.accepted.lock().unwrap().clone();
    let b2_sent = sent.iter().position(|id| *id == ids[4]).unwrap();
    let b1_sends = sent[..b2_sent].iter().filter(|id| **id == ids[3]).count();
    assert_eq!(b1_sends, 4, "B's v1 failed three times, then was accepted");
    // and the retry resumed at B's v1: A once, B once, C twice (before and after the resume)
    let mut expected = ids.clone();
    expected.extend_from_slice(&ids[6..]);
    let mut got = accepted.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    // and the bus received each order's events in version order (C's came again after the
    // resume: delivery is at-least-once).
    for order in ids.chunks(3) {
        let of_order: Vec<Uuid> = accepted
            .iter()
            .copied()
            .filter(|id| order.contains(id))
            .collect();
        let first = &of_order[..3];
        assert_eq!(first, order);
    }
}
