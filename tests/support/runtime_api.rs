//! A local Lambda Runtime API (the `2018-06-01` interface a `bootstrap` polls), small enough to
//! read: it hands queued events to `GET /invocation/next` with the runtime headers, and collects
//! what the function posts back (`/response`, `/error`, `/init/error`). Used to run the real
//! `command-api` / `query-api` bootstraps in tests and to time their INIT in the benchmark.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

/// What the function answered to one invocation.
#[derive(Debug)]
pub enum Outcome {
    /// `POST /invocation/{id}/response`: the handler's result (for `lambda_http`, the API
    /// Gateway response JSON).
    Response(Value),
    /// `POST /invocation/{id}/error`: a `Diagnostic` (`errorType`, `errorMessage`).
    Error(Value),
}

struct Shared {
    queue: Mutex<VecDeque<(String, Value)>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// When `/invocation/next` was first called (the end of the function's INIT).
    first_next: watch::Sender<Option<Instant>>,
    init_error: watch::Sender<Option<(Option<String>, Value)>>,
    next_id: Mutex<u64>,
}

/// A running Runtime API on `127.0.0.1:<port>`. Stops when dropped.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:orders-local";

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            waiting: Mutex::new(HashMap::new()),
            first_next: watch::channel(None).0,
            init_error: watch::channel(None).0,
            next_id: Mutex::new(0),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Runtime API");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi {
            addr,
            shared,
            server,
        }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for a function using this endpoint.
    pub fn env_value(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `event` for the function and waits for its answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Outcome {
        let id = {
            let mut next = self.shared.next_id.lock().unwrap();
            *next += 1;
            format!("request-{next}")
        };
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().unwrap().insert(id.clone(), tx);
        self.shared
            .queue
            .lock()
            .unwrap()
            .push_back((id.clone(), event));
        self.shared.queued.notify_one();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => panic!("the Runtime API dropped invocation {id}"),
            Err(_) => panic!("the function did not answer invocation {id} within {timeout:?}"),
        }
    }

    /// When the function first asked for an event, waiting up to `timeout` for it.
    pub async fn first_next(&self, timeout: Duration) -> Option<Instant> {
        let mut rx = self.shared.first_next.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(value)) => *value,
            _ => None,
        }
    }

    /// The INIT error the function reported (its error-type header and `Diagnostic` body), if
    /// it reports one within `timeout`.
    pub async fn init_error(&self, timeout: Duration) -> Option<(Option<String>, Value)> {
        let mut rx = self.shared.init_error.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(value)) => value.clone(),
            _ => None,
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    shared.first_next.send_if_modified(|first| {
        let unset = first.is_none();
        if unset {
            *first = Some(now);
        }
        unset
    });
    // Long poll, as the real Runtime API does: answer when there is an event.
    let (id, event) = loop {
        let notified = shared.queued.notified();
        if let Some(item) = shared.queue.lock().unwrap().pop_front() {
            break item;
        }
        notified.await;
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
    };
    set("lambda-runtime-aws-request-id", id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        FUNCTION_ARN.to_owned(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".to_owned(),
    );
    set("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, event.to_string()).into_response()
}

fn finish(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        // The real API answers an unknown request id with 400 (`InvalidRequestID`).
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Outcome::Response(json_of(&body)))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Outcome::Error(json_of(&body)))
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared
        .init_error
        .send_replace(Some((error_type, json_of(&body))));
    StatusCode::ACCEPTED
}

/// A binary of this build next to the running executable: `target/<profile>/<name>` from a
/// test (`target/<profile>/deps/<test>`) or from another binary (`target/<profile>/<bin>`).
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running binary has a path");
    let mut dir = exe.parent().expect("target layout").to_path_buf();
    if dir.file_name().is_some_and(|d| d == "deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} does not exist: build it first with `cargo build --bins` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// The environment Lambda gives a function, pointed at `api`.
pub fn lambda_env(api: &RuntimeApi, function: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.env_value()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "dummy".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "dummy".to_owned()),
        ("AWS_SESSION_TOKEN", "dummy".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Starts `bin` as Lambda would: a clean environment (`PATH` aside) plus `env`, stdout and
/// stderr to `log` (or nowhere).
pub fn spawn_function(bin: &Path, env: &[(String, String)], log: Option<&Path>) -> Child {
    let output = || match log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open the function log"),
        ),
        None => Stdio::null(),
    };
    Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()))
}
