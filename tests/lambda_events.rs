//! The sample events in `events/` drive the four functions through the dev loop the README
//! shows: `cargo lambda watch` runs the functions (each one `cargo run` on first invoke, the
//! binaries `cargo build --bins` already built), and `cargo lambda invoke --data-file
//! events/<file>` sends each sample, on DynamoDB Local and the moto server.
//!
//! Needs `DYNAMODB_ENDPOINT` and `MOTO_ENDPOINT` (scripts/test.sh starts both) and cargo-lambda
//! (`scripts/lambda-dev.sh install`, from PyPI); a missing one fails the test.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orders_domain::OrderId;
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::{EventStore, ReadModelStore};
use orders_tests::apigw_events::GatewayResponse;
use orders_tests::bus_queue::BusWithQueue;
use orders_tests::streams::moto_endpoint;
use orders_tests::{create_unique_tables, dynamodb_endpoint};
use serde_json::{Value, json};

/// The order of the DynamoDB Streams sample, and of the query sample that reads it back.
const SAMPLE_ORDER: &str = "01936b2e-7a1c-7cc4-9a4e-4d5b7c0f3e21";
const CREATE: &str = "command-api.create-order.apigw-v2.json";
const GET: &str = "query-api.get-order.apigw-rest.json";
const STREAM: &str = "dynamodb-stream.order-created-confirmed.json";
/// `cargo lambda watch` up and answering; it builds nothing before the first invoke.
const WATCH_STARTS_WITHIN: Duration = Duration::from_secs(60);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The directory holding `cargo-lambda`: on `PATH`, or where pip puts console scripts
/// (`scripts/lambda-dev.sh install` installs it there, as scripts/package-lambdas.sh does).
fn cargo_lambda_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let pip_scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    on_path
        .into_iter()
        .chain(pip_scripts)
        .find(|dir| dir.join("cargo-lambda").is_file())
        .unwrap_or_else(|| {
            panic!(
                "cargo-lambda is not installed (not on PATH, nor in python3's scripts directory): \
                 run scripts/lambda-dev.sh install"
            )
        })
}

/// `cargo` (the one running the tests) with cargo-lambda on `PATH`.
fn cargo_lambda(dir: &Path) -> Command {
    let mut path = vec![dir.to_path_buf()];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(workspace())
        .env("PATH", std::env::join_paths(path).expect("a PATH"))
        .arg("lambda");
    command
}

/// A running `cargo lambda watch`, in its own process group (cargo-lambda, the `cargo run`
/// it starts per function, and the functions), all stopped when dropped.
struct Watch {
    child: Child,
    port: u16,
    log: PathBuf,
    tool_dir: PathBuf,
}

