//! The real `command-api` and `query-api` bootstraps, run as Lambda runs them: a process with
//! the Lambda environment, polling a Runtime API (our local one) for API Gateway events, on
//! DynamoDB Local. Needs `DYNAMODB_ENDPOINT` (scripts/test.sh starts the emulator and sets it)
//! and the binaries (`cargo build --bins`).

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use orders_tests::apigw_events::{self, GatewayResponse};
use orders_tests::runtime_api::{Outcome, RuntimeApi, lambda_env, sibling_bin, spawn_function};
use orders_tests::{create_unique_tables, dynamodb_endpoint, new_order};
use serde_json::Value;

const ANSWER_WITHIN: Duration = Duration::from_secs(20);
const CURSOR_KEY: &str = "e2e-cursor-key-0123456789abcdef0123456789";

/// Kills the function process when the test ends, however it ends.
struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(name: &str, api: &RuntimeApi, extra: &[(&str, &str)], log: &Path) -> Function {
    let mut env = lambda_env(api, name);
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Function(spawn_function(&sibling_bin(name), &env, Some(log)))
}

async fn answer(api: &RuntimeApi, event: Value, log: &Path) -> GatewayResponse {
    match api.invoke(event, ANSWER_WITHIN).await {
        Outcome::Response(raw) => GatewayResponse::parse(&raw),
        Outcome::Error(diagnostic) => panic!(
            "the function failed: {diagnostic}\nlog:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_bootstraps_answer_api_gateway_events_on_dynamodb_local() {
    let endpoint = dynamodb_endpoint();
    let (names, _) = create_unique_tables(&endpoint, "lambda").await;

    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, &str)> = names.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()));
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON"));

    // command-api, with an HTTP API (v2) event.
    let commands = RuntimeApi::start().await;
    let command_log = dir.path().join("command-api.log");
    let _command_api = start("command-api", &commands, &env, &command_log);
    let create = apigw_events::v2(
        "POST",
        "/orders",
        "",
        &[
            ("Idempotency-Key", "e2e-key-1"),
            ("X-Correlation-Id", "e2e-corr-1"),
        ],
        Some(&new_order("lambda-e2e")),
    );
    let created = answer(&commands, create.clone(), &command_log).await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/orders/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(created.header("x-correlation-id"), Some("e2e-corr-1"));
    assert_eq!(created.body["status"], "PENDING");
    assert_eq!(created.body["customerId"], "lambda-e2e");

    // The same request again (a client retry): the first response, replayed from DynamoDB.
    let replayed = answer(&commands, create, &command_log).await;
    assert_eq!(replayed.status, 201, "{replayed:?}");
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.body["orderId"], id.as_str());

    // query-api, with a REST API (v1) event on a named stage. No projector runs: minVersion
    // folds the order's events from the event store.
    let queries = RuntimeApi::start().await;
    let query_log = dir.path().join("query-api.log");
    let mut query_env = env.clone();
    query_env.push(("CURSOR_KEY", CURSOR_KEY));
    let _query_api = start("query-api", &queries, &query_env, &query_log);
    let path = format!("/orders/{id}");
    let view = answer(
        &queries,
        apigw_events::v1("GET", &path, &[("minVersion", "1")], &[], None),
        &query_log,
    )
    .await;
    assert_eq!(view.status, 200, "{view:?}");
    assert_eq!(view.header("etag"), Some("\"1\""));
    assert_eq!(view.body["orderId"], id.as_str());
    assert_eq!(view.body["status"], "PENDING");
    assert_eq!(view.body["version"], 1);

    let not_found = answer(
        &queries,
        apigw_events::v1("GET", "/orders/not-a-uuid", &[], &[], None),
        &query_log,
    )
    .await;
    assert_eq!(not_found.status, 404, "{not_found:?}");
    assert_eq!(
        not_found.header("content-type"),
        Some("application/problem+json")
    );

    // Under AWS_LAMBDA_LOG_FORMAT=JSON every log line is a JSON object, and the request's
    // lines carry its correlation id.
    let log = std::fs::read_to_string(&command_log).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"))
        })
        .collect();
    let handled = lines
        .iter()
        .find(|l| l["message"] == "request handled" && l["span"]["correlationId"] == "e2e-corr-1")
        .unwrap_or_else(|| panic!("no log line of the request carries its correlation id:\n{log}"));
    assert_eq!(handled["level"], "INFO");
    assert_eq!(handled["status"], 201);
    assert!(
        handled["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["requestId"] == "request-1")),
        "the runtime's request id is in the line's spans: {handled}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_api_without_a_cursor_key_fails_init_with_a_diagnostic() {
    // Fails before any DynamoDB call, so it needs no emulator.
    let api = RuntimeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("query-api.log");
    let env = [
        ("EVENTS_TABLE", "e"),
        ("ORDERS_TABLE", "o"),
        ("IDEMPOTENCY_TABLE", "i"),
    ];
    let mut function = start("query-api", &api, &env, &log);

    let (error_type, diagnostic) = api
        .init_error(ANSWER_WITHIN)
        .await
        .expect("the function reports its INIT error");
    assert_eq!(error_type.as_deref(), Some("Runtime.InitError"));
    assert_eq!(diagnostic["errorType"], "Orders.Config", "{diagnostic}");
    assert!(
        diagnostic["errorMessage"]
            .as_str()
            .unwrap()
            .contains("CURSOR_KEY"),
        "{diagnostic}"
    );

    let deadline = Instant::now() + ANSWER_WITHIN;
    let status = loop {
        if let Some(status) = function.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the function did not exit after failing INIT"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success(), "a failed INIT exits non-zero");
    assert!(
        api.first_next(Duration::ZERO).await.is_none(),
        "it never asked for an event"
    );
}
