//! Harness for the end-to-end tests: runs the real `orders` binary and talks HTTP to it.

pub mod apigw_events;
pub mod bus_queue;
pub mod capacity;
pub mod dynamodb_local;
pub mod emf;
pub mod recorder;
pub mod replay;
pub mod runtime_api;
pub mod soak;
pub mod streams;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `orders` binary of this build (`ORDERS_BIN` overrides). `scripts/test.sh` builds it
/// before the tests run.
pub fn orders_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ORDERS_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<test-binary> -> target/<profile>/orders
    let exe = std::env::current_exe().expect("the test binary has a path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target layout")
        .join("orders");
    assert!(
        bin.exists(),
        "{} does not exist: build it first with `cargo build --bin orders` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A running `orders serve` on an ephemeral port, with its data in `dir`.
pub struct Server {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
}

impl Server {
    /// `orders serve` on the embedded store in `dir`.
    pub fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[], &[])
    }

    /// `orders serve` with extra arguments and environment (e.g. `--backend dynamodb`).
    pub fn start_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .expect("open serve.log");
        let mut child = Command::new(orders_bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(dir.join("orders.db"))
            .args(args)
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("ORDERS_SERVE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn orders serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("orders listening on ") {
                        break url.trim().to_owned();
                    }
                }
                Err(_) => panic!(
                    "orders serve did not report its address; log:\n{}",
                    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
                ),
            }
        };
        Server {
            child,
            base,
            dir: dir.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no chance to drain or save anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the process to exit on its own.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "orders serve did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A valid create body (the test kit's).
pub use orders_testkit::fixtures::create_body as new_order;

/// Retries `check` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The JSON lines the local bus wrote, parsed.
pub fn bus_entries(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("bus.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each bus line is JSON"))
        .collect()
}

/// GETs `url`: the status and the JSON body (`Null` when there is none).
pub async fn get_json(c: &reqwest::Client, url: String) -> (reqwest::StatusCode, Value) {
    let response = c.get(url).send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Follows a listing (`query` like `customerId=c&limit=3`) through its cursors to the end.
/// Returns the order ids in listing order, and how many pages that took.
pub async fn list_all(c: &reqwest::Client, server: &Server, query: &str) -> (Vec<String>, usize) {
    let (mut ids, mut pages) = (Vec::new(), 0);
    let mut url = server.url(&format!("/orders?{query}"));
    loop {
        let (status, page) = get_json(c, url).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{page}");
        pages += 1;
        let items = page["items"].as_array().expect("items");
        ids.extend(
            items
                .iter()
                .map(|v| v["orderId"].as_str().expect("orderId").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => url = server.url(&format!("/orders?{query}&cursor={cursor}")),
            None => return (ids, pages),
        }
    }
}

pub use orders_testkit::stores::dynamodb_endpoint;

/// Table names unique to one test, as the `orders` binary reads them from the environment.
pub fn unique_tables(prefix: &str) -> Vec<(&'static str, String)> {
    table_env(orders_testkit::stores::unique_tables(prefix))
}

/// Creates fresh, uniquely named tables on `endpoint`. Returns them as the `orders` binaries
/// read them from the environment, and as [`DynamoTables`](orders_store::dynamodb::DynamoTables).
pub async fn create_unique_tables(
    endpoint: &str,
    prefix: &str,
) -> (
    Vec<(&'static str, String)>,
    orders_store::dynamodb::DynamoTables,
) {
    let client = orders_store::dynamodb::client(Some(endpoint)).await;
    let tables = orders_testkit::stores::create_unique_tables(&client, prefix).await;
    (table_env(tables.clone()), tables)
}

/// The environment variables that name `tables` to the `orders` binaries.
fn table_env(tables: orders_store::dynamodb::DynamoTables) -> Vec<(&'static str, String)> {
    vec![
        ("EVENTS_TABLE", tables.events),
        ("ORDERS_TABLE", tables.orders),
        ("IDEMPOTENCY_TABLE", tables.idempotency),
    ]
}
