//! `orders-bench`: the performance table of the README.
//!
//! 1. Fold rates, in-process: the domain fold (`evolve`) and the read-model fold (stored
//!    envelope -> upcaster -> `evolve` -> view).
//! 2. A release `orders serve` on a temp directory, driven over loopback by N connections:
//!    `POST /orders` throughput and latency, projection lag (create acknowledged -> view
//!    visible) sampled during that load, then `GET /orders/{id}` throughput and latency.
//!
//! `--compare-sync ROUNDS` measures instead what the durable acknowledgement costs: the
//! create load against `orders serve --sync normal` and `--sync full`, alternately, ROUNDS
//! times each, in one run (so both see the same machine), and the medians of each.
//!
//! Run it with `scripts/bench.sh` (it builds the release binaries first).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark's report is what it prints"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use orders_domain::{
    CancelReason, Currency, CustomerId, EventData, Items, LineItem, OrderEvent, OrderId,
    OrderState, Quantity, Sku, Timestamp, UnitPrice, evolve,
};
use orders_store::{EventMetadata, OrderView, StoredEvent, fold};
use orders_tests::{Server, new_order};
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events per fold measurement.
    #[arg(long, default_value_t = 4_000_000)]
    fold_events: usize,
    /// Only the in-process fold measurements, no server.
    #[arg(long)]
    fold_only: bool,
    /// Instead of the table: the create load, ROUNDS times against `--sync normal` and
    /// ROUNDS times against `--sync full`, interleaved, and the medians of each.
    #[arg(long, value_name = "ROUNDS", value_parser = clap::value_parser!(u32).range(1..))]
    compare_sync: Option<u32>,
}

fn main() {
    let args = Args::parse();
    if let Some(rounds) = args.compare_sync {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(compare_sync(&args, rounds));
        return;
    }
    let mut table = vec![];
    table.extend(fold_benchmarks(args.fold_events));
    if !args.fold_only {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        table.extend(runtime.block_on(load_benchmarks(&args)));
    }
    println!("\n| measure | result | target |\n|---|---|---|");
    for (measure, result, target) in table {
        println!("| {measure} | {result} | {target} |");
    }
}

type Row = (String, String, String);

fn row(measure: &str, result: String, target: &str) -> Row {
    (measure.to_owned(), result, target.to_owned())
}

/// Order histories of four events: created (3 lines), confirmed, shipped; and cancelled ones.
fn sample_history(n: usize) -> Vec<OrderEvent> {
    let at = Timestamp::from_millis(1_790_000_000_000);
    let items = Items::parse(
        (0..3)
            .map(|i| LineItem {
                sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
                quantity: Quantity::parse(2).unwrap(),
                unit_price: UnitPrice::parse(1250).unwrap(),
            })
            .collect(),
    )
    .unwrap();
    let created = EventData::OrderCreated {
        customer_id: CustomerId::parse("customer-1").unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        total: items.total().unwrap(),
        items,
    };
    let cycle = [
        created,
        EventData::OrderConfirmed,
        EventData::OrderShipped,
        EventData::OrderCancelled {
            reason: Some(CancelReason::parse("late").unwrap()),
        },
    ];
    cycle
        .iter()
        .cycle()
        .take(n)
        .map(|data| OrderEvent {
            occurred_at: at,
            data: data.clone(),
        })
        .collect()
}

fn fold_benchmarks(n: usize) -> Vec<Row> {
    let events = sample_history(n);
    // Domain fold: each order is 4 events long, as in a real stream of orders.
    let started = Instant::now();
    for order in events.chunks(4) {
        black_box(order.iter().fold(OrderState::default(), evolve));
    }
    let domain_rate = n as f64 / started.elapsed().as_secs_f64();

    let order_id = OrderId::from_uuid(uuid_v7());
    let metadata = EventMetadata {
        correlation_id: "c".into(),
        causation_id: "c".into(),
        idempotency_key: None,
        source: "bench".into(),
    };
    let stored: Vec<StoredEvent> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            StoredEvent::new(order_id, (i % 4 + 1) as u64, uuid_v7(), e, metadata.clone())
        })
        .collect();
    let started = Instant::now();
    for order in stored.chunks(4) {
        let state = fold(OrderState::default(), order).expect("decodes");
        black_box(OrderView::from_state(order_id, state));
    }
    let view_rate = n as f64 / started.elapsed().as_secs_f64();
    vec![
        row(
            "domain fold (evolve)",
            format!("{:.2} M events/s", domain_rate / 1e6),
            "≥ 5 M events/s",
        ),
        row(
            "read-model fold (decode + upcast + evolve + view)",
            format!("{:.2} M events/s", view_rate / 1e6),
            "≥ 5 M events/s",
        ),
    ]
}

