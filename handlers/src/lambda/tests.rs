//! The Lambda handler fed API Gateway events in the canonical AWS JSON shapes.
//!
//! The repository's `events/` holds two of `aws_lambda_events`' sample events, made into our
//! requests: an HTTP API (payload v2) request and a REST API (payload v1) request on stage
//! `testStage`. Each test
//! takes one ([`Call`], from the test kit), puts our method, path, query, headers and body in
//! it, and runs it through exactly what [`run`] runs ([`ApiHandler::handle`]: the URL guard,
//! then `lambda_http`'s conversion into the router with the stage stripped), from the event
//! JSON to the response JSON API Gateway receives. The backend
//! is a real `SqliteStore` on a temporary file: the router is the one the Lambdas serve, only
//! the store differs.

mod fuzz;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent};
use orders_store::sqlite::SqliteStore;
use orders_testkit::apigw::Call;
use orders_testkit::fixtures::create_body;
use orders_testkit::problem::assert_problem;
use orders_testkit::stores;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

use super::*;
use crate::app::Stores;
use crate::http::{command_router, query_router};

/// Both functions' handlers over one store, as the two Lambdas share the tables. The store is
/// kept so a test can count what was written.
struct Functions {
    commands: ApiHandler,
    queries: ApiHandler,
    store: SqliteStore,
    _dir: TempDir,
}

impl Functions {
    fn new() -> Self {
        let (dir, store) = stores::sqlite();
        let config = |api: Api| {
            let vars = |name: &str| match name {
                "CURSOR_KEY" => Some("k".repeat(MIN_CURSOR_KEY_LEN)),
                _ => Some(format!("test-{name}")),
            };
            LambdaConfig::from_vars(api, vars).unwrap().http
        };
        Self {
            commands: ApiHandler::new(command_router(
                Stores::shared(store.clone()),
                config(Api::Commands),
            )),
            queries: ApiHandler::new(query_router(
                Stores::shared(store.clone()),
                config(Api::Queries),
            )),
            store,
            _dir: dir,
        }
    }
}

/// What API Gateway gets back, read from the response JSON.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Lower-case names; every value of each.
    headers: BTreeMap<String, Vec<String>>,
    body: Value,
    raw: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        match self.headers.get(name).map(Vec::as_slice) {
            None => None,
            Some([value]) => Some(value.as_str()),
            Some(values) => panic!("{name} appears {} times: {values:?}", values.len()),
        }
    }

    /// Asserts an RFC 9457 problem with this status, and returns its `errors[].field`s.
    #[track_caller]
    fn assert_problem(&self, status: u16) -> Vec<String> {
        assert_problem(self.status, self.header("content-type"), &self.body, status)
    }

    fn order_id(&self) -> String {
        self.body["orderId"]
            .as_str()
            .expect("an orderId")
            .to_owned()
    }
}

/// Runs `event` (API Gateway JSON) through the handler as the runtime would, and reads the
/// response JSON in the shape of the event's payload version.
async fn invoke(handler: &ApiHandler, event: Value) -> Reply {
    let v2 = event.get("version").and_then(Value::as_str) == Some("2.0");
    let request: LambdaRequest = serde_json::from_value(event).expect("an API Gateway event");
    let mut context = Context::default();
    context.request_id = "lambda-request-1".into();
    let response = handler
        .handle(LambdaEvent::new(request, context))
        .await
        .expect("the handler answers");
    let raw = serde_json::to_value(&response).unwrap();

    let status = u16::try_from(raw["statusCode"].as_u64().expect("statusCode")).unwrap();
    let mut headers = BTreeMap::<String, Vec<String>>::new();
    if v2 {
        // HTTP API: single-valued `headers` (repeats joined), no `multiValueHeaders`.
        for (name, value) in raw["headers"].as_object().expect("headers") {
            headers
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push(value.as_str().unwrap().to_owned());
        }
        assert!(
            raw.get("multiValueHeaders")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty),
            "{raw}"
        );
    } else {
        // REST API: everything in `multiValueHeaders`, `headers` empty so nothing doubles.
        for (name, values) in raw["multiValueHeaders"].as_object().expect("headers") {
            for value in values.as_array().unwrap() {
                headers
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .push(value.as_str().unwrap().to_owned());
            }
        }
        assert!(
            raw.get("headers")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty),
            "{raw}"
        );
    }
    assert_eq!(
        raw["isBase64Encoded"], false,
        "JSON goes back as text: {raw}"
    );
    let body = match raw["body"].as_str() {
        Some(text) if !text.is_empty() => serde_json::from_str(text).expect("a JSON body"),
        _ => Value::Null,
    };
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

