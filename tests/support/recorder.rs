//! A recording proxy in front of the emulators, for the IAM conformance check
//! (`scripts/iam-check.sh`, DESIGN §8).
//!
//! DynamoDB Local and moto enforce no IAM, so what a function may do on AWS is checked
//! elsewhere: every request a principal (a Lambda function, or the operator running the CLI)
//! sends goes through one [`Recorder`] of its own, which forwards it unchanged to the emulator
//! and appends one JSON line per request to `<dir>/<principal>-<id>.jsonl`:
//!
//! ```json
//! {"principal":"command-api","target":"DynamoDB_20120810.TransactWriteItems",
//!  "names":{"EVENTS_TABLE":"iam-events-…"},"status":200,"body":{…}}
//! ```
//!
//! - `target` is the operation as the wire names it: the `X-Amz-Target` of the JSON protocols
//!   (DynamoDB, DynamoDB Streams, EventBridge, SQS).
//! - `names` are the resource names the principal was configured with (its table and bus
//!   variables), so that `cdk/iam/check.ts` can map each name in a request to the resource of
//!   the synthesized template that the same variable points at.
//! - `body` is the request as sent, so the check sees what the SDK really put on the wire
//!   (each `TransactWriteItems` member, an `IndexName`, a `TableName` in a batch).
//! - `run` names the process, `seq` orders the lines of all its recorders; `step` is what the
//!   scenario was doing ([`Recorder::step`]), so that the cost model can say what each
//!   command costs.
//! - For DynamoDB's item operations, `tables`, `before`, `response` and `unprojected` carry
//!   what AWS bills a request by (see `recorder/probes.rs` and `support/capacity.rs`).
//!
//! The directory is `ORDERS_AWS_CALLS_DIR`, or `target/aws-calls` of this workspace.
//! Recording happens on every run of the tests that use a recorder; the check reads it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

mod probes;

pub use probes::{DATA_PLANE, key_of};
use probes::{Emulator, Schemas, with_consumed_capacity};

/// Orders the lines of every recorder in this process, and numbers the steps.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// This process's recordings, told apart from another run's in the same directory.
static RUN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| uuid::Uuid::now_v7().simple().to_string());

/// What the scenario is doing: a label, which time through it, and how many items it handles.
#[derive(Default)]
struct Step {
    label: Option<String>,
    id: u64,
    items: usize,
}

/// Where the recordings go (see the module docs).
pub fn calls_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ORDERS_AWS_CALLS_DIR") {
        return PathBuf::from(dir);
    }
    // tests/ -> the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .join("target")
        .join("aws-calls")
}

/// The emulators a recorder forwards to, by the service a request is for.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// DynamoDB Local: DynamoDB and DynamoDB Streams.
    pub dynamodb: String,
    /// The moto server: EventBridge and SQS. `None` when the principal calls neither.
    pub moto: Option<String>,
}

struct Shared {
    principal: String,
    names: BTreeMap<String, String>,
    upstreams: Upstreams,
    http: reqwest::Client,
    out: Mutex<File>,
    step: Mutex<Step>,
    schemas: tokio::sync::Mutex<Schemas>,
}

