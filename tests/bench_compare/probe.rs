//! `--lag-probe`: every `every` during the measured window, create a probe order and time,
//! from the create's acknowledgement (its response's status line):
//! - the projection lag: until a plain `GET /orders/{id}` (no `minVersion`) answers 200;
//! - the publish lag: until its `OrderCreated` arrives on the `GET /local/bus` SSE feed.
//!
//! Every probe is timed on the bus (the follower reads the feed anyway). The polls of the GET
//! would load the server in proportion to the lag, so one probe at a time polls (a probe
//! created while another polls is timed on the bus only), at growing intervals: 5 ms, then
//! 25% more each time, at most 25 ms. The projection lag is thus measured to within about
//! 25% (10% past 100 ms) plus a GET's latency; the JSON line counts the polls.
//!
//! A probe that takes longer than [`GIVE_UP`] counts as a timeout and as a sample of
//! [`GIVE_UP`], so a stuck consumer shows in the p99 instead of vanishing from it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::load::Window;
use crate::stats::Latencies;

/// The customer of the probe orders, to tell them on the bus from the load's.
const PROBE_CUSTOMER: &str = "compare-bench-lag-probe";
const GIVE_UP: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
pub struct ProbeConfig {
    pub every: Duration,
}

/// The first wait between two polls of a probe's GET, its growth, and its cap.
const FIRST_POLL_WAIT: Duration = Duration::from_millis(5);
const POLL_WAIT_GROWTH: f64 = 1.25;
const MAX_POLL_WAIT: Duration = Duration::from_millis(25);

/// The one probe at a time that polls the GET, and how many GETs the probes sent.
#[derive(Default)]
struct Poller {
    busy: AtomicBool,
    gets: AtomicU64,
}

/// The probes' meeting point with the bus follower.
#[derive(Default)]
struct Board {
    /// Probes acknowledged and not yet seen on the bus.
    waiting: HashMap<String, Instant>,
    /// Probes seen on the bus before their create's answer was read.
    seen_early: HashMap<String, Instant>,
    publish: Latencies,
    /// Entries the server skipped because this follower fell behind.
    skipped: u64,
}

type Shared = Arc<Mutex<Board>>;

fn lock(board: &Shared) -> std::sync::MutexGuard<'_, Board> {
    board.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one probe saw.
enum Probe {
    Visible(Duration),
    TimedOut,
    /// Created and timed on the bus, while another probe polled the GET.
    BusOnly,
    CreateFailed,
}

pub async fn run(
    client: reqwest::Client,
    base: String,
    window: Window,
    config: ProbeConfig,
) -> Value {
    let board = Shared::default();
    let poller = Arc::new(Poller::default());
    let follower = follow_bus(&base, board.clone()).await;
    tokio::time::sleep_until(window.start.into()).await;
    let body: &'static [u8] = Box::leak(crate::order_body(PROBE_CUSTOMER).into_boxed_slice());
    let mut ticker = tokio::time::interval(config.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probes = Vec::new();
    loop {
        ticker.tick().await;
        if window.over() {
            break;
        }
        let (client, base) = (client.clone(), base.clone());
        let (board, poller) = (board.clone(), poller.clone());
        probes.push(tokio::spawn(async move {
            probe(&client, &base, body, &board, &poller).await
        }));
    }
    let probes_started = probes.len();
    let (mut projection, mut timeouts, mut failed) = (Latencies::default(), 0u64, 0u64);
    for probe in probes {
        match probe.await {
            Ok(Probe::Visible(lag)) => projection.push(lag),
            Ok(Probe::TimedOut) => {
                timeouts += 1;
                projection.push(GIVE_UP);
            }
            Ok(Probe::BusOnly) => {}
            Ok(Probe::CreateFailed) | Err(_) => failed += 1,
        }
    }
    let mut report = json!({
        "probes": probes_started,
        "probes_failed": failed,
        "projection": with_timeouts(projection.summary(), timeouts),
        "projection_gets": poller.gets.load(Ordering::Relaxed),
    });
    match follower {
        Ok(follower) => {
            // Every probe has been acknowledged by now; give the bus GIVE_UP to show the rest.
            let deadline = Instant::now() + GIVE_UP;
            while !lock(&board).waiting.is_empty() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            follower.abort();
            let mut board = lock(&board);
            let timeouts = board.waiting.len() as u64;
            for _ in 0..timeouts {
                board.publish.push(GIVE_UP);
            }
            report["publish"] = with_timeouts(board.publish.summary(), timeouts);
            report["bus_skipped"] = json!(board.skipped);
        }
        Err(error) => {
            tracing::warn!(%error, "no publish lag: cannot follow /local/bus");
            report["publish"] = Value::Null;
            report["bus_error"] = json!(error);
        }
    }
    report
}

fn with_timeouts(mut summary: Value, timeouts: u64) -> Value {
    summary["timeouts"] = json!(timeouts);
    summary
}

async fn probe(
    client: &reqwest::Client,
    base: &str,
    body: &'static [u8],
    board: &Shared,
    poller: &Poller,
) -> Probe {
    let response = client
        .post(format!("{base}/orders"))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let acknowledged = Instant::now();
    let Ok(response) = response else {
        return Probe::CreateFailed;
    };
    if response.status() != 201 {
        return Probe::CreateFailed;
    }
    let Ok(order) = response.json::<Value>().await else {
        return Probe::CreateFailed;
    };
    let Some(id) = order["orderId"].as_str().map(str::to_owned) else {
        return Probe::CreateFailed;
    };
    {
        let mut board = lock(board);
        match board.seen_early.remove(&id) {
            Some(seen) => {
                let lag = seen.saturating_duration_since(acknowledged);
                board.publish.push(lag);
            }
            None => {
                board.waiting.insert(id.clone(), acknowledged);
            }
        }
    }
    if poller
        .busy
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Probe::BusOnly;
    }
    let outcome =
        poll_until_visible(client, &format!("{base}/orders/{id}"), acknowledged, poller).await;
    poller.busy.store(false, Ordering::Release);
    outcome
}