/// Creates an order through the command function (v2) and returns its id.
async fn create(functions: &Functions, customer: &str) -> String {
    let reply = invoke(
        &functions.commands,
        Call::new("POST", "/orders")
            .json(&create_body(customer))
            .v2(),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    reply.order_id()
}

/// Asserts a new order's 201: its `Location` is the order's path and its `ETag` version 1.
#[track_caller]
fn assert_created(reply: &Reply) {
    assert_eq!(reply.status, 201, "{}", reply.raw);
    let id = reply.order_id();
    assert_eq!(
        reply.header("location"),
        Some(format!("/orders/{id}").as_str())
    );
    assert_eq!(reply.header("etag"), Some("\"1\""));
}

#[tokio::test]
async fn v2_create_answers_201_with_location_etag_and_the_order() {
    let functions = Functions::new();
    let reply = invoke(
        &functions.commands,
        Call::new("POST", "/orders")
            .json(&create_body("customer-1"))
            .headers(&[("X-Correlation-Id", "corr-7")])
            .v2(),
    )
    .await;

    assert_created(&reply);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-correlation-id"), Some("corr-7"));
    assert_eq!(reply.header("idempotent-replayed"), None);
    assert_eq!(reply.body["status"], "PENDING");
    assert_eq!(reply.body["version"], 1);
    assert_eq!(reply.body["customerId"], "customer-1");
    assert_eq!(reply.body["total"], 2 * 1250 + 999);
    assert_eq!(reply.body["items"].as_array().unwrap().len(), 2);
    // HTTP API responses carry no cookies of ours.
    assert!(
        reply.raw["cookies"]
            .as_array()
            .is_none_or(|cookies| cookies.is_empty())
    );
}

#[tokio::test]
async fn v1_create_answers_the_same_through_the_rest_payload() {
    let functions = Functions::new();
    let reply = invoke(
        &functions.commands,
        Call::new("POST", "/orders")
            .json(&create_body("customer-rest"))
            .v1(),
    )
    .await;
    // The stage is not part of our URLs: the path is the one the router saw.
    assert_created(&reply);
    assert_eq!(reply.body["customerId"], "customer-rest");
}

#[tokio::test]
async fn confirm_then_get_the_view_with_its_etag_across_both_payloads() {
    let functions = Functions::new();
    let id = create(&functions, "customer-2").await;

    let confirmed = invoke(
        &functions.commands,
        Call::new("POST", &format!("/orders/{id}/confirm"))
            .headers(&[("If-Match", "\"1\"")])
            .v2(),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.raw);
    assert_eq!(confirmed.body["status"], "CONFIRMED");
    assert_eq!(confirmed.body["version"], 2);
    assert_eq!(confirmed.header("etag"), Some("\"2\""));

    // No projector runs here: read-your-writes folds the events for a view behind version 2.
    let path = format!("/orders/{id}");
    for event in [
        Call::new("GET", &path).query(&[("minVersion", "2")]).v1(),
        Call::new("GET", &path).query(&[("minVersion", "2")]).v2(),
    ] {
        let view = invoke(&functions.queries, event).await;
        assert_eq!(view.status, 200, "{}", view.raw);
        assert_eq!(view.header("etag"), Some("\"2\""));
        assert_eq!(view.header("content-type"), Some("application/json"));
        assert_eq!(view.body["orderId"], id.as_str());
        assert_eq!(view.body["status"], "CONFIRMED");
        assert_eq!(view.body["version"], 2);
    }

    // A stale If-Match is refused with 412, whichever payload carries it.
    let stale = invoke(
        &functions.commands,
        Call::new("POST", &format!("/orders/{id}/ship"))
            .headers(&[("If-Match", "\"1\"")])
            .v1(),
    )
    .await;
    stale.assert_problem(412);
}

#[tokio::test]
async fn events_history_in_version_order() {
    let functions = Functions::new();
    let id = create(&functions, "customer-h").await;
    let cancel = invoke(
        &functions.commands,
        Call::new("POST", &format!("/orders/{id}/cancel"))
            .json(&json!({"reason": "changed my mind"}))
            .v1(),
    )
    .await;
    assert_eq!(cancel.status, 200, "{}", cancel.raw);

    let history = invoke(
        &functions.queries,
        Call::new("GET", &format!("/orders/{id}/events")).v2(),
    )
    .await;
    assert_eq!(history.status, 200, "{}", history.raw);
    assert_eq!(history.body["orderId"], id.as_str());
    let types: Vec<&str> = history.body["events"]
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["OrderCreated", "OrderCancelled"]);
}

