//! Fuzzing the request decoding of the real router (body, headers, path, query, cursor) on a
//! real SQLite store. Each property feeds mostly-valid requests with one part mutated, or
//! arbitrary bytes, and checks the one rule for bad input: the answer is a success or a 4xx
//! problem (`application/problem+json` with `type`, `title` and `status`), never a 5xx or a
//! panic, and a rejected command writes nothing.
//!
//! Each property runs a bounded number of cases in the test suite; `PROPTEST_CASES` raises it
//! for `scripts/fuzz.sh`, which reads the `fuzz <target>: N cases, F failures` line each one
//! prints.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orders_domain::OrderId;
use proptest::prelude::*;

use orders_testkit::fuzz::run_fuzz;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

use super::{TestApi, TestResponse};
use crate::http::extract::MAX_BODY_BYTES;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The rule for any input: a success, or a 4xx problem with `type`, `title` and `status`.
fn check_answer(method: &Method, response: &TestResponse) -> Result<(), TestCaseError> {
    let status = response.status.as_u16();
    prop_assert!(status < 500, "{status}: {}", response.body);
    prop_assert!(status >= 200, "{status}");
    if status >= 400 {
        prop_assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        // A HEAD response has no body to check.
        if *method != Method::HEAD {
            prop_assert_eq!(
                &response.body["status"],
                &json!(status),
                "{}",
                response.body
            );
            let kind = response.body["type"].as_str().unwrap_or_default();
            prop_assert!(kind.starts_with("urn:orders:problem:"), "{}", response.body);
            prop_assert!(response.body["title"].is_string(), "{}", response.body);
        }
    }
    Ok(())
}

