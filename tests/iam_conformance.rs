//! The calls each principal really makes, recorded for the IAM conformance check
//! (`scripts/iam-check.sh`, DESIGN §8).
//!
//! The four real bootstraps run as Lambda runs them (our Runtime API, the Lambda environment),
//! and the operator runs `orders tables create` and `orders replay`, each principal behind a
//! recording proxy of its own in front of DynamoDB Local and moto (`support/recorder.rs`).
//! The scenario walks every code path that needs a permission of its own:
//!
//! - `command-api`: a create with an `Idempotency-Key` (the record in the same transaction),
//!   its replay (the record read back), a confirm and a ship without a key (one conditional
//!   `PutItem` each), a lost `If-Match`, commands with a key (the event and the record in one
//!   transaction), and a keyed no-op (the record beside a `ConditionCheck` that the next
//!   version is free);
//! - `projector`: one order's first event (one view, written alone), a gap (healed from the
//!   event store) and a batch of several orders (read and written in batches);
//! - `publisher`: a batch of events to the bus;
//! - `query-api`: a view, `minVersion` ahead of the view and `atVersion` (folds from the
//!   event store), the history, both listings with a cursor;
//! - operator: `tables create` (fresh, then again), `replay --verify`, a live repair of a
//!   missing and an orphan view, `replay --into` a shadow table and its `--verify`.
//!
//! The test asserts that each path did what it should; the check (`cdk/iam/check.ts`) then
//! maps every recorded request to its IAM actions and resources and evaluates them against the
//! synthesized stack's policies.
//!
//! The same recordings are the cost model's input (`support/capacity.rs`): each request is
//! labelled with the step it belongs to (a create without a key, one event projected, …), and
//! the test asserts that a lifecycle stays within 1.25× the minimum; `orders-cost` prints the
//! table (README, "Cost").

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use orders_domain::OrderId;
use orders_lambda::metrics;
use orders_store::dynamodb::{self, DynamoStore, DynamoTables};
use orders_store::{EventStore, ReadModelScan, ReadModelStore, StoredEvent};
use orders_tests::apigw_events::{self, GatewayResponse};
use orders_tests::capacity::{
    self, Costs, LIFECYCLE_INDEX_WRU_BOUND, LIFECYCLE_MINIMUM_RRU, LIFECYCLE_MINIMUM_WRU,
};
use orders_tests::emf;
use orders_tests::recorder::{Recorder, Upstreams};
use orders_tests::replay::replay;
use orders_tests::runtime_api::{Outcome, RuntimeApi, lambda_env, sibling_bin, spawn_function};
use orders_tests::streams::{batch, moto_endpoint};
use orders_tests::{dynamodb_endpoint, new_order, orders_bin, unique_tables};
use serde_json::{Value, json};
use uuid::Uuid;

const ANSWER_WITHIN: Duration = Duration::from_secs(30);
const CURSOR_KEY: &str = "iam-check-cursor-key-0123456789abcdef0123";

/// A bootstrap behind its own Runtime API and recorder. Killed when dropped.
struct Function {
    api: RuntimeApi,
    recorder: Recorder,
    log: std::path::PathBuf,
    child: Child,
}