async fn poll_until_visible(
    client: &reqwest::Client,
    url: &str,
    acknowledged: Instant,
    poller: &Poller,
) -> Probe {
    let mut wait = FIRST_POLL_WAIT;
    loop {
        poller.gets.fetch_add(1, Ordering::Relaxed);
        if let Ok(r) = client.get(url).send().await {
            let visible = r.status() == 200;
            let _ = r.bytes().await;
            if visible {
                return Probe::Visible(acknowledged.elapsed());
            }
        }
        if acknowledged.elapsed() > GIVE_UP {
            return Probe::TimedOut;
        }
        tokio::time::sleep(wait).await;
        wait = wait.mul_f64(POLL_WAIT_GROWTH).min(MAX_POLL_WAIT);
    }
}

/// Subscribes to `GET /local/bus` (the answer's headers received) and follows it in a task
/// that clears probes from the board as their `OrderCreated` arrives.
async fn follow_bus(base: &str, board: Shared) -> Result<tokio::task::JoinHandle<()>, String> {
    // Its own client: the load's has a request timeout, and this request lasts the run.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(format!("{base}/local/bus"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status() != 200 {
        return Err(format!("GET /local/bus answered {}", response.status()));
    }
    Ok(tokio::spawn(async move {
        let mut stream = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            let arrived = Instant::now();
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = buffer.drain(..end + 2).collect();
                on_sse_block(&String::from_utf8_lossy(&block), arrived, &board);
            }
        }
    }))
}

/// One Server-Sent Event: `event: TYPE`, `id: …`, `data: {bus entry}`.
fn on_sse_block(block: &str, arrived: Instant, board: &Shared) {
    let field = |name: &str| {
        block
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim_start)
    };
    let (Some(event), Some(data)) = (field("event"), field("data")) else {
        return;
    };
    if event == "lagged" {
        let skipped: Value = serde_json::from_str(data).unwrap_or_default();
        lock(board).skipped += skipped["skipped"].as_u64().unwrap_or(0);
        return;
    }
    if event != "OrderCreated" || !data.contains(PROBE_CUSTOMER) {
        return;
    }
    let Ok(entry) = serde_json::from_str::<Value>(data) else {
        return;
    };
    let Some(detail) = entry["Detail"]
        .as_str()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
    else {
        return;
    };
    let Some(id) = detail["orderId"].as_str() else {
        return;
    };
    let mut board = lock(board);
    match board.waiting.remove(id) {
        Some(acknowledged) => {
            let lag = arrived.saturating_duration_since(acknowledged);
            board.publish.push(lag);
        }
        None => {
            board.seen_early.insert(id.to_owned(), arrived);
        }
    }
}
