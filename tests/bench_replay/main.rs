//! `replay-bench`: the rate and peak memory of `orders replay`, as an operator runs it.
//!
//! For each size it seeds a fresh store with orders of three events (created, confirmed,
//! shipped) and no views, then runs the release `orders` binary under GNU time:
//! - a rebuild, which writes every view (the heaviest replay: a new read model);
//! - a verify of the result, which only reads.
//!
//! SQLite at each `--sqlite-events` size; DynamoDB Local (DYNAMODB_ENDPOINT) at
//! `--dynamodb-events` with each of `--dynamodb-segments`. Run it through
//! `scripts/bench-replay.sh`, which builds the binaries and starts DynamoDB Local.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark's report is what it prints"
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use futures::StreamExt;
use orders_store::EventStore;
use orders_store::dynamodb::DynamoStore;
use orders_store::sqlite::SqliteStore;
use orders_tests::streams::{append, lifecycle, new_order_id};
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// Event counts to replay on SQLite.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    sqlite_events: Vec<u64>,
    /// Scan segments on SQLite.
    #[arg(long, default_value_t = 4)]
    sqlite_segments: u32,
    /// Event count on DynamoDB Local (0: skip).
    #[arg(long, default_value_t = 100_000)]
    dynamodb_events: u64,
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    dynamodb_segments: Vec<u32>,
    /// Keep the SQLite files here (`<dir>/<events>.db`) instead of in a temporary directory.
    #[arg(long)]
    keep_in: Option<std::path::PathBuf>,
}

struct Measured {
    events_per_s: f64,
    peak_rss_mb: f64,
    seconds: f64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let orders = orders_tests::orders_bin();
    let mut rows = Vec::new();
    for &events in &args.sqlite_events {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = match &args.keep_in {
            Some(keep) => keep.join(format!("{events}.db")),
            None => dir.path().join("orders.db"),
        };
        let seeded = seed(
            Arc::new(SqliteStore::open(&db).expect("open the database")),
            events,
        )
        .await;
        let store_args = ["--db", db.to_str().unwrap()];
        let segments = args.sqlite_segments.to_string();
        let shadow = shadow_name();
        for verify in [false, true] {
            let m = replay(&orders, &store_args, &[], &segments, &shadow, verify);
            rows.push(row("SQLite", seeded, &segments, verify, &m));
        }
    }
    if args.dynamodb_events > 0 {
        let endpoint = orders_tests::dynamodb_endpoint();
        let (env, tables) = orders_tests::create_unique_tables(&endpoint, "replay-bench").await;
        let client = orders_store::dynamodb::client(Some(&endpoint)).await;
        let seeded = seed(
            Arc::new(DynamoStore::new(client, tables)),
            args.dynamodb_events,
        )
        .await;
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for &segments in &args.dynamodb_segments {
            let segments = segments.to_string();
            let store_args = ["--backend", "dynamodb", "--endpoint-url", &endpoint];
            let shadow = shadow_name();
            for verify in [false, true] {
                let m = replay(&orders, &store_args, &env, &segments, &shadow, verify);
                rows.push(row("DynamoDB Local", seeded, &segments, verify, &m));
            }
        }
    }
    println!();
    println!("| backend | events | segments | run | events/s | elapsed | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

fn row(backend: &str, events: u64, segments: &str, verify: bool, m: &Measured) -> String {
    format!(
        "| {backend} | {events} | {segments} | {} | {:.0} | {:.2} s | {:.1} MB |",
        if verify {
            "verify"
        } else {
            "rebuild (writes every view)"
        },
        m.events_per_s,
        m.seconds,
        m.peak_rss_mb
    )
}

/// Appends orders of three events until `events` are stored; returns the count.
async fn seed(store: Arc<dyn EventStore>, events: u64) -> u64 {
    let orders = events.div_ceil(3);
    let started = Instant::now();
    futures::stream::iter(0..orders)
        .map(|_| {
            let store = store.clone();
            async move { append(store.as_ref(), &lifecycle(new_order_id())).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    eprintln!(
        "seeded {} events in {:.1} s",
        orders * 3,
        started.elapsed().as_secs_f64()
    );
    orders * 3
}

/// A new table for each rebuild, so that it starts from an empty read model.
fn shadow_name() -> String {
    format!("bench_shadow_{}", uuid::Uuid::now_v7().simple())
}

/// Runs `orders replay --into shadow` (a rebuild, or a verify) under GNU time; its summary
/// gives the rate, time gives the peak RSS.
fn replay(
    orders: &Path,
    store_args: &[&str],
    env: &[(&str, &str)],
    segments: &str,
    shadow: &str,
    verify: bool,
) -> Measured {
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "peak-rss-kb %M"])
        .arg(orders)
        .arg("replay")
        .args(store_args)
        .args(["--segments", segments, "--into", shadow, "--json"])
        .envs(env.iter().copied());
    if verify {
        command.arg("--verify");
    }
    let output = command
        .output()
        .expect("run /usr/bin/time (GNU time, Debian package `time`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "replay failed: {stdout}\n{stderr}");
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON summary: {stdout}\n{stderr}"));
    let peak_kb: f64 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak-rss-kb "))
        .and_then(|kb| kb.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from time: {stderr}"));
    eprintln!("{summary}");
    Measured {
        events_per_s: summary["eventsPerSecond"].as_f64().unwrap_or(0.0),
        seconds: summary["elapsedSeconds"].as_f64().unwrap_or(0.0),
        peak_rss_mb: peak_kb / 1024.0,
    }
}