/// Sends `request` and checks the rule, and that a rejected request stored no event (and a
/// create that succeeded as a new order stored exactly one).
async fn send_checked(
    api: &TestApi,
    request: Request<Body>,
) -> Result<TestResponse, TestCaseError> {
    let method = request.method().clone();
    let is_create = method == Method::POST && request.uri().path() == "/orders";
    let before = api.event_count().await;
    let response = api.send(request).await;
    check_answer(&method, &response)?;
    let written = api.event_count().await - before;
    if response.status.is_client_error() {
        prop_assert_eq!(
            written,
            0,
            "a rejected request wrote events: {}",
            response.body
        );
    } else if is_create && response.header("idempotent-replayed").is_none() {
        prop_assert_eq!(written, 1, "a create wrote {} events", written);
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Generators

/// A create body the API accepts.
fn valid_create_body() -> impl Strategy<Value = Value> {
    let item = ("[A-Za-z0-9._-]{1,12}", 1..=50u32, 0..=100_000u64).prop_map(
        |(sku, quantity, price)| json!({"sku": sku, "quantity": quantity, "unitPrice": price}),
    );
    (
        "[a-z0-9-]{1,24}",
        prop::sample::select(vec!["EUR", "USD", "GBP", "JPY"]),
        prop::collection::vec(item, 1..4),
    )
        .prop_map(|(customer, currency, items)| {
            json!({"customerId": customer, "currency": currency, "items": items})
        })
}

/// JSON values of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// JSON text that `serde_json::Value` cannot hold or that stresses the parser: numbers beyond
/// every integer type, exponents, deep nesting, raw control characters, lone surrogates.
fn raw_json_token() -> impl Strategy<Value = String> {
    prop_oneof![
        any_json().prop_map(|value| value.to_string()),
        prop::sample::select(vec![
            "18446744073709551616",
            "-9223372036854775809",
            "99999999999999999999999999999999",
            "1e400",
            "-1e400",
            "1e-400",
            "1E2",
            "2.0",
            "-0",
            "0.1e1",
            "9007199254740993",
            "\"\\ud800\"",
            "\"\\u0000\"",
            "\"\\udfff\\ud800\"",
            "\"",
            "NaN",
            "Infinity",
            "",
        ])
        .prop_map(str::to_owned),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        // A string with its characters unescaped: control characters become invalid JSON.
        any::<String>().prop_map(|s| format!("\"{s}\"")),
        (1..700usize, any::<bool>()).prop_map(|(depth, arrays)| if arrays {
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
        }),
    ]
}

/// One structure-aware change to a valid body. Slots are every value in the body, in order.
#[derive(Debug, Clone)]
enum BodyMutation {
    /// Replace the value at slot `n` with `text`.
    Replace(usize, String),
    /// Remove the member at slot `n` (when it is an object member).
    Remove(usize),
    /// Add a member `name: text` to the object at slot `n` (or the body).
    Add(usize, String, String),
}

fn body_mutation() -> impl Strategy<Value = BodyMutation> {
    prop_oneof![
        4 => (any::<usize>(), raw_json_token()).prop_map(|(n, text)| BodyMutation::Replace(n, text)),
        1 => any::<usize>().prop_map(BodyMutation::Remove),
        1 => (any::<usize>(), any::<String>(), raw_json_token())
            .prop_map(|(n, name, text)| BodyMutation::Add(n, name, text)),
    ]
}

/// The JSON pointers of every value under `value` (its own pointer first).
fn slots(value: &Value, pointer: String, out: &mut Vec<String>) {
    out.push(pointer.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                slots(child, format!("{pointer}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                slots(child, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Stands for raw text in the serialized body; no generated key or string can contain it.
const HOLE: &str = "\u{0}\u{0}fuzz-hole\u{0}\u{0}";

/// The body's JSON text after `mutation`.
fn mutate(mut body: Value, mutation: &BodyMutation) -> String {
    let mut pointers = Vec::new();
    slots(&body, String::new(), &mut pointers);
    let pick = |n: usize| pointers[n % pointers.len()].clone();
    let hole = Value::String(HOLE.to_owned()).to_string();
    let text = match mutation {
        BodyMutation::Replace(n, text) => {
            *body.pointer_mut(&pick(*n)).unwrap() = Value::String(HOLE.to_owned());
            text.clone()
        }
        BodyMutation::Remove(n) => {
            let pointer = pick(*n);
            if let Some((parent, key)) = pointer.rsplit_once('/')
                && let Some(Value::Object(map)) = body.pointer_mut(parent)
            {
                map.remove(&key.replace("~1", "/").replace("~0", "~"));
            }
            return body.to_string();
        }
        BodyMutation::Add(n, name, text) => {
            let pointer = pick(*n);
            match body.pointer_mut(&pointer) {
                Some(Value::Object(map)) => {
                    map.insert(name.clone(), Value::String(HOLE.to_owned()));
                }
                _ => {
                    body.as_object_mut()
                        .unwrap()
                        .insert(name.clone(), Value::String(HOLE.to_owned()));
                }
            }
            text.clone()
        }
    };
    body.to_string().replacen(&hole, &text, 1)
}

/// Header values a client can send: any bytes `http` takes in a header value.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80).prop_filter_map("not a header value", |bytes| {
            HeaderValue::from_bytes(&bytes).ok()
        }),
        "[ -~]{0,200}".prop_map(|s| HeaderValue::from_str(&s).unwrap()),
        prop::sample::select(vec![
            "*",
            "\"1\"",
            "\"0\"",
            "W/\"1\"",
            "\"18446744073709551616\"",
            "\"1\", \"2\"",
            "",
            "application/json",
            "application/json; charset=utf-8",
            "application/x+json",
            "text/plain",
            "application/+json",
            "multipart/form-data; boundary=x",
            "00000000-0000-0000-0000-000000000000",
            "0",
            "999999999999",
        ])
        .prop_map(HeaderValue::from_static),
    ]
}

/// The headers the API reads, and a few it does not, with random values (sometimes twice).
fn headers() -> impl Strategy<Value = Vec<(HeaderName, HeaderValue)>> {
    let name = prop::sample::select(vec![
        header::CONTENT_TYPE,
        header::IF_MATCH,
        HeaderName::from_static("idempotency-key"),
        HeaderName::from_static("x-correlation-id"),
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::ACCEPT,
        header::TRANSFER_ENCODING,
    ]);
    prop::collection::vec((name, header_value()), 0..4)
}

/// A request body: mostly a mutated valid body, else arbitrary bytes or an oversized one.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (valid_create_body(), body_mutation()).prop_map(|(body, m)| mutate(body, &m).into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..512),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => (any::<u8>(), 0..4usize).prop_map(|(byte, extra)| vec![byte; MAX_BODY_BYTES + extra]),
    ]
}

