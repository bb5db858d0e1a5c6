//! `compare-bench`: one load generator for issue 15's side-by-side comparison, run against
//! an already running server at `--base` (ours, the `cqrs-es` peer, or the no-op floor), so
//! every service sees the same client, the same requests and the same checks.
//!
//! `compare-bench run --base URL` drives `--connections` clients for `--warmup` seconds (not
//! counted), then `--seconds` measured, with one of three workloads:
//! - `lifecycle` (default): per order `POST /orders` -> `POST /orders/{id}/confirm` ->
//!   `POST /orders/{id}/ship` -> `GET /orders/{id}` (with `?minVersion=3` under
//!   `--min-version-reads`). No `If-Match`, no `Idempotency-Key`. A GET that does not answer
//!   version 3, `SHIPPED`, is a stale read, counted with the errors.
//! - `creates`: `POST /orders` only.
//! - `reads`: `GET /orders/{id}` of `--read-orders` orders created first (not counted).
//!
//! `--lag-probe` samples, alongside the load, the projection lag (create acknowledged ->
//! a plain `GET` answers 200) and the publish lag (-> its `OrderCreated` on `GET /local/bus`).
//! `--pid LABEL=PID` reports the CPU seconds per command those processes spent in the
//! measured window. One JSON line per run goes to stdout (or is appended to `--json FILE`),
//! and a line for people to stderr.
//!
//! `compare-bench table FILE` prints the medians of the runs in FILE as the markdown tables of
//! `scripts/bench-compare.sh`, which starts the servers and runs the rounds.
//! `compare-bench delete-tables --endpoint URL NAME...` deletes a run's DynamoDB tables.
//!
//! Shares no code with `orders-bench` (`tests/bench/main.rs`); the idea of its projection-lag
//! sampler (create, then poll the plain GET) is reused in `probe.rs`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark's report is what it prints"
)]

mod cpu;
mod load;
mod probe;
mod stats;
mod table;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use cpu::WatchedPid;
use load::{Workload, WorkloadConfig};

#[derive(Parser)]
#[command(name = "compare-bench", about = "Issue 15's comparison load generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive one workload against a running server and report it.
    Run(RunArgs),
    /// Print the medians of the JSON lines in FILE as markdown tables.
    Table {
        /// A file of `run` JSON lines (labels peer, api, system, sqlite-creates,
        /// floor-creates, sqlite-reads, floor-reads).
        file: PathBuf,
        /// A file of capacity JSON lines: per config (`config`: peer, api, system), the
        /// `commands` of a recorded run and `orders-cost --total`'s units for it.
        #[arg(long)]
        capacity: Option<PathBuf>,
    },
    /// Delete DynamoDB tables (a run's fresh tables), ignoring those already gone.
    DeleteTables {
        /// DynamoDB endpoint, e.g. DynamoDB Local's.
        #[arg(long)]
        endpoint: String,
        /// Table names.
        #[arg(required = true)]
        tables: Vec<String>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:3000.
    #[arg(long)]
    base: String,
    /// What to drive.
    #[arg(long, value_enum, default_value_t = Workload::Lifecycle)]
    workload: Workload,
    /// Concurrent connections (one client loop each).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of load before the measured window, not counted.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The lifecycle's GET asks `?minVersion=3` (read-your-writes through the query API).
    #[arg(long)]
    min_version_reads: bool,
    /// Sample projection and publish lag alongside the load.
    #[arg(long)]
    lag_probe: bool,
    /// Milliseconds between lag probes.
    #[arg(long, default_value_t = 50)]
    probe_every_ms: u64,
    /// Orders created before the `reads` workload (not counted).
    #[arg(long, default_value_t = 1000)]
    read_orders: usize,
    /// A process whose CPU time (utime + stime) per command to report, as LABEL=PID;
    /// repeatable.
    #[arg(long = "pid", value_parser = WatchedPid::parse)]
    pids: Vec<WatchedPid>,
    /// The run's label in the JSON line (the config: peer, api, system, ...).
    #[arg(long, default_value = "run")]
    label: String,
    /// The round number in the JSON line.
    #[arg(long, default_value_t = 0)]
    round: u32,
    /// Append the JSON line to this file instead of printing it on stdout.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match command(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compare-bench: error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn command(command: Command) -> Fallible<()> {
    match command {
        Command::Table { file, capacity } => {
            let runs = json_lines(&file)?;
            let capacity = capacity.map(|f| json_lines(&f)).transpose()?;
            print!(
                "{}",
                table::render(&runs, capacity.as_deref().unwrap_or(&[]))
            );
            Ok(())
        }
        Command::DeleteTables { endpoint, tables } => {
            runtime()?.block_on(delete_tables(&endpoint, &tables))
        }
        Command::Run(args) => {
            let report = runtime()?.block_on(run(&args))?;
            eprintln!("{}", human_line(&report));
            let line = report.to_string();
            match &args.json {
                Some(path) => {
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .with_context(|| format!("cannot open {}", path.display()))?;
                    writeln!(file, "{line}")
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                None => println!("{line}"),
            }
            if report["ops"] == 0 {
                return Err("no request succeeded in the measured window".into());
            }
            Ok(())
        }
    }
}

fn runtime() -> Fallible<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

async fn run(args: &RunArgs) -> Fallible<Value> {
    let base = args.base.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections + 8)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(15))
        .build()
        .context("cannot build the HTTP client")?;
    // Any answer will do: this is the server we mean to measure, and it is up.
    client
        .get(format!(
            "{base}/orders/00000000-0000-7000-8000-000000000000"
        ))
        .send()
        .await
        .with_context(|| format!("no server answers at {base}"))?;
    let config = WorkloadConfig {
        workload: args.workload,
        connections: args.connections,
        warmup: Duration::from_secs_f64(args.warmup),
        measured: Duration::from_secs_f64(args.seconds),
        min_version_reads: args.min_version_reads,
        read_orders: args.read_orders,
    };
    let probe = args.lag_probe.then(|| probe::ProbeConfig {
        every: Duration::from_millis(args.probe_every_ms),
    });
    let outcome = load::drive(&client, &base, &config, probe, &args.pids).await?;
    Ok(outcome.into_json(&args.label, args.round, &config))
}