#[tokio::test]
async fn validation_failure_is_a_400_problem_listing_every_field() {
    let functions = Functions::new();
    let bad = json!({"customerId": "", "currency": "eur", "items": []});
    for event in [
        Call::new("POST", "/orders").json(&bad).v2(),
        Call::new("POST", "/orders").json(&bad).v1(),
    ] {
        let reply = invoke(&functions.commands, event).await;
        let mut fields = reply.assert_problem(400);
        fields.sort();
        assert_eq!(
            fields,
            ["currency", "customerId", "items"],
            "{}",
            reply.body
        );
    }

    let malformed = invoke(
        &functions.commands,
        Call::new("POST", "/orders")
            .headers(&[("content-type", "application/json")])
            .v2()
            .tap(|e| e["body"] = json!("{\"customerId\": ")),
    )
    .await;
    malformed.assert_problem(400);
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_a_404_problem() {
    let functions = Functions::new();
    for event in [
        Call::new("GET", "/orders/not-a-uuid").v1(),
        Call::new("GET", "/orders/not-a-uuid").v2(),
    ] {
        invoke(&functions.queries, event).await.assert_problem(404);
    }
    invoke(
        &functions.commands,
        Call::new("POST", "/orders/not-a-uuid/confirm").v2(),
    )
    .await
    .assert_problem(404);
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_first_response() {
    let functions = Functions::new();
    let key = [("Idempotency-Key", "lambda-key-1")];
    let first = invoke(
        &functions.commands,
        Call::new("POST", "/orders")
            .json(&create_body("customer-3"))
            .headers(&key)
            .v2(),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.raw);
    assert_eq!(first.header("idempotent-replayed"), None);

    // The retry may come through the other payload version: same route, same request.
    let again = invoke(
        &functions.commands,
        Call::new("POST", "/orders")
            .json(&create_body("customer-3"))
            .headers(&key)
            .v1(),
    )
    .await;
    assert_eq!(again.status, 201, "{}", again.raw);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.order_id(), first.order_id());
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), Some("\"1\""));

    let different = invoke(
        &functions.commands,
        Call::new("POST", "/orders")
            .json(&create_body("someone-else"))
            .headers(&key)
            .v2(),
    )
    .await;
    different.assert_problem(422);
}

