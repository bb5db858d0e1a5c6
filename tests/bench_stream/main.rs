//! `stream-bench`: the stream Lambdas' figures of the README (a benchmark, not a timed test).
//!
//! 1. Projector throughput: 1 000-record batches (three per run: every order's v1, then v2,
//!    then v3) through the `projector` handler against DynamoDB Local.
//! 2. Publisher throughput: 1 000-record batches through the `publisher` handler to an
//!    EventBridge bus on the moto server: one event of each of 1 000 orders, or, with
//!    `--events-per-order N`, N events (v1..vN) of each of 1 000 / N orders in one batch, which
//!    the publisher sends in N rounds (an order's next event waits for its previous one).
//! 3. End-to-end lag through the local poller: a create accepted by the `command-api`
//!    handler -> its view readable in the read model, one order at a time (`--lag-gap-ms`
//!    apart, so the poller idles between them). The poller's idle waits and shard refresh
//!    are flags, so one build can run an older pacing and the current one alternately
//!    (`--lag-only`).
//!
//! INIT and zip sizes of the `projector` and `publisher` bootstraps are in `lambda-bench` and
//! `scripts/package-lambdas.sh`. Needs `DYNAMODB_ENDPOINT` and `MOTO_ENDPOINT`:
//! `scripts/bench-stream.sh`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark's report is what it prints"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent};
use orders_domain::{EventData, OrderId};
use orders_handlers::lambda::{Api, ApiHandler, LambdaConfig};
use orders_handlers::{Stores, command_router};
use orders_projections::eventbridge::EventBridgeBus;
use orders_projections::poller::{PollerConfig, StreamPoller, StreamReader};
use orders_projections::stream::{project, publish};
use orders_projections::{Projector, Publisher, PublisherConfig};
use orders_store::ReadModelStore;
use orders_store::dynamodb::{self, DynamoStore};
use orders_tests::streams::{
    batch, created_by, event, failed_sequence, moto_endpoint, new_order_id,
};
use orders_tests::{apigw_events, create_unique_tables, dynamodb_endpoint, new_order};
use serde_json::Value;
use tokio::sync::watch;