/// One principal's recording proxy on `127.0.0.1:<port>`. Stops when dropped.
pub struct Recorder {
    pub url: String,
    pub file: PathBuf,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Recorder {
    /// Starts a proxy for `principal` (e.g. `command-api`, `operator`), configured with the
    /// resource `names` (variable → name).
    pub async fn start(principal: &str, names: &[(&str, &str)], upstreams: Upstreams) -> Recorder {
        Self::start_in(&calls_dir(), principal, names, upstreams).await
    }

    /// Like [`Recorder::start`], recording into `dir`.
    pub async fn start_in(
        dir: &std::path::Path,
        principal: &str,
        names: &[(&str, &str)],
        upstreams: Upstreams,
    ) -> Recorder {
        std::fs::create_dir_all(dir).expect("create the recordings directory");
        let file = dir.join(format!(
            "{principal}-{}.jsonl",
            uuid::Uuid::now_v7().simple()
        ));
        let out = File::create(&file).expect("create the recording");
        let shared = Arc::new(Shared {
            principal: principal.to_owned(),
            names: names
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            upstreams,
            http: reqwest::Client::new(),
            out: Mutex::new(out),
            step: Mutex::new(Step::default()),
            schemas: tokio::sync::Mutex::new(Schemas::new()),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the recorder");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Recorder {
            url,
            file,
            shared,
            server,
        }
    }

    /// Labels the requests recorded from now on (e.g. `create, no key`) for the cost model:
    /// one more time through that step, for one item (a command, an event).
    pub fn step(&self, label: &str) {
        self.step_of(label, 1);
    }

    /// Like [`Recorder::step`], for a step that handles `items` at once (a batch of events).
    pub fn step_of(&self, label: &str, items: usize) {
        *self.shared.step.lock().expect("the step lock") = Step {
            label: Some(label.to_owned()),
            id: SEQ.fetch_add(1, Ordering::Relaxed),
            items,
        };
    }

    /// The recorded requests so far, one JSON object each.
    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .expect("read the recording")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a recorded line is JSON"))
            .collect()
    }

    /// The operations recorded so far (`X-Amz-Target`), in order.
    pub fn targets(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| c["target"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Which emulator serves `target`: DynamoDB and its streams on DynamoDB Local, the rest on moto.
fn upstream<'a>(upstreams: &'a Upstreams, target: &str) -> Option<&'a str> {
    if target.starts_with("DynamoDB_") || target.starts_with("DynamoDBStreams_") {
        Some(&upstreams.dynamodb)
    } else {
        upstreams.moto.as_deref()
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(body) => body,
        Err(error) => return reply(StatusCode::BAD_REQUEST, format!("recorder: {error}")),
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Some(base) = upstream(&shared.upstreams, &target) else {
        return reply(
            StatusCode::BAD_GATEWAY,
            format!("recorder: no emulator configured for {target:?}"),
        );
    };
    let operation = target
        .strip_prefix("DynamoDB_20120810.")
        .unwrap_or_default();
    let request: Option<Value> = DATA_PLANE
        .contains(&operation)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten();
    // The probes' way to the emulator, with the caller's own headers.
    let emulator = Emulator {
        http: &shared.http,
        base,
        headers: &parts.headers,
    };
    let mut billing = Map::new();
    let mut forwarded = body.clone();
    if let Some(request) = &request {
        let tables = emulator
            .tables(request, &mut *shared.schemas.lock().await)
            .await;
        billing.insert(
            "before".into(),
            emulator.before(operation, request, &tables).await,
        );
        billing.insert("tables".into(), json!(tables));
        if let Some(asking) = with_consumed_capacity(request) {
            forwarded = Bytes::from(asking.to_string());
        }
    }
    let response = send(
        &shared.http,
        base,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &forwarded,
    )
    .await;
    let status = response.as_ref().map_or(0, |(status, ..)| status.as_u16());
    if let (Some(request), Ok((_, _, bytes))) = (&request, &response) {
        billing.insert(
            "response".into(),
            serde_json::from_slice(bytes).unwrap_or(Value::Null),
        );
        if let Some(unprojected) = emulator.unprojected(operation, request).await {
            billing.insert("unprojected".into(), unprojected);
        }
    }
    record(&shared, &target, status, &body, billing);
    match response {
        Ok((status, headers, bytes)) => {
            let mut out = Response::new(Body::from(bytes));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            out
        }
        Err(error) => reply(StatusCode::BAD_GATEWAY, format!("recorder: {error}")),
    }
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), reqwest::Error> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forwarded = headers.clone();
    // reqwest sets these for the upstream connection.
    for hop in ["host", "content-length", "connection", "transfer-encoding"] {
        forwarded.remove(hop);
    }
    let response = http
        .request(method.clone(), format!("{base}{path}"))
        .headers(forwarded)
        .body(body.clone())
        .send()
        .await?;
    let status = response.status();
    let mut headers = response.headers().clone();
    for hop in ["content-length", "connection", "transfer-encoding"] {
        headers.remove(hop);
    }
    Ok((status, headers, response.bytes().await?))
}

fn record(shared: &Shared, target: &str, status: u16, body: &Bytes, billing: Map<String, Value>) {
    let body: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    let step = shared.step.lock().expect("the step lock");
    let mut line = json!({
        "run": *RUN,
        "seq": SEQ.fetch_add(1, Ordering::Relaxed),
        "step": step.label,
        "step_id": step.id,
        "step_items": step.items,
        "principal": shared.principal,
        "target": target,
        "names": shared.names,
        "status": status,
        "body": body,
    });
    line.as_object_mut().expect("a JSON object").extend(billing);
    let mut out = shared.out.lock().expect("the recording lock");
    writeln!(out, "{line}").expect("append to the recording");
}

fn reply(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response
}
