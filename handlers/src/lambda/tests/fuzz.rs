//! Fuzzing the API Gateway adapter: the canonical v1 and v2 events (`events/`) for valid
//! requests, with fields mutated the way a client or a gateway configuration can shape them
//! (`rawPath`, `path`, `rawQueryString`, headers and multi-value headers, query maps, body,
//! base64 bodies, stage, domain name, request id, method, the authorizer's `sub`), through
//! [`ApiHandler::handle`] as the runtime calls it. The rule: the handler answers (no panic, no
//! function error) with a success or a 4xx problem, and a rejected request writes nothing.
//!
//! A mutated event that no longer deserializes as an API Gateway event is one the runtime
//! refuses before our code runs; such cases are counted and must stay a minority, so the
//! property keeps testing the handler.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::request::LambdaRequest;
use orders_store::ChangeFeed;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{Functions, invoke};
use orders_testkit::apigw::Call;
use orders_testkit::fixtures::create_body;
use orders_testkit::fuzz::run_fuzz;

impl Functions {
    async fn event_count(&self) -> usize {
        self.store.read_after(0, usize::MAX).await.unwrap().len()
    }
}

/// A valid request to start from.
#[derive(Debug, Clone, Copy)]
enum Base {
    Create,
    Confirm,
    Get,
    List,
}

/// The base request as an event of payload v2 (`true`) or v1.
fn base_event(base: Base, v2: bool, order: &str) -> Value {
    let body = create_body("fuzz-customer");
    let confirm = format!("/orders/{order}/confirm");
    let get = format!("/orders/{order}");
    let call = match base {
        Base::Create => Call::new("POST", "/orders").json(&body),
        Base::Confirm => Call::new("POST", &confirm).headers(&[("If-Match", "\"1\"")]),
        Base::Get => Call::new("GET", &get).query(&[("minVersion", "1")]),
        Base::List => Call::new("GET", "/orders").query(&[("customerId", "fuzz-customer")]),
    };
    if v2 { call.v2() } else { call.v1() }
}

/// One change to an event: a field set to a value or removed, or a header added.
#[derive(Debug, Clone)]
enum EventMutation {
    Set(&'static str, Value),
    Remove(&'static str),
    /// Added to `headers`, and to `multiValueHeaders` of a v1 event (possibly differing).
    Header(String, String, Option<Vec<String>>),
    /// `isBase64Encoded: true`, the body the base64 of these bytes (as API Gateway encodes a
    /// binary body; it never sends invalid base64).
    Base64Body(Vec<u8>),
}

/// What a field holds in a well-formed event.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Map,
    MultiMap,
    List,
    Bool,
}

/// The fields a client, or the gateway's configuration, decides.
const FIELDS: &[(&str, Kind)] = &[
    ("/rawPath", Kind::Text),
    ("/rawQueryString", Kind::Text),
    ("/path", Kind::Text),
    ("/httpMethod", Kind::Text),
    ("/body", Kind::Text),
    ("/cookies", Kind::List),
    ("/headers", Kind::Map),
    ("/multiValueHeaders", Kind::MultiMap),
    ("/queryStringParameters", Kind::Map),
    ("/multiValueQueryStringParameters", Kind::MultiMap),
    ("/pathParameters", Kind::Map),
    ("/stageVariables", Kind::Map),
    ("/resource", Kind::Text),
    ("/isBase64Encoded", Kind::Bool),
    ("/requestContext/stage", Kind::Text),
    ("/requestContext/path", Kind::Text),
    ("/requestContext/domainName", Kind::Text),
    ("/requestContext/requestId", Kind::Text),
    ("/requestContext/http/method", Kind::Text),
    ("/requestContext/http/path", Kind::Text),
    ("/requestContext/authorizer/jwt/claims/sub", Kind::Text),
];

/// Strings of every kind: arbitrary text, URL-ish text with hostile characters, HTTP tokens.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "/orders(/[ -~]{0,12}){0,3}",
        "[ -~]{0,40}",
        prop::sample::select(vec![
            "",
            "/",
            "//",
            "/orders",
            "/orders/",
            "orders",
            "$default",
            "testStage",
            "GET",
            "POST",
            "get",
            "PUT",
            "DELETE",
            "HEAD",
            "OPTIONS",
            "CONNECT",
            "a b",
            "%",
            "%zz",
            "/orders?x#y",
            "/orders/%00",
            "example.com:99999",
            "[::1",
            "user@host",
        ])
        .prop_map(str::to_owned),
    ]
}

fn string_map() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(text(), text(), 0..4)
        .prop_map(|map| Value::Object(map.into_iter().map(|(k, v)| (k, json!(v))).collect()))
}

fn multi_map() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(text(), prop::collection::vec(text(), 0..3), 0..4)
        .prop_map(|map| Value::Object(map.into_iter().map(|(k, v)| (k, json!(v))).collect()))
}

/// A value of `kind`. (`isBase64Encoded: true` gets a valid base64 body from
/// [`EventMutation::Base64Body`]; set alone, it leaves the body as it is.)
fn value_of(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Text => text().prop_map(Value::String).boxed(),
        Kind::Map => string_map().boxed(),
        Kind::MultiMap => multi_map().boxed(),
        Kind::List => prop::collection::vec(text(), 0..3)
            .prop_map(|v| json!(v))
            .boxed(),
        Kind::Bool => Just(json!(false)).boxed(),
    }
}

/// A value for a field: mostly of the field's own kind, sometimes of another or `null`.
fn field_value(kind: Kind) -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => value_of(kind),
        1 => Just(Value::Null),
        1 => any::<i64>().prop_map(|n| json!(n)),
        1 => value_of(Kind::Map),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "host",
            "Host",
            "x-forwarded-proto",
            "X-Forwarded-Proto",
            "content-type",
            "Content-Type",
            "content-length",
            "if-match",
            "idempotency-key",
            "x-correlation-id",
            "transfer-encoding",
            "cookie",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z0-9-]{1,20}",
        any::<String>(),
    ]
}

