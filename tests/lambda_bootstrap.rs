//! The real `command-api` and `query-api` bootstraps, run as Lambda runs them: a process with
//! the Lambda environment, polling a Runtime API (our local one) for API Gateway events, on
//! DynamoDB Local. Needs `DYNAMODB_ENDPOINT` (scripts/test.sh starts the emulator and sets it)
//! and the binaries (`cargo build --bins`).

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use orders_lambda::metrics;
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::{EventScan, StoredEvent};
use orders_tests::apigw_events::{self, GatewayResponse};
use orders_tests::emf;
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

    // Each invocation flushed its metrics as EMF lines: the create, then its replay.
    let commands = |outcome: &str| -> f64 {
        emf::values(
            &log,
            metrics::NAMESPACE,
            metrics::COMMANDS_TOTAL,
            &[("command", "create"), ("outcome", outcome)],
        )
        .iter()
        .sum()
    };
    assert_eq!(
        commands("created"),
        1.0,
        "one create in the EMF lines:\n{log}"
    );
    assert_eq!(
        commands("idempotent_replay"),
        1.0,
        "one replay in the EMF lines:\n{log}"
    );
    let lines = emf::lines(&log);
    let units: Vec<&Value> = lines
        .iter()
        .flat_map(|line| line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array())
        .flatten()
        .filter(|m| m["Name"] == metrics::COMMANDS_TOTAL)
        .map(|m| &m["Unit"])
        .collect();
    assert!(
        !units.is_empty() && units.iter().all(|u| *u == "Count"),
        "{units:?}"
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

/// Characters browsers and hand-written clients send raw in a URL: `lambda_http` alone panics
/// on some (in an HTTP API query) and misreads others (in a path).
const HOSTILE: [&str; 20] = [
    "\"", "<", ">", " ", "{", "}", "|", "^", "`", "\\", "#", "[", "]", "%", "%zz", "é", "\u{1}",
    "\n", "\u{7f}", "?",
];

/// A 4xx is a problem document; anything else is `expected` (a success the router served).
fn assert_answer(reply: &GatewayResponse, expected: &[u16], what: &str) {
    assert!(expected.contains(&reply.status), "{what}: {reply:?}");
    if reply.status >= 400 {
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{what}: {reply:?}"
        );
        assert_eq!(reply.body["status"], reply.status, "{what}: {reply:?}");
        for member in ["type", "title", "detail"] {
            assert!(
                reply.body[member].is_string(),
                "{what}: {member} in {reply:?}"
            );
        }
    }
}