/// `event` as an HTTP API with a JWT authorizer delivers it for the token of `subject`.
fn from_subject(event: Value, subject: &str) -> Value {
    event.tap(|e| e["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(subject))
}

/// `event` as an HTTP API without an authorizer delivers it: no `authorizer` at all.
fn without_authorizer(event: Value) -> Value {
    event.tap(|e| {
        e["requestContext"]
            .as_object_mut()
            .unwrap()
            .remove("authorizer");
    })
}

#[tokio::test]
async fn behind_a_jwt_authorizer_idempotency_keys_belong_to_their_caller() {
    let functions = Functions::new();
    let key = [("Idempotency-Key", "shared-key")];
    let create = |customer: &str| {
        Call::new("POST", "/orders")
            .json(&create_body(customer))
            .headers(&key)
            .v2()
    };
    let send = |event| invoke(&functions.commands, event);
    let assert_fresh = |reply: &Reply| {
        assert_eq!(reply.status, 201, "{}", reply.raw);
        assert_eq!(reply.header("idempotent-replayed"), None, "{}", reply.raw);
    };

    let alice = send(from_subject(create("customer-a"), "alice")).await;
    assert_fresh(&alice);

    // Bob's same key and same body is his own request, not a replay of Alice's.
    let bob = send(from_subject(create("customer-a"), "bob")).await;
    assert_fresh(&bob);
    assert_ne!(bob.order_id(), alice.order_id());

    // Carol's same key with another body is not "reused": it is hers for the first time.
    let carol = send(from_subject(create("customer-c"), "carol")).await;
    assert_fresh(&carol);
    assert_ne!(carol.order_id(), alice.order_id());

    // Each caller's retry replays their own first response.
    for (subject, first) in [("alice", &alice), ("bob", &bob)] {
        let again = send(from_subject(create("customer-a"), subject)).await;
        assert_eq!(again.status, 201, "{}", again.raw);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.order_id(), first.order_id(), "{subject}");
    }
    // And reusing one's own key for another request is still refused.
    send(from_subject(create("customer-c"), "alice"))
        .await
        .assert_problem(422);

    // Without an authorizer keys are global: a fresh record, not any caller's, then replayed.
    let global = send(without_authorizer(create("customer-a"))).await;
    assert_fresh(&global);
    for order in [&alice, &bob, &carol] {
        assert_ne!(global.order_id(), order.order_id());
    }
    let again = send(without_authorizer(create("customer-a"))).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.order_id(), global.order_id());
}

#[tokio::test]
async fn a_non_json_content_type_is_a_415_problem() {
    let functions = Functions::new();
    let event = Call::new("POST", "/orders")
        .json(&create_body("c"))
        .headers(&[("Content-Type", "text/plain")])
        .v1();
    invoke(&functions.commands, event).await.assert_problem(415);
}

#[tokio::test]
async fn a_base64_encoded_body_is_decoded() {
    let functions = Functions::new();
    let mut event = Call::new("POST", "/orders")
        .json(&create_body("customer-b64"))
        .v1();
    let body = event["body"].as_str().unwrap().to_owned();
    event["body"] = json!(STANDARD.encode(body));
    event["isBase64Encoded"] = json!(true);
    let reply = invoke(&functions.commands, event).await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    assert_eq!(reply.body["customerId"], "customer-b64");
}

#[tokio::test]
async fn named_stages_do_not_reach_the_router() {
    let functions = Functions::new();
    let id = create(&functions, "customer-4").await;
    let path = format!("/orders/{id}");

    // HTTP API on a named stage: rawPath is `/prod/orders/{id}`.
    let v2 = Call::new("GET", &path)
        .query(&[("minVersion", "1")])
        .v2_on_stage("prod");
    assert_eq!(v2["rawPath"], format!("/prod{path}"));
    let reply = invoke(&functions.queries, v2).await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(reply.body["orderId"], id.as_str());

    // REST API: a stage whose name is also our first path segment.
    let mut v1 = Call::new("GET", &path).query(&[("minVersion", "1")]).v1();
    v1["requestContext"]["stage"] = json!("orders");
    let reply = invoke(&functions.queries, v1).await;
    assert_eq!(reply.status, 200, "{}", reply.raw);

    // An HTTP API stage named `orders`: rawPath `/orders/orders/{id}`.
    let v2 = Call::new("GET", &path)
        .query(&[("minVersion", "1")])
        .v2_on_stage("orders");
    let reply = invoke(&functions.queries, v2).await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
}