fn post(
    path: &str,
    body: Vec<u8>,
    headers: &[(HeaderName, HeaderValue)],
    json: bool,
) -> Request<Body> {
    let mut request = Request::post(path);
    if json {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.body(Body::from(body)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Properties

/// A fresh API (and its order) every [`ROTATE_EVERY`] cases: the create-heavy properties
/// count the whole event log around each request, which would grow without bound in a long
/// run.
struct RotatingApi<'a> {
    rt: &'a tokio::runtime::Runtime,
    current: std::cell::RefCell<(TestApi, OrderId, u32)>,
}

const ROTATE_EVERY: u32 = 200;

impl<'a> RotatingApi<'a> {
    fn new(rt: &'a tokio::runtime::Runtime) -> Self {
        Self {
            rt,
            current: std::cell::RefCell::new(Self::fresh(rt)),
        }
    }

    fn fresh(rt: &tokio::runtime::Runtime) -> (TestApi, OrderId, u32) {
        let api = TestApi::sqlite();
        let order = rt.block_on(api.create());
        (api, order, 0)
    }

    /// Runs `case` on the current API and its order.
    fn run(
        &self,
        case: impl AsyncFnOnce(&TestApi, OrderId) -> Result<(), TestCaseError>,
    ) -> Result<(), TestCaseError> {
        let mut current = self.current.borrow_mut();
        if current.2 >= ROTATE_EVERY {
            *current = Self::fresh(self.rt);
        }
        current.2 += 1;
        let (api, order, _) = &*current;
        self.rt.block_on(case(api, *order))
    }
}

#[test]
fn fuzz_create_bodies() {
    let rt = runtime();
    let apis = RotatingApi::new(&rt);
    let strategy = (
        valid_create_body(),
        prop::option::weighted(0.9, body_mutation()),
    );
    run_fuzz("http create body", strategy, |(body, mutation)| {
        apis.run(async move |api, _| {
            let mutated = mutation.is_some();
            let text = match &mutation {
                Some(mutation) => mutate(body, mutation),
                None => body.to_string(),
            };
            let response = send_checked(api, post("/orders", text.into_bytes(), &[], true)).await?;
            if !mutated {
                prop_assert_eq!(response.status.as_u16(), 201, "{}", response.body);
            }
            Ok(())
        })
    });
}

#[test]
fn fuzz_command_bodies_and_headers() {
    let rt = runtime();
    let apis = RotatingApi::new(&rt);
    let path = prop::sample::select(vec!["/orders", "confirm", "cancel", "ship"]);
    let strategy = (path, body_bytes(), headers(), any::<bool>());
    run_fuzz(
        "http command body+headers",
        strategy,
        |(path, body, headers, json)| {
            apis.run(async move |api, existing| {
                let path = match path {
                    "/orders" => path.to_owned(),
                    action => format!("/orders/{existing}/{action}"),
                };
                send_checked(api, post(&path, body, &headers, json)).await?;
                Ok(())
            })
        },
    );
}

/// A path segment: route words, ids, and random text percent-encoded or raw where the URI
/// allows it.
fn segment(existing: String) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "orders",
            "confirm",
            "cancel",
            "ship",
            "events",
            "",
            ".",
            "..",
            "%00",
            "%2F",
            "%ZZ",
            "%",
            "ORDERS",
            "00000000-0000-0000-0000-000000000000",
            "%F0%9F%92%A9",
            "a;b=c",
        ])
        .prop_map(str::to_owned),
        Just(existing.clone()),
        Just(existing.to_uppercase()),
        Just(format!("{{{existing}}}")),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        any::<String>().prop_map(|s| percent_encode_all(s.as_bytes())),
        "[!$&'()*+,;=:@A-Za-z0-9._~%-]{0,40}",
    ]
}

fn percent_encode_all(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
                char::from(*b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::HEAD,
            Method::OPTIONS,
            Method::TRACE,
        ]),
        "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

#[test]
fn fuzz_paths_and_methods() {
    let rt = runtime();
    let api = TestApi::sqlite();
    let existing = rt.block_on(api.create()).to_string();
    let strategy = (
        method(),
        prop::collection::vec(segment(existing), 0..5),
        prop::option::of(body_bytes()),
    );
    run_fuzz("http path+method", strategy, |(method, segments, body)| {
        rt.block_on(async {
            let path = format!("/{}", segments.join("/"));
            let Ok(request) = Request::builder()
                .method(method)
                .uri(&path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.unwrap_or_default()))
            else {
                // Not a URI the HTTP layer could have parsed: never reaches the router.
                return Ok(());
            };
            send_checked(&api, request).await?;
            Ok(())
        })
    });
}

/// A query parameter: the names the API knows and random ones, with values of any kind,
/// percent-encoded.
fn query_pair() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "customerId",
            "status",
            "limit",
            "cursor",
            "minVersion",
            "atVersion",
            "",
            "CUSTOMERID",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "PENDING",
            "CONFIRMED",
            "SHIPPED",
            "CANCELLED",
            "pending",
            "customer-1",
            "1",
            "0",
            "100",
            "101",
            "-1",
            "+1",
            "1.0",
            "18446744073709551615",
            "18446744073709551616",
            "1e3",
            "",
        ])
        .prop_map(str::to_owned),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<String>(),
    ];
    (name, value, any::<bool>()).prop_map(|(name, value, with_equals)| {
        let name = percent_encode_all(name.as_bytes());
        if with_equals {
            format!("{name}={}", percent_encode_all(value.as_bytes()))
        } else {
            name
        }
    })
}

