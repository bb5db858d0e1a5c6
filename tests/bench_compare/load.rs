//! The workloads: N client loops over one shared connection pool, counted in a measured
//! window that starts after the warm-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::cpu::{self, WatchedPid};
use crate::probe::{self, ProbeConfig};
use crate::stats::{Latencies, finite};
use crate::{Context, Fallible};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// create -> confirm -> ship -> get, per order.
    Lifecycle,
    /// `POST /orders` only.
    Creates,
    /// `GET /orders/{id}` of orders created beforehand.
    Reads,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Lifecycle => "lifecycle",
            Workload::Creates => "creates",
            Workload::Reads => "reads",
        }
    }
}

pub struct WorkloadConfig {
    pub workload: Workload,
    pub connections: usize,
    pub warmup: Duration,
    pub measured: Duration,
    pub min_version_reads: bool,
    pub read_orders: usize,
}

/// The measured window: a request counts when it completes inside it. Loops stop at its end.
#[derive(Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn over(&self) -> bool {
        Instant::now() >= self.end
    }

    fn counts(&self, done: Instant) -> bool {
        done >= self.start && done < self.end
    }
}

/// Why a request did not count as a success.
enum Failure {
    /// No response: refused, reset, timed out.
    Transport(String),
    /// A status the workload does not expect.
    Status(u16, String),
    /// A lifecycle GET that did not answer version 3, SHIPPED (or a 404 on a plain GET).
    Stale(String),
}

/// What one client loop counted inside the window.
#[derive(Default)]
struct Tally {
    commands: Latencies,
    gets: Latencies,
    transport_errors: u64,
    status_errors: u64,
    stale_reads: u64,
    /// The first few failures, to say what went wrong.
    examples: Vec<String>,
}

impl Tally {
    fn success(&mut self, window: &Window, sent: Instant, command: bool) {
        let done = Instant::now();
        if window.counts(done) {
            let latencies = if command {
                &mut self.commands
            } else {
                &mut self.gets
            };
            latencies.push(done - sent);
        }
    }

    fn failure(&mut self, window: &Window, failure: Failure) {
        if !window.counts(Instant::now()) {
            return;
        }
        let text = match failure {
            Failure::Transport(e) => {
                self.transport_errors += 1;
                format!("transport: {e}")
            }
            Failure::Status(status, what) => {
                self.status_errors += 1;
                format!("{what}: status {status}")
            }
            Failure::Stale(what) => {
                self.stale_reads += 1;
                format!("stale read: {what}")
            }
        };
        if self.examples.len() < 3 {
            self.examples.push(text);
        }
    }

    fn add(&mut self, other: Tally) {
        self.commands.extend(other.commands);
        self.gets.extend(other.gets);
        self.transport_errors += other.transport_errors;
        self.status_errors += other.status_errors;
        self.stale_reads += other.stale_reads;
        for example in other.examples {
            if self.examples.len() < 5 {
                self.examples.push(example);
            }
        }
    }

    fn errors(&self) -> u64 {
        self.transport_errors + self.status_errors + self.stale_reads
    }
}

/// One process's CPU use over the window.
struct CpuUse {
    label: String,
    pid: u32,
    seconds: Option<f64>,
}

pub struct Outcome {
    tally: Tally,
    measured: Duration,
    cpu: Vec<CpuUse>,
    lag: Option<Value>,
}

/// Everything a client loop needs.
#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    base: Arc<str>,
    body: &'static [u8],
}