/// Characters browsers and hand-written clients send raw, which `lambda_http` alone panics on
/// (in an HTTP API query) or misreads (in a path).
const HOSTILE: [&str; 20] = [
    "\"", "<", ">", " ", "{", "}", "|", "^", "`", "\\", "#", "[", "]", "%", "%zz", "é", "\u{1}",
    "\n", "\u{7f}", "?",
];

#[tokio::test]
async fn hostile_urls_are_answered_never_a_function_error() {
    let functions = Functions::new();
    let id = create(&functions, "customer-hostile").await;
    for raw in HOSTILE {
        let order = format!("/orders/{id}");
        let bad_id = format!("/orders/{id}{raw}");
        let value = format!("a{raw}b");
        let query = [("customerId", value.as_str())];
        let min_version = [("minVersion", value.as_str())];
        let (bad_confirm, confirm) = (format!("{bad_id}/confirm"), format!("{order}/confirm"));
        let cases = [
            (&functions.queries, Call::new("GET", &bad_id)),
            (
                &functions.queries,
                Call::new("GET", "/orders").query(&query),
            ),
            (
                &functions.queries,
                Call::new("GET", &order).query(&min_version),
            ),
            (&functions.commands, Call::new("POST", &bad_confirm)),
            (
                &functions.commands,
                Call::new("POST", &confirm).query(&query),
            ),
        ];
        for (handler, call) in cases {
            for event in [call.v1(), call.v2()] {
                let reply = invoke(handler, event).await;
                if reply.status >= 400 {
                    reply.assert_problem(reply.status);
                }
                assert!(
                    matches!(reply.status, 200 | 400 | 404 | 409),
                    "{raw:?}: {}",
                    reply.raw
                );
                assert!(reply.header("x-correlation-id").is_some(), "{}", reply.raw);
            }
        }
    }
}

/// The names of the query parameters the router refused, as it decoded them.
async fn refused_parameters(functions: &Functions, event: Value) -> Vec<String> {
    invoke(&functions.queries, event).await.assert_problem(400)
}

#[tokio::test]
async fn hostile_characters_in_a_query_reach_the_router_decoded() {
    let functions = Functions::new();
    // An unknown parameter is a field error that names it: what the router decoded.
    let name = "a\"b <c>{d}|e^f`g\\h[i]#j%k é?l";
    // v2 carries the raw query, v1 the decoded values.
    let query = [(name, "1"), ("customerId", "c")];
    for event in [
        Call::new("GET", "/orders").query(&query).v2(),
        Call::new("GET", "/orders").query(&query).v1(),
    ] {
        assert_eq!(refused_parameters(&functions, event).await, [name]);
    }
    // In a raw query `+` is a space and `%2B` a plus, as in any form-encoded query.
    for (raw, decoded) in [
        ("with+space", "with space"),
        ("with%20space", "with space"),
        ("with space", "with space"),
        ("with%2Bplus", "with+plus"),
        ("caf%C3%A9", "café"),
        ("100%", "100%"),
    ] {
        let event = Call::new("GET", "/orders")
            .query(&[(raw, "1"), ("customerId", "c")])
            .v2();
        assert_eq!(refused_parameters(&functions, event).await, [decoded]);
    }
}

