//! `lambda-bench`: the Lambda figures of the README (a benchmark, not a timed test).
//!
//! 1. INIT of each bootstrap (the APIs, the projector, the publisher): process start -> its first `GET /invocation/next` on a local
//!    Runtime API, against a hello-world `lambda_runtime` bootstrap (`lambda-hello`) of the same
//!    build; the runs are interleaved and the median is reported.
//! 2. Append (`POST /orders`) and get (`GET /orders/{id}`) latency on DynamoDB Local, through
//!    the handler in-process: an API Gateway v2 event JSON in, the response JSON out, exactly
//!    what the function does per invocation apart from the Runtime API's HTTP.
//! 3. The handler's own overhead: the same calls on a store whose methods return at once.
//!
//! Needs `DYNAMODB_ENDPOINT` and release binaries: `scripts/bench-lambda.sh`, or
//! `cargo build --release --bins && target/release/lambda-bench`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark's report is what it prints"
)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent};
use orders_domain::{OrderId, OrderState, Timestamp};
use orders_handlers::lambda::{self, Api, ApiHandler, LambdaConfig, LogConfig, LogFormat};
use orders_handlers::{Stores, command_router, query_router};
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::{
    AppendError, AppendRequest, EventStore, IdempotencyKey, IdempotencyRecord, IdempotencyStore,
    ListQuery, OrderView, Page, PutOutcome, ReadModelStore, StoreError, StoredEvent, fold,
};
use orders_tests::apigw_events;
use orders_tests::new_order;
use orders_tests::runtime_api::{Outcome, RuntimeApi, lambda_env, sibling_bin, spawn_function};
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// Process starts per bootstrap for the INIT median.
    #[arg(long, default_value_t = 21)]
    init_runs: usize,
    /// Calls per latency measurement on DynamoDB Local.
    #[arg(long, default_value_t = 500)]
    calls: usize,
    /// Calls per overhead measurement (no store I/O).
    #[arg(long, default_value_t = 20_000)]
    overhead_calls: usize,
    /// Extra `NAME=VALUE` environment for the API bootstraps (repeatable), e.g.
    /// `SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt` to compare trust-store loading.
    #[arg(long = "function-env", value_parser = parse_pair)]
    function_env: Vec<(String, String)>,
}

fn parse_pair(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {raw:?}"))
}