impl Target {
    async fn create(&self) -> Result<String, Failure> {
        let response = self
            .client
            .post(format!("{}/orders", self.base))
            .header(CONTENT_TYPE, "application/json")
            .body(self.body)
            .send()
            .await;
        let order = json_answer(response, 201, "create").await?;
        order["orderId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure::Status(201, "create without orderId".into()))
    }

    async fn command(&self, id: &str, action: &'static str) -> Result<(), Failure> {
        let response = self
            .client
            .post(format!("{}/orders/{id}/{action}", self.base))
            .send()
            .await;
        drained_answer(response, 200, action).await
    }

    async fn get(&self, id: &str, query: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .get(format!("{}/orders/{id}{query}", self.base))
            .send()
            .await
    }
}

async fn json_answer(
    response: reqwest::Result<reqwest::Response>,
    expected: u16,
    what: &str,
) -> Result<Value, Failure> {
    let response = response.map_err(|e| Failure::Transport(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::Transport(e.to_string()))?;
    if status != expected {
        return Err(Failure::Status(status, what.to_owned()));
    }
    serde_json::from_slice(&body).map_err(|_| Failure::Status(status, format!("{what}: not JSON")))
}

async fn drained_answer(
    response: reqwest::Result<reqwest::Response>,
    expected: u16,
    what: &str,
) -> Result<(), Failure> {
    let response = response.map_err(|e| Failure::Transport(e.to_string()))?;
    let status = response.status().as_u16();
    response
        .bytes()
        .await
        .map_err(|e| Failure::Transport(e.to_string()))?;
    if status == expected {
        Ok(())
    } else {
        Err(Failure::Status(status, what.to_owned()))
    }
}

/// Runs the workload (and the lag probe) and measures the window.
pub async fn drive(
    client: &reqwest::Client,
    base: &str,
    config: &WorkloadConfig,
    probe: Option<ProbeConfig>,
    pids: &[WatchedPid],
) -> Fallible<Outcome> {
    let target = Target {
        client: client.clone(),
        base: base.into(),
        body: Box::leak(crate::order_body("compare-bench").into_boxed_slice()),
    };
    let ids = match config.workload {
        Workload::Reads => Arc::new(prepare_reads(&target, config).await?),
        _ => Arc::new(Vec::new()),
    };
    let start = Instant::now() + config.warmup;
    let window = Window {
        start,
        end: start + config.measured,
    };
    let cpu = tokio::spawn(measure_cpu(window, pids.to_vec()));
    let probe =
        probe.map(|probe| tokio::spawn(probe::run(client.clone(), base.to_owned(), window, probe)));
    let mut loops = Vec::new();
    for n in 0..config.connections {
        let (target, ids) = (target.clone(), ids.clone());
        let min_version = config.min_version_reads;
        let workload = config.workload;
        loops.push(tokio::spawn(async move {
            match workload {
                Workload::Lifecycle => lifecycle(target, window, min_version).await,
                Workload::Creates => creates(target, window).await,
                Workload::Reads => reads(target, window, &ids, n).await,
            }
        }));
    }
    let mut tally = Tally::default();
    for client_loop in loops {
        tally.add(client_loop.await.context("a client loop panicked")?);
    }
    let cpu = cpu.await.context("the CPU sampler panicked")?;
    let lag = match probe {
        Some(probe) => Some(probe.await.context("the lag probe panicked")?),
        None => None,
    };
    Ok(Outcome {
        tally,
        measured: config.measured,
        cpu,
        lag,
    })
}

async fn lifecycle(target: Target, window: Window, min_version: bool) -> Tally {
    let query = if min_version { "?minVersion=3" } else { "" };
    let mut tally = Tally::default();
    while !window.over() {
        let sent = Instant::now();
        let id = match target.create().await {
            Ok(id) => id,
            Err(failure) => {
                tally.failure(&window, failure);
                continue;
            }
        };
        tally.success(&window, sent, true);
        let mut shipped = true;
        for action in ["confirm", "ship"] {
            let sent = Instant::now();
            match target.command(&id, action).await {
                Ok(()) => tally.success(&window, sent, true),
                Err(failure) => {
                    tally.failure(&window, failure);
                    shipped = false;
                    break;
                }
            }
        }
        if !shipped {
            continue;
        }
        let sent = Instant::now();
        let response = target.get(&id, query).await;
        let outcome = match response {
            Ok(r) if r.status() == 404 && !min_version => {
                let _ = r.bytes().await;
                Err(Failure::Stale("404".into()))
            }
            other => json_answer(other, 200, "get").await.and_then(|view| {
                if view["version"] == 3 && view["status"] == "SHIPPED" {
                    Ok(())
                } else {
                    Err(Failure::Stale(format!(
                        "version {}, status {}",
                        view["version"], view["status"]
                    )))
                }
            }),
        };
        match outcome {
            Ok(()) => tally.success(&window, sent, false),
            Err(failure) => tally.failure(&window, failure),
        }
    }
    tally
}

async fn creates(target: Target, window: Window) -> Tally {
    let mut tally = Tally::default();
    while !window.over() {
        let sent = Instant::now();
        match target.create().await {
            Ok(_) => tally.success(&window, sent, true),
            Err(failure) => tally.failure(&window, failure),
        }
    }
    tally
}

async fn reads(target: Target, window: Window, ids: &[String], first: usize) -> Tally {
    let mut tally = Tally::default();
    let mut n = first;
    while !window.over() {
        let id = &ids[n % ids.len()];
        n += 7;
        let sent = Instant::now();
        match drained_answer(target.get(id, "").await, 200, "get").await {
            Ok(()) => tally.success(&window, sent, false),
            Err(failure) => tally.failure(&window, failure),
        }
    }
    tally
}

/// Creates the orders the `reads` workload reads, `connections` at a time, and waits until
/// the read model serves the last of them.
async fn prepare_reads(target: &Target, config: &WorkloadConfig) -> Fallible<Vec<String>> {
    let per_loop = config.read_orders.div_ceil(config.connections.max(1));
    let mut loops = Vec::new();
    for _ in 0..config.connections {
        let target = target.clone();
        loops.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..per_loop {
                match target.create().await {
                    Ok(id) => ids.push(id),
                    Err(Failure::Transport(e)) => return Err(e),
                    Err(Failure::Status(status, what)) => return Err(format!("{what}: {status}")),
                    Err(Failure::Stale(what)) => return Err(what),
                }
            }
            Ok(ids)
        }));
    }
    let mut ids = Vec::new();
    for created in loops {
        ids.extend(
            created
                .await
                .context("a create loop panicked")?
                .context("creating the orders to read")?,
        );
    }
    let last = ids.last().context("no orders to read")?.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = target.get(&last, "").await
            && r.status() == 200
        {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!("the read model did not serve {last} within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(ids)
}

/// CPU seconds each process used between the window's start and end.
async fn measure_cpu(window: Window, pids: Vec<WatchedPid>) -> Vec<CpuUse> {
    let own = WatchedPid {
        label: "compare-bench".into(),
        pid: std::process::id(),
    };
    let pids: Vec<WatchedPid> = pids.into_iter().chain([own]).collect();
    tokio::time::sleep_until(window.start.into()).await;
    let before: Vec<_> = pids.iter().map(|p| cpu::cpu_seconds(p.pid).ok()).collect();
    tokio::time::sleep_until(window.end.into()).await;
    pids.into_iter()
        .zip(before)
        .map(|(p, before)| {
            let after = cpu::cpu_seconds(p.pid).ok();
            CpuUse {
                seconds: before.zip(after).map(|(b, a)| a - b),
                label: p.label,
                pid: p.pid,
            }
        })
        .collect()
}

impl Outcome {
    pub fn into_json(mut self, label: &str, round: u32, config: &WorkloadConfig) -> Value {
        let seconds = self.measured.as_secs_f64();
        let commands = self.tally.commands.len();
        let gets = self.tally.gets.len();
        let ops = match config.workload {
            Workload::Reads => gets,
            _ => commands,
        };
        let (p50, p99) = match config.workload {
            Workload::Reads => (
                self.tally.gets.percentile_ms(0.5),
                self.tally.gets.percentile_ms(0.99),
            ),
            _ => (
                self.tally.commands.percentile_ms(0.5),
                self.tally.commands.percentile_ms(0.99),
            ),
        };
        let cpu: Vec<Value> = self
            .cpu
            .iter()
            .map(|c| {
                json!({
                    "label": c.label,
                    "pid": c.pid,
                    "cpu_s": c.seconds.map_or(Value::Null, finite),
                    "ms_per_op": c.seconds.map_or(Value::Null, |s| finite(s * 1e3 / ops as f64)),
                })
            })
            .collect();
        json!({
            "label": label,
            "round": round,
            "workload": config.workload.name(),
            "connections": config.connections,
            "seconds": seconds,
            "warmup_s": config.warmup.as_secs_f64(),
            "min_version_reads": config.min_version_reads,
            "ops": ops,
            "ops_per_s": finite(ops as f64 / seconds),
            "p50_ms": finite(p50),
            "p99_ms": finite(p99),
            "commands": commands,
            "commands_per_s": finite(commands as f64 / seconds),
            "command_p50_ms": finite(self.tally.commands.percentile_ms(0.5)),
            "command_p99_ms": finite(self.tally.commands.percentile_ms(0.99)),
            "gets": gets,
            "gets_per_s": finite(gets as f64 / seconds),
            "get_p50_ms": finite(self.tally.gets.percentile_ms(0.5)),
            "get_p99_ms": finite(self.tally.gets.percentile_ms(0.99)),
            "errors": self.tally.errors(),
            "transport_errors": self.tally.transport_errors,
            "status_errors": self.tally.status_errors,
            "stale_reads": self.tally.stale_reads,
            "error_examples": self.tally.examples,
            "cpu": cpu,
            "lag": self.lag,
            "loadavg_1min": load_average(),
        })
    }
}

/// The 1-minute load average now (the machine is shared: this says how busy it was).
fn load_average() -> Value {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(Value::Null, finite)
}