#[tokio::test]
async fn a_url_that_cannot_be_a_uri_is_a_400_problem_and_writes_nothing() {
    let functions = Functions::new();
    let body = create_body("customer-refused");
    let bad_host = [("Host", "id.execute-api.us-east-1.amazonaws.com:99999")];
    let mut relative = Call::new("POST", "/orders").json(&body).v2();
    relative["rawPath"] = json!("orders");
    // lambda_http would `.expect` the decode of a body marked base64 that is not.
    let mut not_base64 = [
        Call::new("POST", "/orders").json(&body).v1(),
        Call::new("POST", "/orders").json(&body).v2(),
    ];
    for event in &mut not_base64 {
        event["isBase64Encoded"] = json!(true);
        event["body"] = json!("{not base64!}");
    }
    let [not_base64_v1, not_base64_v2] = not_base64;
    for event in [
        not_base64_v1,
        not_base64_v2,
        Call::new("POST", "/orders")
            .json(&body)
            .headers(&bad_host)
            .v1(),
        Call::new("POST", "/orders")
            .json(&body)
            .headers(&bad_host)
            .v2(),
        relative,
    ] {
        let reply = invoke(&functions.commands, event).await;
        reply.assert_problem(400);
        assert_eq!(reply.body["type"], "urn:orders:problem:invalid-request");
        assert!(reply.header("x-correlation-id").is_some(), "{}", reply.raw);
    }
    let listing = invoke(
        &functions.queries,
        Call::new("GET", "/orders")
            .query(&[("customerId", "customer-refused")])
            .v2(),
    )
    .await;
    assert_eq!(listing.body["items"], json!([]), "{}", listing.raw);
}

#[tokio::test]
async fn without_a_correlation_id_the_api_gateway_request_id_is_used() {
    let functions = Functions::new();
    let v2 = invoke(
        &functions.commands,
        Call::new("POST", "/orders").json(&create_body("c")).v2(),
    )
    .await;
    assert_eq!(v2.header("x-correlation-id"), Some("apigw-v2-request-id"));
    let v1 = invoke(
        &functions.queries,
        Call::new("GET", &format!("/orders/{}", v2.order_id()))
            .query(&[("minVersion", "1")])
            .v1(),
    )
    .await;
    assert_eq!(v1.header("x-correlation-id"), Some("apigw-v1-request-id"));
}

#[tokio::test]
async fn each_function_serves_only_its_own_routes() {
    let functions = Functions::new();
    let id = create(&functions, "customer-5").await;
    let on_queries = invoke(
        &functions.queries,
        Call::new("POST", &format!("/orders/{id}/confirm")).v2(),
    )
    .await;
    assert!(matches!(on_queries.status, 404 | 405), "{}", on_queries.raw);
    let listing = invoke(
        &functions.commands,
        Call::new("GET", "/orders")
            .query(&[("customerId", "customer-5")])
            .v2(),
    )
    .await;
    assert!(matches!(listing.status, 404 | 405), "{}", listing.raw);
}