/// The JSON line's main figures, for people.
fn human_line(report: &Value) -> String {
    let f = |key: &str| report[key].as_f64().unwrap_or(f64::NAN);
    let mut line = format!(
        "{} round {}: {} {:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms, errors {}",
        report["label"].as_str().unwrap_or("?"),
        report["round"],
        report["workload"].as_str().unwrap_or("?"),
        f("ops_per_s"),
        f("p50_ms"),
        f("p99_ms"),
        report["errors"],
    );
    if report["workload"] == "lifecycle" {
        line.push_str(&format!(
            " (stale reads {}); GET {:.0}/s p50 {:.2} ms p99 {:.2} ms",
            report["stale_reads"],
            f("gets_per_s"),
            f("get_p50_ms"),
            f("get_p99_ms"),
        ));
    }
    for name in ["projection", "publish"] {
        let lag = &report["lag"][name];
        if lag.is_null() {
            continue;
        }
        line.push_str(&format!(
            "; {name} lag p50 {:.1} ms p99 {:.1} ms ({} samples, {} timeouts)",
            lag["p50_ms"].as_f64().unwrap_or(f64::NAN),
            lag["p99_ms"].as_f64().unwrap_or(f64::NAN),
            lag["samples"],
            lag["timeouts"],
        ));
    }
    for cpu in report["cpu"].as_array().into_iter().flatten() {
        line.push_str(&format!(
            "; {} {:.3} CPU ms/op",
            cpu["label"].as_str().unwrap_or("?"),
            cpu["ms_per_op"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    line
}

/// The JSON lines of `file`.
fn json_lines(file: &std::path::Path) -> Fallible<Vec<Value>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("a line of {} is not JSON", file.display()))
}

async fn delete_tables(endpoint: &str, tables: &[String]) -> Fallible<()> {
    let client = orders_store::dynamodb::client(Some(endpoint)).await;
    let mut failed = Vec::new();
    for table in tables {
        match client.delete_table().table_name(table).send().await {
            Ok(_) => {}
            Err(error) => {
                let error = aws_error_text(&error);
                if !error.contains("ResourceNotFound") {
                    failed.push(format!("{table}: {error}"));
                }
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// An SDK error with its source chain (the service's code is in the source).
fn aws_error_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// This binary's errors: a message for the person running it.
type Fallible<T> = Result<T, String>;

/// `anyhow`'s `context`, for [`Fallible`].
trait Context<T> {
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Fallible<T>;

    fn context(self, what: &str) -> Fallible<T>
    where
        Self: Sized,
    {
        self.with_context(|| what)
    }
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Fallible<T> {
        self.map_err(|e| format!("{}: {e}", what().into()))
    }
}

impl<T> Context<T> for Option<T> {
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Fallible<T> {
        self.ok_or_else(|| what().into())
    }
}

/// The README's example order, for `customer`.
fn order_body(customer: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "customerId": customer,
        "currency": "EUR",
        "items": [
            {"sku": "BOOK-1", "quantity": 2, "unitPrice": 1250},
            {"sku": "PEN-9", "quantity": 1, "unitPrice": 300}
        ]
    }))
    .expect("a JSON value serialises")
}