fn uuid_v7() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

struct Latencies(Vec<u32>);

impl Latencies {
    fn percentile(&mut self, p: f64) -> Duration {
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        Duration::from_micros(u64::from(*self.0.get(i).unwrap_or(&0)))
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// What every create load shares: a client pooling `--connections`, the run's length, and
/// the create body.
fn load_setup(args: &Args) -> (reqwest::Client, Duration, Arc<Vec<u8>>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let duration = Duration::from_secs(args.seconds);
    let body = Arc::new(serde_json::to_vec(&new_order("bench-customer")).unwrap());
    (client, duration, body)
}

async fn load_benchmarks(args: &Args) -> Vec<Row> {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let base: Arc<str> = server.base.clone().into();
    let (client, duration, body) = load_setup(args);

    // Phase 1: creates, with projection lag sampled alongside.
    let stop = Arc::new(AtomicBool::new(false));
    let lag_sampler = tokio::spawn(sample_projection_lag(
        client.clone(),
        base.clone(),
        stop.clone(),
    ));
    let CreateLoad {
        latencies: mut create_lat,
        ids,
        errors: create_errors,
        elapsed: create_elapsed,
    } = create_load(&client, &base, &body, args.connections, duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut lag = lag_sampler.await.unwrap();
    let creates = create_lat.0.len();

    // Phase 2: reads of the views just created.
    let ids: Arc<Vec<String>> = Arc::new(ids);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..args.connections {
        let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut n) = (Vec::new(), 0u64, worker);
            while started.elapsed() < duration {
                let id = &ids[n % ids.len()];
                n += 7;
                let sent = Instant::now();
                match client.get(format!("{base}/orders/{id}")).send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed().as_micros() as u32);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let (mut read_lat, mut read_errors) = (Latencies(Vec::new()), 0);
    for w in workers {
        let (l, e) = w.await.unwrap();
        read_lat.0.extend(l);
        read_errors += e;
    }
    let read_elapsed = started.elapsed();
    let reads = read_lat.0.len();
    drop(server);

    vec![
        row(
            &format!("POST /orders, {} connections", args.connections),
            format!(
                "{:.0} creates/s ({creates} in {:.1} s, {create_errors} errors), p50 {}, p99 {}",
                creates as f64 / create_elapsed.as_secs_f64(),
                create_elapsed.as_secs_f64(),
                ms(create_lat.percentile(0.5)),
                ms(create_lat.percentile(0.99))
            ),
            "≥ 5 000/s at p99 ≤ 20 ms",
        ),
        row(
            &format!("GET /orders/{{id}}, {} connections", args.connections),
            format!(
                "{:.0} reads/s ({reads}, {read_errors} errors), p50 {}, p99 {}",
                reads as f64 / read_elapsed.as_secs_f64(),
                ms(read_lat.percentile(0.5)),
                ms(read_lat.percentile(0.99))
            ),
            "≥ 20 000/s",
        ),
        row(
            "projection lag under the create load (create acknowledged -> view visible)",
            format!(
                "p50 {}, p99 {} ({} samples)",
                ms(lag.percentile(0.5)),
                ms(lag.percentile(0.99)),
                lag.0.len()
            ),
            "p99 ≤ 100 ms",
        ),
    ]
}

/// What one create phase measured.
struct CreateLoad {
    latencies: Latencies,
    /// Up to 2 000 created orders per connection, for the read phase.
    ids: Vec<String>,
    errors: u64,
    elapsed: Duration,
}

impl CreateLoad {
    fn rate(&self) -> f64 {
        self.latencies.0.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// `connections` clients each posting `body` back to back for `duration`.
async fn create_load(
    client: &reqwest::Client,
    base: &Arc<str>,
    body: &Arc<Vec<u8>>,
    connections: usize,
    duration: Duration,
) -> CreateLoad {
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, base, body) = (client.clone(), base.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut ids, mut errors) = (Vec::new(), Vec::new(), 0u64);
            while started.elapsed() < duration {
                let sent = Instant::now();
                let response = client
                    .post(format!("{base}/orders"))
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 201 => {
                        let v: Value = r.json().await.unwrap_or_default();
                        latencies.push(sent.elapsed().as_micros() as u32);
                        if ids.len() < 2_000 {
                            ids.push(v["orderId"].as_str().unwrap_or_default().to_owned());
                        }
                    }
                    _ => errors += 1,
                }
            }
            (latencies, ids, errors)
        }));
    }
    let (mut create_lat, mut ids, mut create_errors) = (Latencies(Vec::new()), Vec::new(), 0);
    for w in workers {
        let (l, i, e) = w.await.unwrap();
        create_lat.0.extend(l);
        ids.extend(i);
        create_errors += e;
    }
    CreateLoad {
        latencies: create_lat,
        ids,
        errors: create_errors,
        elapsed: started.elapsed(),
    }
}