const CURSOR_KEY: &str = "bench-cursor-key-0123456789abcdef0123456789";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // As on Lambda: JSON log lines at INFO (one per request), written nowhere.
    lambda::init_tracing_to(
        &LogConfig {
            format: LogFormat::Json,
            filter: "info".into(),
        },
        std::io::sink,
    );
    let Ok(endpoint) = std::env::var("DYNAMODB_ENDPOINT") else {
        eprintln!(
            "lambda-bench: DYNAMODB_ENDPOINT is not set. Start DynamoDB Local first \
             (scripts/dynamodb-local.sh) and export the endpoint it prints."
        );
        std::process::exit(2);
    };
    let (names, tables) = orders_tests::create_unique_tables(&endpoint, "bench-lambda").await;

    let mut rows = Vec::new();

    // 1. INIT.
    let mut env: Vec<(String, String)> = names
        .clone()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), endpoint.clone()));
    env.push(("CURSOR_KEY".into(), CURSOR_KEY.into()));
    env.push(("EVENT_BUS_NAME".into(), "bench-bus".into()));
    env.extend(args.function_env.iter().cloned());
    let bins = [
        "lambda-hello",
        "command-api",
        "query-api",
        "projector",
        "publisher",
    ];
    let mut inits: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut firsts: HashMap<&str, Vec<Duration>> = HashMap::new();
    for _ in 0..args.init_runs {
        for bin in bins {
            let (init, first) = cold_start(bin, &env).await;
            inits.entry(bin).or_default().push(init);
            firsts.entry(bin).or_default().push(first);
        }
    }
    let hello = median(&mut inits.get_mut("lambda-hello").unwrap().clone());
    for bin in bins {
        let runs = inits.get_mut(bin).unwrap();
        let med = median(runs);
        let ratio = if bin == "lambda-hello" {
            String::new()
        } else {
            format!(
                "{:.2}x hello (target <= 2x)",
                med.as_secs_f64() / hello.as_secs_f64()
            )
        };
        rows.push((format!("INIT {bin}"), format!("{}  {ratio}", spread(runs))));
    }
    for bin in bins {
        rows.push((
            format!("first invocation {bin}"),
            spread(firsts.get_mut(bin).unwrap()),
        ));
    }

    // 2. Latency through the handler on DynamoDB Local.
    let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables.clone());
    let (commands, queries) = handlers(Stores::shared(store.clone()));
    let create =
        apigw_events::v2("POST", "/orders", "", &[], Some(&new_order("bench"))).to_string();
    let (append, ids) = measure(&commands, args.calls, |_| create.clone(), 201).await;
    // No projector runs here: write each order's view the way the projector would.
    for id in &ids {
        let order_id = OrderId::parse(id).unwrap();
        let events = store.load(order_id, None).await.unwrap();
        let view =
            OrderView::from_state(order_id, fold(OrderState::default(), &events).unwrap()).unwrap();
        assert_eq!(store.put(&view, None).await.unwrap(), PutOutcome::Written);
    }
    let gets: Vec<String> = ids
        .iter()
        .map(|id| apigw_events::v2("GET", &format!("/orders/{id}"), "", &[], None).to_string())
        .collect();
    let (get, _) = measure(&queries, gets.len(), |i| gets[i].clone(), 200).await;
    rows.push(("append on DynamoDB Local".into(), append.describe()));
    rows.push(("get on DynamoDB Local".into(), get.describe()));

    // 3. The handler without store I/O.
    let view = ReadModelStore::get(&store, OrderId::parse(&ids[0]).unwrap())
        .await
        .unwrap()
        .expect("a view");
    let instant = InstantStore { view };
    let (commands, queries) = handlers(Stores::shared(instant));
    let get_one =
        apigw_events::v2("GET", &format!("/orders/{}", ids[0]), "", &[], None).to_string();
    // Warm-up, then the measured calls.
    measure(&commands, 1000, |_| create.clone(), 201).await;
    let (append_overhead, _) =
        measure(&commands, args.overhead_calls, |_| create.clone(), 201).await;
    measure(&queries, 1000, |_| get_one.clone(), 200).await;
    let (get_overhead, _) = measure(&queries, args.overhead_calls, |_| get_one.clone(), 200).await;
    rows.push((
        "handler overhead, append (no store I/O)".into(),
        format!("{}  (target p99 <= 0.200 ms)", append_overhead.describe()),
    ));
    rows.push((
        "handler overhead, get (no store I/O)".into(),
        format!("{}  (target p99 <= 0.200 ms)", get_overhead.describe()),
    ));

    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("{:width$}  result", "measure");
    println!("{:-<width$}  {:-<60}", "", "");
    for (name, result) in rows {
        println!("{name:width$}  {result}");
    }
}

/// Both functions' handlers, configured as on Lambda.
fn handlers(stores: Stores) -> (ApiHandler, ApiHandler) {
    let vars = |name: &str| match name {
        "CURSOR_KEY" => Some(CURSOR_KEY.to_owned()),
        _ => Some(format!("bench-{name}")),
    };
    let commands = LambdaConfig::from_vars(Api::Commands, vars).unwrap();
    let queries = LambdaConfig::from_vars(Api::Queries, vars).unwrap();
    (
        ApiHandler::new(command_router(stores.clone(), commands.http)),
        ApiHandler::new(query_router(stores, queries.http)),
    )
}