#[derive(Parser)]
struct Args {
    /// Records per batch (an event source mapping's BatchSize).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Orders whose end-to-end lag is measured.
    #[arg(long, default_value_t = 100)]
    lag_samples: usize,
    /// Events of each order in one publisher batch (v1..vN, every order's v1 first).
    #[arg(long, default_value_t = 1)]
    events_per_order: usize,
    /// Only the publisher's figure (for before/after comparisons of the publisher).
    #[arg(long)]
    publisher_only: bool,
    /// Only the lag through the local poller (for before/after comparisons of its pacing).
    #[arg(long, conflicts_with = "publisher_only")]
    lag_only: bool,
    /// The pause between one order's view appearing and the next create, in ms.
    #[arg(long, default_value_t = 0)]
    lag_gap_ms: u64,
    /// The poller's first idle wait, in ms [default: PollerConfig's].
    #[arg(long)]
    idle_wait_ms: Option<u64>,
    /// The poller's longest idle wait, in ms [default: PollerConfig's].
    #[arg(long)]
    max_idle_wait_ms: Option<u64>,
    /// The poller's shard listing interval, in ms [default: PollerConfig's].
    #[arg(long)]
    shard_refresh_ms: Option<u64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let endpoint = dynamodb_endpoint();
    let (names, tables) = create_unique_tables(&endpoint, "bench-stream").await;
    let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables.clone());
    let shared = Arc::new(store.clone());
    let mut rows: Vec<(String, String)> = Vec::new();

    // 1. Projector: v1, v2, v3 of `batch` orders, one 1 000-record batch each.
    let orders: Vec<OrderId> = (0..args.batch).map(|_| new_order_id()).collect();
    if !args.publisher_only && !args.lag_only {
        let projector = Projector::new(shared.clone(), shared.clone());
        let mut projected = Vec::new();
        for (round, data) in [
            created_by("bench-customer"),
            EventData::OrderConfirmed,
            EventData::OrderShipped,
        ]
        .into_iter()
        .enumerate()
        {
            let version = round as u64 + 1;
            let events: Vec<_> = orders
                .iter()
                .map(|id| event(*id, version, data.clone()))
                .collect();
            let delivery = batch(&events.iter().collect::<Vec<_>>(), 10_000 * version);
            let started = Instant::now();
            let response = project(&projector, &delivery).await.unwrap();
            projected.push(started.elapsed());
            assert_eq!(failed_sequence(&response), None, "the batch is projected");
        }
        let view = store.get(orders[0]).await.unwrap().expect("projected");
        assert_eq!(view.version, 3);
        rows.push((
            format!("projector, {}-record batches on DynamoDB Local", args.batch),
            throughput(args.batch, &projected),
        ));
    }

    // 2. Publisher: the same records to a bus on moto.
    if !args.lag_only {
        publisher_rows(&args, &mut rows).await;
    }
    if args.publisher_only {
        print_rows(rows);
        return;
    }

    // 3. Lag through the local poller, as `orders serve --backend dynamodb` runs it.
    let mut poller_config = PollerConfig::new("projector");
    let ms_flag =
        |flag: Option<u64>, default: Duration| flag.map_or(default, Duration::from_millis);
    poller_config.idle_wait = ms_flag(args.idle_wait_ms, poller_config.idle_wait);
    poller_config.max_idle_wait = ms_flag(args.max_idle_wait_ms, poller_config.max_idle_wait);
    poller_config.shard_refresh = ms_flag(args.shard_refresh_ms, poller_config.shard_refresh);
    let pacing = format!(
        "idle wait {}..{} ms, shard refresh {} ms, {} ms between orders",
        poller_config.idle_wait.as_millis(),
        poller_config.max_idle_wait.as_millis(),
        poller_config.shard_refresh.as_millis(),
        args.lag_gap_ms
    );
    let (stop, stopped) = watch::channel(false);
    let reader = StreamReader::connect(Some(&endpoint), tables.events.clone()).await;
    let poller = StreamPoller::new(reader, poller_config);
    let handler = Arc::new(Projector::new(shared.clone(), shared.clone()));
    let polling = tokio::spawn(async move {
        let mut stopped = stopped;
        poller
            .run(handler, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    let vars = |name: &str| {
        names
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let commands = ApiHandler::new(command_router(
        Stores::shared(store.clone()),
        LambdaConfig::from_vars(Api::Commands, vars).unwrap().http,
    ));
    let mut lags = Vec::with_capacity(args.lag_samples);
    for i in 0..args.lag_samples {
        tokio::time::sleep(Duration::from_millis(args.lag_gap_ms)).await;
        let request = apigw_events::v2(
            "POST",
            "/orders",
            "",
            &[],
            Some(&new_order(&format!("lag-{i}"))),
        );
        let request: LambdaRequest = serde_json::from_value(request).unwrap();
        let response = commands
            .handle(LambdaEvent::new(request, Context::default()))
            .await
            .unwrap();
        let accepted = Instant::now();
        let response: Value = serde_json::to_value(&response).unwrap();
        assert_eq!(response["statusCode"], 201);
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        let id = OrderId::parse(body["orderId"].as_str().unwrap()).unwrap();
        loop {
            if store.get(id).await.unwrap().is_some() {
                break;
            }
            assert!(
                accepted.elapsed() < Duration::from_secs(30),
                "the view appears"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lags.push(accepted.elapsed());
    }
    stop.send(true).unwrap();
    polling.await.unwrap().expect("the poller ran");
    lags.sort();
    let quantile = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    rows.push((
        "end-to-end lag, create -> view (local poller)".to_owned(),
        format!(
            "p50 {}  p99 {}  max {}  (n={}, {pacing})",
            ms(quantile(0.5)),
            ms(quantile(0.99)),
            ms(lags[lags.len() - 1]),
            lags.len(),
        ),
    ));

    print_rows(rows);
}

/// The publisher's figure: `args.batch` records to a bus on moto, three times.
async fn publisher_rows(args: &Args, rows: &mut Vec<(String, String)>) {
    let moto = moto_endpoint();
    let bus_name = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let config = orders_store::aws::sdk_config(Some(&moto), "AWS_ENDPOINT_URL_EVENTBRIDGE").await;
    aws_sdk_eventbridge::Client::new(&config)
        .create_event_bus()
        .name(&bus_name)
        .send()
        .await
        .expect("create the bus on moto");
    let publisher = Publisher::new(
        Arc::new(EventBridgeBus::connect(Some(&moto)).await),
        PublisherConfig {
            event_bus_name: Some(bus_name),
            ..PublisherConfig::default()
        },
    );
    let per_order = args.events_per_order.max(1);
    let mut published = Vec::new();
    for round in 0..3u64 {
        // Fresh orders each round, `per_order` events of each, every order's v1 first.
        let orders: Vec<OrderId> = (0..args.batch / per_order)
            .map(|_| new_order_id())
            .collect();
        let events: Vec<_> = (1..=per_order as u64)
            .flat_map(|version| orders.iter().map(move |id| (*id, version)))
            .map(|(id, version)| event(id, version, created_by("bench-customer")))
            .collect();
        let delivery = batch(&events.iter().collect::<Vec<_>>(), 50_000 * (round + 1));
        let started = Instant::now();
        let response = publish(&publisher, &delivery).await.unwrap();
        published.push(started.elapsed());
        assert_eq!(failed_sequence(&response), None, "the batch is published");
    }
    rows.push((
        format!(
            "publisher, {}-record batches ({per_order} per order) to moto's EventBridge",
            args.batch / per_order * per_order
        ),
        throughput(args.batch / per_order * per_order, &published),
    ));
}

fn print_rows(rows: Vec<(String, String)>) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("{:width$}  result", "measure");
    println!("{:-<width$}  {:-<60}", "", "");
    for (name, result) in rows {
        println!("{name:width$}  {result}");
    }
}

/// Records/s over all batches, and each batch's time.
fn throughput(per_batch: usize, times: &[Duration]) -> String {
    let total: Duration = times.iter().sum();
    let each: Vec<String> = times.iter().map(|t| ms(*t)).collect();
    format!(
        "{:.0} records/s  (batches: {})",
        (per_batch * times.len()) as f64 / total.as_secs_f64(),
        each.join(", ")
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
