//! DynamoDB goes away under load, then comes back with its data on the same port:
//! `orders serve --backend dynamodb` answers 503 problem+json with `Retry-After` while it is
//! gone (never a 500), serves again without a restart once it is back, and loses nothing:
//! every acknowledged command is in the event store, every view converges to the fold of its
//! events, and every event reaches the bus (an SQS queue behind a moto EventBridge bus) at
//! least once. The stream pollers inside `serve` ride out the outage too: their
//! `GetRecords` and `DescribeStream` fail while it lasts, then resume where they were.

use std::time::{Duration, Instant};

use orders_store::dynamodb::{self, DynamoStore};
use orders_tests::bus_queue::BusWithQueue;
use orders_tests::dynamodb_local::OwnDynamoDbLocal;
use orders_tests::soak::{
    BusTap, Load, all_events, assert_acknowledged_in_log, assert_every_event_on_bus,
    assert_views_converge,
};
use orders_tests::streams::moto_endpoint;
use orders_tests::{Server, create_unique_tables, eventually};

/// The outage lasts at least this long, and until a client has had a 503.
const OUTAGE: Duration = Duration::from_secs(4);
/// Creates acknowledged before the outage, and again after it to show the service is back.
const CREATES_PER_PHASE: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::print_stderr,
    reason = "the soak's tally, for whoever reads the test log"
)]
async fn a_dynamodb_outage_under_load_is_503s_then_service_resumes_and_nothing_is_lost() {
    let started = Instant::now();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut dynamodb = OwnDynamoDbLocal::start(data_dir.path()).await;
    let endpoint = dynamodb.endpoint();
    let (names, tables) = create_unique_tables(&endpoint, "soak").await;
    let bus = BusWithQueue::create("soak").await;
    let delivered = BusTap::Queue(bus.collect_in_background());
    let moto = moto_endpoint();
    let serve_dir = tempfile::tempdir().expect("temp dir");
    let args = [
        "--backend",
        "dynamodb",
        "--endpoint-url",
        endpoint.as_str(),
        "--event-bus",
        bus.bus_name.as_str(),
        "--eventbridge-endpoint-url",
        moto.as_str(),
    ];
    let env: Vec<(&str, &str)> = names.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with(serve_dir.path(), &args, &env);
    let load = Load::start(&server.base, 4, "cust-soak");
    load.wait_for_creates(CREATES_PER_PHASE, Duration::from_secs(30))
        .await;

    // DynamoDB stops (SIGTERM) and stays down until a client has been told to come back later.
    dynamodb.stop().await;
    let down_at = Instant::now();
    let before = load.tally();
    eventually(
        "a 503 while DynamoDB is down",
        Duration::from_secs(30),
        || async { (load.tally().unavailable > before.unavailable).then_some(()) },
    )
    .await;
    tokio::time::sleep(OUTAGE.saturating_sub(down_at.elapsed())).await;
    dynamodb.resume().await;
    let outage = down_at.elapsed();
    let back = load.tally();

    // The same `orders serve` process serves again.
    load.wait_for_creates(
        back.created.len() + CREATES_PER_PHASE,
        Duration::from_secs(30),
    )
    .await;
    let tally = load.stop().await;
    tally.assert_nothing_unexpected();
    assert_eq!(
        tally.transport_errors, 0,
        "every request got a complete answer, even while DynamoDB was down"
    );

    let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables);
    let log = all_events(&store).await;
    let commands = assert_acknowledged_in_log(&tally, &log);
    let views = assert_views_converge(&store, &log, Duration::from_secs(30)).await;
    let events = assert_every_event_on_bus(&log, &delivered, Duration::from_secs(30)).await;
    eprintln!(
        "fault soak: {} creates and {} confirms acknowledged ({commands} checked in the event \
         store), {} 503s (all with Retry-After, problem+json), {} in the {outage:?} outage (restart included), {} after; \
         {events} events verified on the bus, {views} views converged; {:?} in all",
        tally.created.len(),
        tally.confirmed.len(),
        tally.unavailable,
        back.unavailable - before.unavailable,
        tally.unavailable - back.unavailable,
        started.elapsed()
    );
}