/// `--compare-sync`: the create load against each sync mode, `rounds` times, interleaved and
/// with the order swapped every round so that a drift of the machine hits both alike; each
/// run on a fresh database. Prints every run, then the medians.
async fn compare_sync(args: &Args, rounds: u32) {
    const MODES: [&str; 2] = ["normal", "full"];
    let (client, duration, body) = load_setup(args);
    let mut runs: [Vec<(f64, Duration, Duration, u64)>; 2] = [Vec::new(), Vec::new()];
    println!("| round | --sync | creates/s | p50 | p99 | errors |\n|---|---|---|---|---|---|");
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for mode in order {
            let dir = tempfile::tempdir().expect("temp dir");
            let server = Server::start_with(dir.path(), &["--sync", MODES[mode]], &[]);
            let base: Arc<str> = server.base.clone().into();
            let mut load = create_load(&client, &base, &body, args.connections, duration).await;
            drop(server);
            let run = (
                load.rate(),
                load.latencies.percentile(0.5),
                load.latencies.percentile(0.99),
                load.errors,
            );
            println!(
                "| {} | {} | {:.0} | {} | {} | {} |",
                round + 1,
                MODES[mode],
                run.0,
                ms(run.1),
                ms(run.2),
                run.3
            );
            runs[mode].push(run);
        }
    }
    let median = |mode: usize| {
        let runs = &runs[mode];
        let pick = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            let n = values.len();
            (values[(n - 1) / 2] + values[n / 2]) / 2.0
        };
        (
            pick(runs.iter().map(|r| r.0).collect()),
            pick(runs.iter().map(|r| r.1.as_secs_f64() * 1e3).collect()),
            pick(runs.iter().map(|r| r.2.as_secs_f64() * 1e3).collect()),
        )
    };
    let (normal, full) = (median(0), median(1));
    println!(
        "\nmedians of {rounds} rounds, {} connections, {} s each:\n\
         | --sync | creates/s | p50 | p99 |\n|---|---|---|---|",
        args.connections, args.seconds
    );
    for (mode, (rate, p50, p99)) in MODES.iter().zip([normal, full]) {
        println!("| {mode} | {rate:.0} | {p50:.2} ms | {p99:.2} ms |");
    }
    println!(
        "\nfull / normal: {:.2}x the creates/s, {:.2}x the p99",
        full.0 / normal.0,
        full.2 / normal.2
    );
}

/// Every 20 ms: create an order, then poll its view every millisecond until the projector
/// has written it. The lag runs from the create's acknowledgement (the append committed) to
/// the first successful read.
async fn sample_projection_lag(
    client: reqwest::Client,
    base: Arc<str>,
    stop: Arc<AtomicBool>,
) -> Latencies {
    let body = serde_json::to_vec(&new_order("lag-probe")).unwrap();
    let mut lags = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(r) = client
            .post(format!("{base}/orders"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
        else {
            continue;
        };
        let acknowledged = Instant::now();
        let Ok(v) = r.json::<Value>().await else {
            continue;
        };
        let id = v["orderId"].as_str().unwrap_or_default().to_owned();
        loop {
            if let Ok(r) = client.get(format!("{base}/orders/{id}")).send().await
                && r.status() == 200
            {
                lags.push(acknowledged.elapsed().as_micros() as u32);
                break;
            }
            if acknowledged.elapsed() > Duration::from_secs(5) {
                lags.push(5_000_000);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Latencies(lags)
}