impl Watch {
    fn start(env_file: &Path, log: PathBuf) -> Watch {
        let tool_dir = cargo_lambda_dir();
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let out = std::fs::File::create(&log).expect("the watch log");
        let child = cargo_lambda(&tool_dir)
            .args(["watch", "--ignore-changes", "--locked"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .arg("--env-file")
            .arg(env_file)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("the watch log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("spawn cargo lambda watch");
        let mut watch = Watch {
            child,
            port,
            log,
            tool_dir,
        };
        let deadline = Instant::now() + WATCH_STARTS_WITHIN;
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Some(status) = watch.child.try_wait().expect("the watch process") {
                panic!("cargo lambda watch exited ({status}):\n{}", watch.log());
            }
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on {port} within {WATCH_STARTS_WITHIN:?}:\n{}",
                watch.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        watch
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `cargo lambda invoke FUNCTION --data-file events/FILE`: what the function returned.
    async fn invoke(&self, function: &str, file: &str) -> Value {
        let mut command = cargo_lambda(&self.tool_dir);
        command
            .args(["invoke", function, "--output-format", "json"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string()])
            .arg("--data-file")
            .arg(Path::new("events").join(file));
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the invoke thread")
            .expect("run cargo lambda invoke");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "cargo lambda invoke {function} --data-file events/{file}: {}\nstdout: {stdout}\n\
             stderr: {}\nwatch log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{function} answered something not JSON ({e}): {stdout}"))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The whole group: the functions outlive cargo-lambda otherwise.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// A stream function's partial batch response: nothing to retry.
fn assert_whole_batch_done(function: &str, response: &Value) {
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "{function} reported failures: {response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_drive_each_function_through_cargo_lambda_invoke() {
    let endpoint = dynamodb_endpoint();
    let moto = moto_endpoint();
    let (names, tables) = create_unique_tables(&endpoint, "events").await;
    let bus = BusWithQueue::create("lambda-events").await;
    let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables);

    // Every sample in events/ is one this test sends: none drifts untested.
    let shipped: BTreeSet<String> = std::fs::read_dir(workspace().join("events"))
        .expect("events/")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let sent: BTreeSet<String> = [CREATE, GET, STREAM].map(str::to_owned).into();
    assert_eq!(shipped, sent, "events/ holds exactly the samples sent here");

    // One environment for the four functions, as the README's loop passes it: each reads its
    // own variables (see each bootstrap's INIT) and ignores the rest.
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("lambda.env");
    let mut env: Vec<String> = names.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend([
        format!("AWS_ENDPOINT_URL_DYNAMODB={endpoint}"),
        format!("AWS_ENDPOINT_URL_EVENTBRIDGE={moto}"),
        "AWS_REGION=us-east-1".to_owned(),
        "AWS_ACCESS_KEY_ID=dummy".to_owned(),
        "AWS_SECRET_ACCESS_KEY=dummy".to_owned(),
        "CURSOR_KEY=lambda-events-cursor-key-0123456789abcdef".to_owned(),
        format!("EVENT_BUS_NAME={}", bus.bus_name),
    ]);
    std::fs::write(&env_file, env.join("\n") + "\n").unwrap();
    let watch = Watch::start(&env_file, dir.path().join("watch.log"));

    // command-api, the HTTP API (v2) create: a new order, its first event stored.
    let created = GatewayResponse::parse(&watch.invoke("command-api", CREATE).await);
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["customerId"], "cust-42");
    assert_eq!(created.body["status"], "PENDING");
    assert_eq!(created.body["total"], 2800);
    let id = OrderId::parse(created.body["orderId"].as_str().expect("orderId")).unwrap();
    assert_eq!(
        created.header("location"),
        Some(format!("/orders/{id}").as_str())
    );
    let stored = store.load(id, None).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        ["OrderCreated"]
    );

    // projector, the stream sample (created, confirmed, and a REMOVE it skips): the view.
    let sample = OrderId::parse(SAMPLE_ORDER).unwrap();
    assert!(store.get(sample).await.unwrap().is_none());
    assert_whole_batch_done("projector", &watch.invoke("projector", STREAM).await);
    let view = store
        .get(sample)
        .await
        .unwrap()
        .expect("the projected view");
    assert_eq!(view.version, 2);
    assert_eq!(serde_json::to_value(&view).unwrap()["status"], "CONFIRMED");

    // query-api, the REST API (v1) read of that order: the view the projector wrote.
    let read = GatewayResponse::parse(&watch.invoke("query-api", GET).await);
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.header("etag"), Some("\"2\""));
    assert_eq!(read.body["orderId"], SAMPLE_ORDER);
    assert_eq!(read.body["status"], "CONFIRMED");

    // publisher, the same stream sample: both events on the bus, in version order.
    assert_whole_batch_done("publisher", &watch.invoke("publisher", STREAM).await);
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the bus delivered only {received:?}"
        );
        received.extend(bus.drain().await);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let entries: Vec<(&str, &str, &str, u64)> = received
        .iter()
        .map(|m| {
            (
                m["source"].as_str().unwrap_or_default(),
                m["detail-type"].as_str().unwrap_or_default(),
                m["detail"]["orderId"].as_str().unwrap_or_default(),
                m["detail"]["version"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("orders", "OrderCreated", SAMPLE_ORDER, 1),
            ("orders", "OrderConfirmed", SAMPLE_ORDER, 2),
        ]
    );
}