/// Every event in the events table.
async fn all_events(store: &DynamoStore) -> Vec<StoredEvent> {
    let mut events = Vec::new();
    for segment in store.plan_scan(1).await.unwrap() {
        let mut after = None;
        loop {
            let page = store.scan_events(&segment, after, 500).await.unwrap();
            events.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_urls_get_an_answer_from_both_bootstraps_never_a_function_error() {
    let endpoint = dynamodb_endpoint();
    let (names, tables) = create_unique_tables(&endpoint, "hostile").await;
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, &str)> = names.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()));
    let commands = RuntimeApi::start().await;
    let command_log = dir.path().join("command-api.log");
    let mut command_api = start("command-api", &commands, &env, &command_log);
    let queries = RuntimeApi::start().await;
    let query_log = dir.path().join("query-api.log");
    let mut query_env = env.clone();
    query_env.push(("CURSOR_KEY", CURSOR_KEY));
    let mut query_api = start("query-api", &queries, &query_env, &query_log);

    // The order the hostile requests aim at.
    let create = |customer: &str| new_order(customer);
    let created = answer(
        &commands,
        apigw_events::v2("POST", "/orders", "", &[], Some(&create("hostile-target"))),
        &command_log,
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let target = format!("/orders/{}", created.body["orderId"].as_str().unwrap());

    for raw in HOSTILE {
        let value = format!("a{raw}b");
        let control = raw.chars().any(char::is_control);

        // query-api. In a path: no such order. In a query: served, the router reads the
        // decoded value (an unknown parameter is a 400; a control character is not a valid
        // customer id; any other one is).
        let get_path = format!("{target}{raw}");
        let unknown = format!("minVersion=1&x={value}");
        let listing = format!("customerId={value}");
        let listed = if control { 400 } else { 200 };
        for (what, event, expected) in [
            (
                "v2 path",
                apigw_events::v2("GET", &get_path, "", &[], None),
                404,
            ),
            (
                "v1 path",
                apigw_events::v1("GET", &get_path, &[], &[], None),
                404,
            ),
            (
                "v2 query",
                apigw_events::v2("GET", &target, &unknown, &[], None),
                400,
            ),
            (
                "v1 query",
                apigw_events::v1(
                    "GET",
                    &target,
                    &[("minVersion", "1"), ("x", &value)],
                    &[],
                    None,
                ),
                400,
            ),
            (
                "v2 listing",
                apigw_events::v2("GET", "/orders", &listing, &[], None),
                listed,
            ),
            (
                "v1 listing",
                apigw_events::v1("GET", "/orders", &[("customerId", &value)], &[], None),
                listed,
            ),
        ] {
            let reply = answer(&queries, event, &query_log).await;
            assert_answer(&reply, &[expected], &format!("query-api, {what}, {raw:?}"));
        }

        // command-api. In a path: no such route or order, nothing written. In a query (which
        // POST /orders does not read): the create is served.
        let create_path = format!("/orders{raw}");
        let confirm_path = format!("{target}{raw}/confirm");
        let path_body = create("hostile-path");
        let query_body = create("hostile-query");
        let note = format!("note={value}");
        for (what, event, expected) in [
            (
                "v2 create path",
                apigw_events::v2("POST", &create_path, "", &[], Some(&path_body)),
                &[404, 405][..],
            ),
            (
                "v1 create path",
                apigw_events::v1("POST", &create_path, &[], &[], Some(&path_body)),
                &[404, 405],
            ),
            (
                "v2 confirm path",
                apigw_events::v2("POST", &confirm_path, "", &[], None),
                &[404],
            ),
            (
                "v1 confirm path",
                apigw_events::v1("POST", &confirm_path, &[], &[], None),
                &[404],
            ),
            (
                "v2 create query",
                apigw_events::v2("POST", "/orders", &note, &[], Some(&query_body)),
                &[201],
            ),
            (
                "v1 create query",
                apigw_events::v1(
                    "POST",
                    "/orders",
                    &[("note", &value)],
                    &[],
                    Some(&query_body),
                ),
                &[201],
            ),
        ] {
            let reply = answer(&commands, event, &command_log).await;
            assert_answer(&reply, expected, &format!("command-api, {what}, {raw:?}"));
        }
    }

    // What cannot form a URI even escaped is a 400 problem, and nothing is written.
    let refused_body = create("refused");
    let bad_host = [("Host", "id.execute-api.us-east-1.amazonaws.com:99999")];
    let mut relative = apigw_events::v2("POST", "/orders", "", &[], Some(&refused_body));
    relative["rawPath"] = "orders".into();
    for (what, event) in [
        (
            "v2 bad host",
            apigw_events::v2("POST", "/orders", "", &bad_host, Some(&refused_body)),
        ),
        (
            "v1 bad host",
            apigw_events::v1("POST", "/orders", &[], &bad_host, Some(&refused_body)),
        ),
        ("v2 relative path", relative),
    ] {
        let reply = answer(&commands, event, &command_log).await;
        assert_answer(&reply, &[400], &format!("command-api, {what}"));
        assert_eq!(reply.body["type"], "urn:orders:problem:invalid-request");
    }

    // Both processes are still up and answer a normal request.
    assert!(
        command_api.0.try_wait().unwrap().is_none(),
        "command-api exited"
    );
    assert!(
        query_api.0.try_wait().unwrap().is_none(),
        "query-api exited"
    );
    let view = answer(
        &queries,
        apigw_events::v2("GET", &target, "minVersion=1", &[], None),
        &query_log,
    )
    .await;
    assert_eq!(view.status, 200, "{view:?}");
    assert_eq!(
        view.body["status"], "PENDING",
        "no hostile confirm went through"
    );
    assert_eq!(view.body["version"], 1);
    let again = answer(
        &commands,
        apigw_events::v1("POST", "/orders", &[], &[], Some(&create("after"))),
        &command_log,
    )
    .await;
    assert_eq!(again.status, 201, "{again:?}");

    // Written: the target, one order per served create, the last one; nothing else.
    let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables);
    let events = all_events(&store).await;
    let customers: Vec<&str> = events
        .iter()
        .map(|e| e.data["customerId"].as_str().unwrap_or("(not a create)"))
        .collect();
    let count = |customer: &str| customers.iter().filter(|c| **c == customer).count();
    assert_eq!(count("hostile-target"), 1);
    assert_eq!(count("hostile-query"), 2 * HOSTILE.len());
    assert_eq!(count("after"), 1);
    assert_eq!(
        events.len(),
        2 + 2 * HOSTILE.len(),
        "nothing else was written: {customers:?}"
    );
}