fn mutation() -> impl Strategy<Value = EventMutation> {
    prop_oneof![
        6 => prop::sample::select(FIELDS).prop_flat_map(|(field, kind)| {
            field_value(kind).prop_map(move |value| EventMutation::Set(field, value))
        }),
        1 => prop::sample::select(FIELDS).prop_map(|(field, _)| EventMutation::Remove(field)),
        4 => (header_name(), text(), prop::option::of(prop::collection::vec(text(), 0..3)))
            .prop_map(|(name, value, multi)| EventMutation::Header(name, value, multi)),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(EventMutation::Base64Body),
    ]
}

fn apply(event: &mut Value, mutation: &EventMutation) {
    match mutation {
        EventMutation::Set(pointer, value) => {
            let (parent, field) = pointer.rsplit_once('/').unwrap();
            if let Some(Value::Object(map)) = event.pointer_mut(parent) {
                map.insert(field.to_owned(), value.clone());
            }
            // API Gateway encodes a body it marks base64 itself, so a body it marks is always
            // valid base64 (`lambda_http` panics on one that is not).
            if *pointer == "/body" {
                event["isBase64Encoded"] = json!(false);
            }
        }
        EventMutation::Remove(pointer) => {
            let (parent, field) = pointer.rsplit_once('/').unwrap();
            if let Some(Value::Object(map)) = event.pointer_mut(parent) {
                map.remove(field);
            }
        }
        EventMutation::Header(name, value, multi) => {
            let object = |event: &mut Value, field: &str| {
                if !event[field].is_object() {
                    event[field] = Value::Object(Map::new());
                }
            };
            object(event, "headers");
            event["headers"][name.as_str()] = json!(value);
            if event.get("multiValueHeaders").is_some() {
                object(event, "multiValueHeaders");
                event["multiValueHeaders"][name.as_str()] =
                    json!(multi.clone().unwrap_or_else(|| vec![value.clone()]));
            }
        }
        EventMutation::Base64Body(bytes) => {
            event["body"] = json!(STANDARD.encode(bytes));
            event["isBase64Encoded"] = json!(true);
        }
    }
}

/// Whether the runtime can deserialize `event` at all; the ones it cannot never reach us.
fn is_api_gateway_event(event: &Value) -> bool {
    let Ok(request) = serde_json::from_value::<LambdaRequest>(event.clone()) else {
        return false;
    };
    // The payload version decides the shape of the response `invoke` reads; an event whose
    // fields make it parse as the other version is not one API Gateway sends.
    let v2 = event.get("version").and_then(Value::as_str) == Some("2.0");
    matches!(
        (&request, v2),
        (LambdaRequest::ApiGatewayV2(_), true) | (LambdaRequest::ApiGatewayV1(_), false)
    )
}

#[test]
#[allow(
    clippy::print_stderr,
    reason = "the fuzz summary is for the developer who runs it"
)]
fn fuzz_api_gateway_events() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let functions = Functions::new();
    let order = rt.block_on(async {
        let reply = invoke(
            &functions.commands,
            Call::new("POST", "/orders")
                .json(&create_body("fuzz-customer"))
                .v2(),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.raw);
        reply.order_id()
    });
    let base = prop::sample::select(vec![Base::Create, Base::Confirm, Base::Get, Base::List]);
    let strategy = (base, any::<bool>(), prop::collection::vec(mutation(), 1..4));
    let tried = AtomicU64::new(0);
    let not_events = AtomicU64::new(0);
    run_fuzz(
        "lambda api-gateway event",
        strategy,
        |(base, v2, mutations)| {
            let mut event = base_event(base, v2, &order);
            for mutation in &mutations {
                apply(&mut event, mutation);
            }
            tried.fetch_add(1, Ordering::Relaxed);
            if !is_api_gateway_event(&event) {
                not_events.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let handler = match base {
                Base::Create | Base::Confirm => &functions.commands,
                Base::Get | Base::List => &functions.queries,
            };
            // A HEAD response carries the status and headers of a GET, without its body.
            let method = event
                .pointer("/requestContext/http/method")
                .or_else(|| event.get("httpMethod"));
            let is_head = method.and_then(Value::as_str) == Some("HEAD");
            rt.block_on(async {
                let before = functions.event_count().await;
                // `invoke` fails the case if the handler panics or returns a function error.
                let reply = invoke(handler, event).await;
                prop_assert!(reply.status < 500, "{}", reply.raw);
                if reply.status >= 400 {
                    if is_head {
                        let content_type = reply.header("content-type");
                        prop_assert_eq!(content_type, Some("application/problem+json"));
                    } else {
                        reply.assert_problem(reply.status);
                        let kind = reply.body["type"].as_str().unwrap_or_default();
                        prop_assert!(kind.starts_with("urn:orders:problem:"), "{}", reply.raw);
                    }
                    let written = functions.event_count().await - before;
                    prop_assert_eq!(written, 0, "a rejected request wrote events: {}", reply.raw);
                }
                Ok(())
            })
        },
    );
    let (tried, not_events) = (tried.into_inner(), not_events.into_inner());
    eprintln!(
        "fuzz lambda api-gateway event: {not_events} of {tried} mutated events are not API \
         Gateway events (refused by the runtime, skipped)"
    );
    assert!(
        not_events * 2 < tried,
        "{not_events} of {tried} mutated events were not API Gateway events: the generator \
         no longer tests the handler"
    );
}