#[tokio::test]
async fn listings_sign_cursors_and_refuse_tampered_ones() {
    let functions = Functions::new();
    let listing = invoke(
        &functions.queries,
        Call::new("GET", "/orders")
            .query(&[("customerId", "nobody"), ("cursor", "dGFtcGVyZWQ")])
            .v1(),
    )
    .await;
    listing.assert_problem(400);
    let empty = invoke(
        &functions.queries,
        Call::new("GET", "/orders")
            .query(&[("customerId", "nobody"), ("limit", "5")])
            .v2(),
    )
    .await;
    assert_eq!(empty.status, 200, "{}", empty.raw);
    assert_eq!(empty.body["items"], json!([]));
    assert_eq!(empty.body["nextCursor"], Value::Null);
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

// --- configuration, logging, errors -------------------------------------------------------

use orders_testkit::env::env_of as vars;

const TABLES: [(&str, &str); 3] = [
    ("EVENTS_TABLE", "ev"),
    ("ORDERS_TABLE", "rm"),
    ("IDEMPOTENCY_TABLE", "idem"),
];

#[test]
fn config_reads_the_tables_and_needs_every_one() {
    let config = LambdaConfig::from_vars(Api::Commands, vars(&TABLES)).unwrap();
    assert_eq!(
        config.tables,
        DynamoTables {
            events: "ev".into(),
            orders: "rm".into(),
            idempotency: "idem".into(),
        }
    );
    assert_eq!(config.http.source, "orders.command-api");
    assert!(config.http.cursor_key.is_empty());

    for missing in LambdaConfig::vars(Api::Commands).iter().map(|var| var.name) {
        let mut pairs: Vec<(&str, &str)> = TABLES.to_vec();
        pairs.retain(|(k, _)| *k != missing);
        let error = LambdaConfig::from_vars(Api::Commands, vars(&pairs)).unwrap_err();
        assert_eq!(error, ConfigError::MissingTable(missing));
        pairs.push((missing, "  "));
        let error = LambdaConfig::from_vars(Api::Commands, vars(&pairs)).unwrap_err();
        assert_eq!(
            error,
            ConfigError::MissingTable(missing),
            "blank counts as unset"
        );
    }
}

#[test]
fn the_query_api_needs_a_strong_cursor_key() {
    let error = LambdaConfig::from_vars(Api::Queries, vars(&TABLES)).unwrap_err();
    assert_eq!(error, ConfigError::MissingCursorKey);

    let mut pairs = TABLES.to_vec();
    pairs.push(("CURSOR_KEY", "short"));
    let error = LambdaConfig::from_vars(Api::Queries, vars(&pairs)).unwrap_err();
    assert_eq!(error, ConfigError::WeakCursorKey(5));

    let key = "0123456789abcdef0123456789abcdef";
    pairs.pop();
    pairs.push(("CURSOR_KEY", key));
    let config = LambdaConfig::from_vars(Api::Queries, vars(&pairs)).unwrap();
    assert_eq!(config.http.cursor_key, key.as_bytes());
    assert_eq!(config.http.source, "orders.query-api");
    assert!(
        !format!("{config:?}").contains(key),
        "Debug must not print the key"
    );
}

#[test]
fn the_cursor_key_rule_is_one_minimum_length() {
    let key = |len: usize| vec![b'k'; len];
    assert_eq!(check_cursor_key(&key(MIN_CURSOR_KEY_LEN)), Ok(()));
    for len in [0, 1, MIN_CURSOR_KEY_LEN - 1] {
        assert_eq!(check_cursor_key(&key(len)), Err(WeakCursorKey { len }));
    }
    assert_eq!(
        WeakCursorKey { len: 5 }.to_string(),
        "5 bytes long; a cursor key must be at least 32 bytes"
    );
}

#[test]
fn escaping_errors_become_diagnostics_with_meaningful_types() {
    let diagnostic = Diagnostic::from(ConfigError::MissingCursorKey);
    assert_eq!(diagnostic.error_type, "Orders.Config");
    assert!(diagnostic.error_message.contains("CURSOR_KEY"));

    let diagnostic = Diagnostic::from(HandlerError::ResponseBody("boom".into()));
    assert_eq!(diagnostic.error_type, "Orders.ResponseBody");
    assert!(diagnostic.error_message.contains("boom"));
}

#[test]
fn strip_stage_removes_exactly_one_leading_segment() {
    let strip = |uri: &str, stage: &str| {
        strip_stage(&uri.parse().unwrap(), stage).map(|u: Uri| u.to_string())
    };
    assert_eq!(
        strip("https://h.example/prod/orders/1?a=b", "prod").as_deref(),
        Some("https://h.example/orders/1?a=b")
    );
    assert_eq!(strip("/prod", "prod").as_deref(), Some("/"));
    assert_eq!(strip("/production/orders", "prod"), None);
    assert_eq!(strip("/orders", "prod"), None);
}
