//! SIGKILL `orders serve` again and again under a stream of creates and confirms, restarting it
//! each time, on either backend: every acknowledged command is in the event store, every view
//! equals the fold of its events, the read model lists no order twice, and the bus got every
//! event at least once (delivery is at-least-once across a crash; consumers dedupe on
//! `eventId`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orders_store::dynamodb::{self, DynamoStore};
use orders_store::sqlite::SqliteStore;
use orders_store::{EventScan, ReadModelStore};
use orders_tests::bus_queue::BusWithQueue;
use orders_tests::soak::{
    BusTap, Load, all_events, assert_acknowledged_in_log, assert_every_event_on_bus,
    assert_views_converge,
};
use orders_tests::streams::moto_endpoint;
use orders_tests::{Server, client, create_unique_tables, dynamodb_endpoint, list_all};

const CUSTOMER: &str = "cust-crash";
/// SIGKILLs per run.
const KILLS: usize = 3;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Dynamodb,
}

/// How to start `orders serve` on a backend, and where to read what it wrote.
struct Setup {
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    bus: BusTap,
    store: Option<Arc<dyn Store>>,
}

/// The two ports the checks read through.
trait Store: EventScan + ReadModelStore {}

impl<S: EventScan + ReadModelStore> Store for S {}

impl Backend {
    /// Creates each server life acknowledges before it is killed (and the last one before the
    /// checks, to show it serves). Fewer on DynamoDB: there each restart publishes the stream
    /// again from its oldest record (the poller keeps no checkpoint across restarts), and
    /// moto's `PutEvents` takes 100-250 ms a call on a busy 2-core machine.
    fn creates_per_life(self) -> usize {
        match self {
            Backend::Sqlite => 100,
            Backend::Dynamodb => 40,
        }
    }
}

impl Setup {
    async fn new(backend: Backend, dir: &Path) -> Self {
        match backend {
            // The store and the local bus file in `dir`; opened for the checks once the
            // server has created it.
            Backend::Sqlite => Setup {
                args: Vec::new(),
                env: Vec::new(),
                bus: BusTap::File(dir.join("bus.jsonl")),
                store: None,
            },
            Backend::Dynamodb => {
                let endpoint = dynamodb_endpoint();
                let (names, tables) = create_unique_tables(&endpoint, "crash").await;
                let bus = BusWithQueue::create("crash").await;
                let args = vec![
                    "--backend".into(),
                    "dynamodb".into(),
                    "--endpoint-url".into(),
                    endpoint.clone(),
                    "--event-bus".into(),
                    bus.bus_name.clone(),
                    "--eventbridge-endpoint-url".into(),
                    moto_endpoint(),
                ];
                let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables);
                Setup {
                    args,
                    env: names,
                    bus: BusTap::Queue(bus.collect_in_background()),
                    store: Some(Arc::new(store)),
                }
            }
        }
    }

    fn start(&self, dir: &Path) -> Server {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start_with(dir, &args, &env)
    }

    fn store(&mut self, dir: &Path) -> Arc<dyn Store> {
        self.store
            .get_or_insert_with(|| {
                Arc::new(SqliteStore::open(&dir.join("orders.db")).expect("open the SQLite store"))
            })
            .clone()
    }
}

#[allow(
    clippy::print_stderr,
    reason = "the loop's tally, for whoever reads the test log"
)]
async fn crash_loop(backend: Backend) {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut setup = Setup::new(backend, dir.path()).await;
    let mut server = setup.start(dir.path());
    let load = Load::start(&server.base, 4, CUSTOMER);
    let per_life = backend.creates_per_life();
    for life in 1..=KILLS {
        load.wait_for_creates(life * per_life, Duration::from_secs(30))
            .await;
        server.kill();
        server = setup.start(dir.path());
        load.retarget(&server.base);
    }
    load.wait_for_creates((KILLS + 1) * per_life, Duration::from_secs(30))
        .await;
    let tally = load.stop().await;
    tally.assert_nothing_unexpected();

    let store = setup.store(dir.path());
    let log = all_events(&*store).await;
    let commands = assert_acknowledged_in_log(&tally, &log);
    let views = assert_views_converge(&*store, &log, Duration::from_secs(30)).await;

    // The read model holds no order twice, and includes every acknowledged one.
    let c = client();
    let (listed, _) = list_all(&c, &server, &format!("customerId={CUSTOMER}&limit=100")).await;
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "an order listed twice");
    for id in &tally.created {
        assert!(
            unique.contains(id),
            "acknowledged order {id} missing from the read model"
        );
    }

    let events = assert_every_event_on_bus(&log, &setup.bus, Duration::from_secs(45)).await;
    eprintln!(
        "crash loop on {backend:?}: {KILLS} SIGKILLs; {} creates and {} confirms acknowledged \
         ({commands} checked in the event store), {} requests cut off, {} 503s; {events} events \
         verified on the bus, {views} views converged; {:?} in all",
        tally.created.len(),
        tally.confirmed.len(),
        tally.transport_errors,
        tally.unavailable,
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commands_survive_sigkills_and_everything_converges_on_sqlite() {
    crash_loop(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commands_survive_sigkills_and_everything_converges_on_dynamodb() {
    crash_loop(Backend::Dynamodb).await;
}