/// Starts `bin` with a fresh Runtime API and times its INIT (process start -> first
/// `/invocation/next`) and its first invocation (event queued -> response posted): for the
/// APIs a request that reaches DynamoDB, so the SDK's connector and TLS setup are in it.
async fn cold_start(bin: &str, env: &[(String, String)]) -> (Duration, Duration) {
    let api = RuntimeApi::start().await;
    let mut all = lambda_env(&api, bin);
    all.extend_from_slice(env);
    let path = sibling_bin(bin);
    let started = Instant::now();
    let mut child = spawn_function(&path, &all, None);
    let first = api.first_next(Duration::from_secs(30)).await;
    let Some(first) = first else {
        let _ = child.kill();
        panic!("{bin} never asked for an event");
    };
    let event = match bin {
        "command-api" => apigw_events::v2("POST", "/orders", "", &[], Some(&new_order("cold"))),
        "query-api" => apigw_events::v2(
            "GET",
            "/orders/01936b2e-0000-7000-8000-000000000000",
            "",
            &[],
            None,
        ),
        // A stream batch with no records: the handler's own work, no I/O.
        "projector" | "publisher" => serde_json::json!({"Records": []}),
        _ => serde_json::json!({}),
    };
    let queued = Instant::now();
    let outcome = api.invoke(event, Duration::from_secs(30)).await;
    let answered = queued.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let Outcome::Response(response) = outcome else {
        panic!("{bin}'s first invocation failed: {outcome:?}");
    };
    if bin == "projector" || bin == "publisher" {
        assert_eq!(
            response["batchItemFailures"],
            serde_json::json!([]),
            "{bin}: {response}"
        );
    } else if bin != "lambda-hello" {
        let expected = if bin == "command-api" { 201 } else { 404 };
        assert_eq!(response["statusCode"], expected, "{bin}: {response}");
    }
    (first.duration_since(started), answered)
}

/// Median, min, max of `runs` (sorts them).
fn spread(runs: &mut [Duration]) -> String {
    let med = median(runs);
    format!(
        "median {}  (min {}, max {}, n={})",
        ms(med),
        ms(runs[0]),
        ms(runs[runs.len() - 1]),
        runs.len()
    )
}

struct Latency {
    sorted: Vec<Duration>,
}

impl Latency {
    fn quantile(&self, q: f64) -> Duration {
        let i = ((self.sorted.len() as f64 - 1.0) * q).round() as usize;
        self.sorted[i]
    }

    fn describe(&self) -> String {
        format!(
            "p50 {}  p99 {}  (n={})",
            ms(self.quantile(0.50)),
            ms(self.quantile(0.99)),
            self.sorted.len()
        )
    }
}

/// Invokes `handler` `n` times, one call at a time, with `event(i)` (API Gateway JSON text),
/// as the runtime would: parse the event, call, serialize the response. Returns the latencies
/// and the `orderId` of each response.
async fn measure(
    handler: &ApiHandler,
    n: usize,
    event: impl Fn(usize) -> String,
    status: u64,
) -> (Latency, Vec<String>) {
    let mut times = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let text = event(i);
        let started = Instant::now();
        let request: LambdaRequest = serde_json::from_str(&text).expect("an API Gateway event");
        let response = handler
            .handle(LambdaEvent::new(request, Context::default()))
            .await
            .expect("the handler answers");
        let out = serde_json::to_string(&response).unwrap();
        times.push(started.elapsed());
        let out: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["statusCode"], status, "{out}");
        let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        ids.push(body["orderId"].as_str().unwrap_or_default().to_owned());
    }
    times.sort();
    (Latency { sorted: times }, ids)
}

fn median(runs: &mut [Duration]) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A store whose every method returns at once: appends succeed, there are no events or
/// idempotency records, and every order's view is `view`. Only for the overhead figure.
#[derive(Clone)]
struct InstantStore {
    view: OrderView,
}

#[async_trait]
impl EventStore for InstantStore {
    async fn append(&self, _request: AppendRequest) -> Result<(), AppendError> {
        Ok(())
    }
    async fn load(
        &self,
        _id: OrderId,
        _up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl IdempotencyStore for InstantStore {
    async fn get(
        &self,
        _key: &IdempotencyKey,
        _now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(None)
    }
}

#[async_trait]
impl ReadModelStore for InstantStore {
    async fn get(&self, order_id: OrderId) -> Result<Option<OrderView>, StoreError> {
        let mut view = self.view.clone();
        view.order_id = order_id;
        Ok(Some(view))
    }
    async fn put(
        &self,
        _view: &OrderView,
        _expected: Option<u64>,
    ) -> Result<PutOutcome, StoreError> {
        Ok(PutOutcome::Written)
    }
    async fn list(&self, _query: &ListQuery) -> Result<Page, StoreError> {
        Ok(Page {
            items: Vec::new(),
            next: None,
        })
    }
}