impl Function {
    /// Starts `name` with `env`, its AWS endpoints pointed at its own recorder, which knows the
    /// resource names of `names`.
    async fn start(
        name: &str,
        dir: &Path,
        names: &[(&str, &str)],
        env: &[(&str, &str)],
        upstreams: Upstreams,
    ) -> Function {
        let api = RuntimeApi::start().await;
        let recorder = Recorder::start(name, names, upstreams).await;
        let mut all = lambda_env(&api, name);
        for (k, v) in names.iter().chain(env) {
            all.push(((*k).to_owned(), (*v).to_owned()));
        }
        all.push(("AWS_ENDPOINT_URL".to_owned(), recorder.url.clone()));
        all.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned()));
        let log = dir.join(format!("{name}.log"));
        let child = spawn_function(&sibling_bin(name), &all, Some(&log));
        Function {
            api,
            recorder,
            log,
            child,
        }
    }

    async fn invoke(&self, event: Value) -> Value {
        match self.api.invoke(event, ANSWER_WITHIN).await {
            Outcome::Response(raw) => raw,
            Outcome::Error(diagnostic) => panic!(
                "the function failed: {diagnostic}\nlog:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ),
        }
    }

    async fn http(&self, event: Value) -> GatewayResponse {
        GatewayResponse::parse(&self.invoke(event).await)
    }

    /// Delivers a stream batch and asserts that it was processed whole.
    async fn stream(&self, events: &[&StoredEvent]) {
        let response = self
            .invoke(serde_json::to_value(batch(events, 1)).unwrap())
            .await;
        assert_eq!(
            response["batchItemFailures"],
            json!([]),
            "{response}\nlog:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `orders <args>` as the operator, through `operator`'s recorder.
fn operator_command(operator: &Recorder, names: &[(&str, &str)], args: &[&str]) -> String {
    let output = Command::new(orders_bin())
        .args(args)
        .args(["--endpoint-url", &operator.url])
        .envs(names.iter().copied())
        .output()
        .expect("run orders");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "orders {args:?}: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn post(path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Value {
    apigw_events::v2("POST", path, "", headers, body)
}

fn get(path: &str, query: &str) -> Value {
    apigw_events::v2("GET", path, query, &[], None)
}

async fn history(store: &DynamoStore, id: &str) -> Vec<StoredEvent> {
    let id = OrderId::from_uuid(id.parse::<Uuid>().expect("an order id"));
    store.load(id, None).await.expect("load the order's events")
}

/// The targets `recorder` saw, without the `Service_Version.` prefix, in order.
fn operations(recorder: &Recorder) -> Vec<String> {
    recorder
        .targets()
        .iter()
        .map(|t| t.rsplit('.').next().unwrap_or_default().to_owned())
        .collect()
}

fn assert_made(recorder: &Recorder, wanted: &[&str]) {
    let made = operations(recorder);
    for op in wanted {
        assert!(
            made.iter().any(|m| m == op),
            "{}: no {op} among {made:?}",
            recorder.file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_principal_walks_its_code_paths_through_a_recorder() {
    let dynamodb = dynamodb_endpoint();
    let moto = moto_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let tables = unique_tables("iam");
    let names: Vec<(&str, &str)> = tables.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dynamo_only = || Upstreams {
        dynamodb: dynamodb.clone(),
        moto: None,
    };

    // The operator creates the tables, then runs the same command again (it is idempotent).
    let operator = Recorder::start("operator", &names, dynamo_only()).await;
    operator.step("tables create");
    operator_command(&operator, &names, &["tables", "create"]);
    operator_command(&operator, &names, &["tables", "create"]);
    assert_made(
        &operator,
        &["CreateTable", "DescribeTable", "UpdateTimeToLive"],
    );

    // The harness's own view of the store: unrecorded, it is not a principal.
    let store = DynamoStore::new(
        dynamodb::client(Some(&dynamodb)).await,
        DynamoTables {
            events: names[0].1.to_owned(),
            orders: names[1].1.to_owned(),
            idempotency: names[2].1.to_owned(),
        },
    );

    // command-api. Each request is labelled with a step, for the cost model (`orders-cost`).
    let commands = Function::start("command-api", dir.path(), &names, &[], dynamo_only()).await;
    let step = |label: &str| commands.recorder.step(label);
    step("create, with key");
    let keyed = post(
        "/orders",
        &[("Idempotency-Key", "iam-create-1")],
        Some(&new_order("iam-customer")),
    );
    let created = commands.http(keyed.clone()).await;
    assert_eq!(created.status, 201, "{created:?}");
    let a = created.body["orderId"].as_str().unwrap().to_owned();
    step("create, with key, replayed");
    let replayed = commands.http(keyed).await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    step("confirm, no key");
    let confirmed = commands
        .http(post(
            &format!("/orders/{a}/confirm"),
            &[("If-Match", "\"1\"")],
            None,
        ))
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    step("ship, stale If-Match (412)");
    let stale = commands
        .http(post(
            &format!("/orders/{a}/ship"),
            &[("If-Match", "\"1\"")],
            None,
        ))
        .await;
    assert_eq!(stale.status, 412, "{stale:?}");
    step("ship, no key");
    let shipped = commands
        .http(post(&format!("/orders/{a}/ship"), &[], None))
        .await;
    assert_eq!(shipped.status, 200, "{shipped:?}");
    let mut others = Vec::new();
    for _ in 0..3 {
        step("create, no key");
        let created = commands
            .http(post("/orders", &[], Some(&new_order("iam-customer"))))
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        others.push(created.body["orderId"].as_str().unwrap().to_owned());
    }
    step("cancel, with key");
    let cancelled = commands
        .http(post(
            &format!("/orders/{}/cancel", others[0]),
            &[("Idempotency-Key", "iam-cancel-1")],
            Some(&json!({"reason": "changed my mind"})),
        ))
        .await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    for (command, key) in [("confirm", "iam-confirm-1"), ("ship", "iam-ship-1")] {
        step(&format!("{command}, with key"));
        let done = commands
            .http(post(
                &format!("/orders/{}/{command}", others[1]),
                &[("Idempotency-Key", key)],
                None,
            ))
            .await;
        assert_eq!(done.status, 200, "{done:?}");
    }
    step("cancel, no key");
    let cancelled = commands
        .http(post(&format!("/orders/{}/cancel", others[2]), &[], None))
        .await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    // A no-op with a key stores its record beside a check that the next version is free: the
    // one `ConditionCheck` an append makes.
    step("cancel again, with key (a no-op)");
    let again = commands
        .http(post(
            &format!("/orders/{}/cancel", others[2]),
            &[("Idempotency-Key", "iam-cancel-2")],
            None,
        ))
        .await;
    assert_eq!(
        (again.status, &again.body["version"]),
        (200, &json!(2)),
        "{again:?}"
    );
    assert_made(
        &commands.recorder,
        &["TransactWriteItems", "PutItem", "GetItem", "Query"],
    );

    // projector: one event at a time (a new view, then updates), a gap (healed from the event
    // store), then several orders at once.
    let order_a = history(&store, &a).await;
    assert_eq!(order_a.len(), 3);
    let projector = Function::start("projector", dir.path(), &names[..2], &[], dynamo_only()).await;
    projector.recorder.step("one event, a new view");
    projector.stream(&[&order_a[0]]).await;
    for event in &order_a[1..] {
        projector.recorder.step("one event, a view updated");
        projector.stream(&[event]).await;
    }
    let order_b = history(&store, &others[1]).await;
    assert_eq!(order_b.len(), 3);
    projector.recorder.step("one event, a new view");
    projector.stream(&[&order_b[0]]).await;
    projector
        .recorder
        .step("one event after a gap (healed from the event store)");
    projector.stream(&[&order_b[2]]).await;
    let mut all: Vec<StoredEvent> = order_a.clone();
    for id in &others {
        all.extend(history(&store, id).await);
    }
    let fresh: Vec<&StoredEvent> = all
        .iter()
        .filter(|e| e.order_id != order_a[0].order_id && e.order_id != order_b[0].order_id)
        .collect();
    projector.recorder.step_of(
        &format!(
            "a batch of {} events of {} orders",
            fresh.len(),
            others.len() - 1
        ),
        fresh.len(),
    );
    projector.stream(&fresh).await;
    projector.recorder.step("a batch of events already applied");
    projector.stream(&all.iter().collect::<Vec<_>>()).await;
    for id in std::iter::once(&a).chain(&others) {
        let events = history(&store, id).await;
        let last = events.last().unwrap();
        let view = store.get(last.order_id).await.unwrap().expect("a view");
        assert_eq!(view.version, last.version, "order {id}");
    }
    // Its EMF lines: a lag sample per view written (not for the batch already applied), and
    // the one gap healed.
    let log = std::fs::read_to_string(&projector.log).unwrap();
    let lags = emf::values(
        &log,
        metrics::NAMESPACE,
        metrics::PROJECTION_LAG_SECONDS,
        &[],
    );
    assert_eq!(lags.len(), order_a.len() + 2 + fresh.len(), "{log}");
    assert!(lags.iter().all(|lag| *lag >= 0.0), "{lags:?}");
    let heals = emf::values(
        &log,
        metrics::NAMESPACE,
        metrics::PROJECTION_GAP_HEALS_TOTAL,
        &[],
    );
    assert_eq!(heals.iter().sum::<f64>(), 1.0, "{log}");

    // publisher: every event to a bus on moto.
    let bus = create_bus(&moto).await;
    let publisher = Function::start(
        "publisher",
        dir.path(),
        &[("EVENT_BUS_NAME", bus.as_str())],
        &[("EVENT_SOURCE", "orders")],
        Upstreams {
            dynamodb: dynamodb.clone(),
            moto: Some(moto.clone()),
        },
    )
    .await;
    publisher
        .recorder
        .step_of(&format!("a batch of {} events", all.len()), all.len());
    publisher.stream(&all.iter().collect::<Vec<_>>()).await;
    let published = publisher.recorder.calls();
    let entries: usize = published
        .iter()
        .map(|c| c["body"]["Entries"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(entries, all.len(), "every event went to the bus once");
    let log = std::fs::read_to_string(&publisher.log).unwrap();
    let lags = emf::values(&log, metrics::NAMESPACE, metrics::PUBLISH_LAG_SECONDS, &[]);
    assert_eq!(
        lags.len(),
        all.len(),
        "a publish lag per entry accepted:\n{log}"
    );
    assert!(
        published.iter().all(|c| c["status"] == 200),
        "{published:?}"
    );

    // query-api.
    let queries = Function::start(
        "query-api",
        dir.path(),
        &names,
        &[("CURSOR_KEY", CURSOR_KEY)],
        dynamo_only(),
    )
    .await;
    let step = |label: &str| queries.recorder.step(label);
    step("a view");
    let view = queries.http(get(&format!("/orders/{a}"), "")).await;
    assert_eq!(
        (view.status, &view.body["status"]),
        (200, &json!("SHIPPED"))
    );
    step("a view, minVersion ahead of it (folded from the events)");
    let ahead = queries
        .http(get(&format!("/orders/{a}"), "minVersion=4"))
        .await;
    assert_eq!(ahead.status, 200, "{ahead:?}");
    step("atVersion (folded from the events)");
    let then = queries
        .http(get(&format!("/orders/{a}"), "atVersion=1"))
        .await;
    assert_eq!(
        (then.status, &then.body["status"]),
        (200, &json!("PENDING"))
    );
    step("the history");
    let events = queries.http(get(&format!("/orders/{a}/events"), "")).await;
    assert_eq!(
        events.body["events"].as_array().map(Vec::len),
        Some(3),
        "{events:?}"
    );
    step("a listing page of 3, by customer");
    let page = queries
        .http(get("/orders", "customerId=iam-customer&limit=3"))
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    let cursor = page.body["nextCursor"].as_str().expect("a second page");
    step("a listing page, the last (1 order)");
    let rest = queries
        .http(get(
            "/orders",
            &format!("customerId=iam-customer&limit=3&cursor={cursor}"),
        ))
        .await;
    assert_eq!(rest.body["items"].as_array().map(Vec::len), Some(1));
    step("a listing page, by status");
    let shipped = queries.http(get("/orders", "status=SHIPPED")).await;
    let shipped: Vec<&str> = shipped.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["orderId"].as_str())
        .collect();
    assert_eq!(shipped, [others[1].as_str(), a.as_str()], "newest first");
    assert_made(&queries.recorder, &["GetItem", "Query"]);

    // The operator: verify, repair a missing and an orphan view, rebuild into a shadow table.
    let env: Vec<(&str, &str)> = names.clone();
    let with_endpoint = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|s| (*s).to_owned())
            .chain(["--backend", "dynamodb", "--endpoint-url", &operator.url].map(str::to_owned))
            .collect()
    };
    let run = |args: &[&str]| {
        let args = with_endpoint(args);
        replay(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env)
    };
    operator.step(&format!("replay --verify ({} orders)", others.len() + 1));
    let clean = run(&["--verify"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let missing = OrderId::from_uuid(others[1].parse().unwrap());
    let missing_version = store.get(missing).await.unwrap().expect("a view").version;
    assert_eq!(
        store.delete(missing, missing_version).await.unwrap(),
        orders_store::DeleteOutcome::Deleted
    );
    let mut ghost =
        serde_json::to_value(store.get(all[0].order_id).await.unwrap().unwrap()).unwrap();
    ghost["orderId"] = json!(Uuid::now_v7().to_string());
    store
        .put(&serde_json::from_value(ghost).unwrap(), None)
        .await
        .unwrap();
    operator.step("replay --verify, finding a missing and an orphan view");
    let drift = run(&["--verify"]);
    assert_eq!(drift.code, 1, "{}", drift.stderr);
    operator.step(&format!(
        "replay, a live repair ({} orders)",
        others.len() + 2
    ));
    let repaired = run(&[]);
    assert_eq!(repaired.code, 0, "{}", repaired.stderr);
    operator.step(&format!("replay --verify ({} orders)", others.len() + 1));
    assert_eq!(run(&["--verify"]).code, 0);
    operator.step(&format!(
        "replay --into a new table ({} orders), then its --verify",
        others.len() + 1
    ));
    let shadow = format!("{}-v2", names[1].1);
    assert_eq!(run(&["--into", &shadow]).code, 0);
    assert_eq!(run(&["--into", &shadow, "--verify"]).code, 0);
    assert_made(
        &operator,
        &[
            "Scan",
            "PutItem",
            "DeleteItem",
            "CreateTable",
            "DescribeTable",
        ],
    );
    assert_cost(&[
        &operator,
        &commands.recorder,
        &projector.recorder,
        &publisher.recorder,
        &queries.recorder,
    ]);
}

/// What the recorded requests cost by AWS's rules (`support/capacity.rs`; `orders-cost` prints
/// the table): every request can be priced, a lifecycle costs no more than 1.25× the minimum,
/// and every difference from DynamoDB Local's own count has a known reason.
fn assert_cost(recorders: &[&Recorder]) {
    let lines: Vec<Value> = recorders.iter().flat_map(|r| r.calls()).collect();
    let costs = Costs::of(&lines).unwrap_or_else(|e| panic!("cannot price {}", e.0));
    let lifecycle = costs
        .lifecycle()
        .expect("the scenario walks a whole lifecycle");
    assert!(
        lifecycle.wru <= 1.25 * LIFECYCLE_MINIMUM_WRU,
        "a lifecycle writes {} units, more than 1.25× the minimum {LIFECYCLE_MINIMUM_WRU}: {costs:#?}",
        lifecycle.wru
    );
    assert!(
        lifecycle.rru <= 1.25 * LIFECYCLE_MINIMUM_RRU,
        "a lifecycle reads {} units, more than 1.25× the minimum {LIFECYCLE_MINIMUM_RRU}: {costs:#?}",
        lifecycle.rru
    );
    assert!(
        lifecycle.index_wru <= LIFECYCLE_INDEX_WRU_BOUND,
        "a lifecycle writes {} index units, more than the {LIFECYCLE_INDEX_WRU_BOUND} it did",
        lifecycle.index_wru
    );
    let check = capacity::cross_check(&lines).unwrap();
    for (operation, (_, differ)) in &check.by_operation {
        assert!(
            differ.keys().all(|why| !why.starts_with("unexplained")),
            "{operation}: {differ:#?}"
        );
    }
    // The cross-check compared something: DynamoDB Local counted each kind of request.
    for operation in [
        "PutItem",
        "GetItem",
        "Query",
        "BatchGetItem",
        "TransactWriteItems",
    ] {
        let agree = check
            .by_operation
            .get(operation)
            .map_or(0, |(agree, _)| *agree);
        assert!(
            agree > 0,
            "no {operation} agreed with DynamoDB Local: {check:#?}"
        );
    }
}

/// A bus on moto (made by the harness, not by a principal under test).
async fn create_bus(moto: &str) -> String {
    let config = orders_store::aws::sdk_config(Some(moto), "AWS_ENDPOINT_URL_EVENTBRIDGE").await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let name = format!("iam-bus-{}", Uuid::now_v7().simple());
    events
        .create_event_bus()
        .name(&name)
        .send()
        .await
        .expect("create the bus");
    name
}