/// A query string: encoded pairs, or raw characters a URI allows (stray `%`, `+`, `;`, `&&`).
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(query_pair(), 0..5).prop_map(|pairs| pairs.join("&")),
        1 => "[!$&'()*+,;=:@/?A-Za-z0-9._~%-]{0,80}",
    ]
}

#[test]
fn fuzz_query_strings() {
    let rt = runtime();
    let api = TestApi::sqlite();
    let existing = rt.block_on(api.create()).to_string();
    let path = prop::sample::select(vec![
        "/orders".to_owned(),
        format!("/orders/{existing}"),
        format!("/orders/{existing}/events"),
    ]);
    run_fuzz("http query", (path, query()), |(path, query)| {
        rt.block_on(async {
            let Ok(request) = Request::get(format!("{path}?{query}")).body(Body::empty()) else {
                return Ok(());
            };
            send_checked(&api, request).await?;
            Ok(())
        })
    });
}

/// A change to a valid cursor, or a cursor made from nothing.
#[derive(Debug, Clone)]
enum CursorMutation {
    Valid,
    FlipBit(usize, u8),
    Truncate(usize),
    Append(String),
    ReplaceChar(usize, char),
    Base64Of(Vec<u8>),
    Junk(String),
    OtherListing,
}

fn cursor_mutation() -> impl Strategy<Value = CursorMutation> {
    prop_oneof![
        Just(CursorMutation::Valid),
        (any::<usize>(), 0..8u8).prop_map(|(i, bit)| CursorMutation::FlipBit(i, bit)),
        any::<usize>().prop_map(CursorMutation::Truncate),
        "[A-Za-z0-9_=+/-]{1,8}".prop_map(CursorMutation::Append),
        (any::<usize>(), prop::char::any()).prop_map(|(i, c)| CursorMutation::ReplaceChar(i, c)),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(CursorMutation::Base64Of),
        any::<String>().prop_map(CursorMutation::Junk),
        Just(CursorMutation::OtherListing),
    ]
}

#[test]
fn fuzz_cursors() {
    let rt = runtime();
    let api = TestApi::sqlite();
    let (cursor, other_listing) = rt.block_on(async {
        for _ in 0..3 {
            let id = api.create_for("fuzz-customer").await;
            api.project(id).await;
        }
        for _ in 0..2 {
            let id = api.create_for("other-customer").await;
            api.project(id).await;
        }
        let page = |customer: &'static str| {
            let api = &api;
            async move {
                let page = api
                    .get(&format!("/orders?customerId={customer}&limit=1"))
                    .await;
                page.body["nextCursor"]
                    .as_str()
                    .expect("a next page")
                    .to_owned()
            }
        };
        (page("fuzz-customer").await, page("other-customer").await)
    });
    run_fuzz("http cursor", cursor_mutation(), |mutation| {
        rt.block_on(async {
            let sent = match &mutation {
                CursorMutation::Valid => cursor.clone(),
                CursorMutation::FlipBit(i, bit) => {
                    let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
                    let len = bytes.len();
                    bytes[i % len] ^= 1 << bit;
                    URL_SAFE_NO_PAD.encode(bytes)
                }
                CursorMutation::Truncate(n) => cursor[..n % cursor.len()].to_owned(),
                CursorMutation::Append(tail) => format!("{cursor}{tail}"),
                CursorMutation::ReplaceChar(i, c) => {
                    let mut chars: Vec<char> = cursor.chars().collect();
                    let len = chars.len();
                    chars[i % len] = *c;
                    chars.into_iter().collect()
                }
                CursorMutation::Base64Of(bytes) => URL_SAFE_NO_PAD.encode(bytes),
                CursorMutation::Junk(junk) => junk.clone(),
                CursorMutation::OtherListing => other_listing.clone(),
            };
            let path = format!(
                "/orders?customerId=fuzz-customer&limit=1&cursor={}",
                percent_encode_all(sent.as_bytes())
            );
            let response =
                send_checked(&api, Request::get(path).body(Body::empty()).unwrap()).await?;
            if sent == cursor {
                prop_assert_eq!(response.status.as_u16(), 200, "{}", response.body);
                prop_assert_eq!(response.body["items"].as_array().map(Vec::len), Some(1));
            } else {
                prop_assert_eq!(response.status.as_u16(), 400, "{}", response.body);
                let fields: Vec<&str> = response.body["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["field"].as_str())
                    .collect();
                prop_assert_eq!(fields, vec!["cursor"]);
            }
            Ok(())
        })
    });
}
