//! Hostile input: each request gets the right 4xx as problem+json, with field errors where
//! they apply, and nothing is written. On both backends.

use axum::body::Body;
use axum::http::{Method, header};
use serde_json::{Value, json};

use super::{TestApi, create_body, request};

struct Case {
    name: &'static str,
    /// `{id}` is replaced by an existing order's id.
    path: &'static str,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    /// The `errors[].field`s expected, in order (empty where the status says it all).
    fields: Vec<&'static str>,
}

fn json_case(name: &'static str, body: Value, fields: Vec<&'static str>) -> Case {
    Case {
        name,
        path: "/orders",
        content_type: Some("application/json"),
        headers: vec![],
        body: body.to_string().into_bytes(),
        status: 400,
        fields,
    }
}

fn raw_case(name: &'static str, body: &str, fields: Vec<&'static str>) -> Case {
    Case {
        body: body.as_bytes().to_vec(),
        ..json_case(name, Value::Null, fields)
    }
}

fn with_item(item: Value) -> Value {
    let mut body = create_body("c");
    body["items"] = json!([item]);
    body
}

fn cases() -> Vec<Case> {
    let line = json!({"sku": "S", "quantity": 1, "unitPrice": 1});
    vec![
        raw_case("malformed JSON", r#"{"customerId": "c", "#, vec!["body"]),
        raw_case("trailing garbage", r#"{"customerId": "c"} x"#, vec!["body"]),
        raw_case("a raw control character", "{\"customerId\": \"\u{0}\"}", vec!["body"]),
        Case {
            body: b"{\"customerId\": \"\xff\xfe\"}".to_vec(),
            ..raw_case("invalid UTF-8 bytes", "", vec!["body"])
        },
        raw_case("deeply nested", &format!("{}{}", "[".repeat(500), "]".repeat(500)), vec!["body"]),
        json_case("an array body", json!([create_body("c")]), vec!["body"]),
        json_case("a null body", Value::Null, vec!["body"]),
        json_case("a string body", json!("order"), vec!["body"]),
        json_case(
            "wrong types",
            json!({"customerId": 5, "currency": ["EUR"], "items": {"sku": "S"}}),
            vec!["customerId", "currency", "items"],
        ),
        json_case("missing fields", json!({}), vec!["customerId", "currency", "items"]),
        json_case(
            "an unknown field",
            json!({"customerId": "c", "currency": "EUR", "items": [line], "discount": 5}),
            vec!["discount"],
        ),
        json_case(
            "an unknown line field",
            with_item(json!({"sku": "S", "quantity": 1, "unitPrice": 1, "note": "x"})),
            vec!["items[0].note"],
        ),
        json_case("empty items", json!({"customerId": "c", "currency": "EUR", "items": []}), vec!["items"]),
        json_case(
            "101 items",
            json!({"customerId": "c", "currency": "EUR", "items": vec![line.clone(); 101]}),
            vec!["items"],
        ),
        json_case(
            "quantity 0",
            with_item(json!({"sku": "S", "quantity": 0, "unitPrice": 1})),
            vec!["items[0].quantity"],
        ),
        json_case(
            "quantity 10001",
            with_item(json!({"sku": "S", "quantity": 10001, "unitPrice": 1})),
            vec!["items[0].quantity"],
        ),
        json_case(
            "a fractional quantity",
            with_item(json!({"sku": "S", "quantity": 1.5, "unitPrice": 1})),
            vec!["items[0].quantity"],
        ),
        json_case(
            "a quantity as a string",
            with_item(json!({"sku": "S", "quantity": "1", "unitPrice": 1})),
            vec!["items[0].quantity"],
        ),
        json_case(
            "a negative price",
            with_item(json!({"sku": "S", "quantity": 1, "unitPrice": -1})),
            vec!["items[0].unitPrice"],
        ),
        raw_case(
            "a number beyond u64",
            r#"{"customerId": "c", "currency": "EUR", "items": [{"sku": "S", "quantity": 18446744073709551616, "unitPrice": 1}]}"#,
            vec!["items[0].quantity"],
        ),
        raw_case(
            "a price of 1e30",
            r#"{"customerId": "c", "currency": "EUR", "items": [{"sku": "S", "quantity": 1, "unitPrice": 1e30}]}"#,
            vec!["items[0].unitPrice"],
        ),
        json_case(
            "a bad currency",
            json!({"customerId": "c", "currency": "eur", "items": [line]}),
            vec!["currency"],
        ),
        json_case(
            "a bad SKU",
            with_item(json!({"sku": "a b/c", "quantity": 1, "unitPrice": 1})),
            vec!["items[0].sku"],
        ),
        json_case(
            "a control character in the customer id",
            json!({"customerId": "a\u{7}b", "currency": "EUR", "items": [line]}),
            vec!["customerId"],
        ),
        raw_case(
            "a customer id named twice",
            r#"{"customerId": "a", "currency": "EUR", "items": [{"sku": "S", "quantity": 1, "unitPrice": 1}], "customerId": "b"}"#,
            vec!["customerId"],
        ),
        raw_case(
            "a SKU named twice in a line",
            r#"{"customerId": "c", "currency": "EUR", "items": [{"sku": "S", "quantity": 1, "unitPrice": 1, "sku": "T"}]}"#,
            vec!["items[0].sku"],
        ),
        json_case(
            "a right-to-left override in the customer id",
            json!({"customerId": "abc\u{202E}fed", "currency": "EUR", "items": [line]}),
            vec!["customerId"],
        ),
        json_case(
            "a zero-width space in the customer id",
            json!({"customerId": "c\u{200B}1", "currency": "EUR", "items": [line]}),
            vec!["customerId"],
        ),
        Case {
            path: "/orders/{id}/cancel",
            ..raw_case("a reason named twice", r#"{"reason": "a", "reason": "b"}"#, vec!["reason"])
        },
        Case {
            path: "/orders/{id}/cancel",
            ..json_case("a NUL in the reason", json!({"reason": "a\u{0}b"}), vec!["reason"])
        },
        Case {
            path: "/orders/{id}/cancel",
            ..json_case("an ESC in the reason", json!({"reason": "\u{1B}[2Jgone"}), vec!["reason"])
        },
        Case {
            path: "/orders/{id}/cancel",
            ..json_case(
                "a right-to-left override in the reason",
                json!({"reason": "late \u{202E}gnipmuh"}),
                vec!["reason"],
            )
        },
        Case {
            path: "/orders/{id}/cancel",
            ..json_case("a zero-width space in the reason", json!({"reason": "la\u{200B}te"}), vec!["reason"])
        },
        json_case(
            "a 129-character customer id",
            json!({"customerId": "c".repeat(129), "currency": "EUR", "items": [line]}),
            vec!["customerId"],
        ),
        json_case(
            "every error at once",
            json!({"customerId": "", "currency": "E", "items": [
                line,
                {"sku": "", "quantity": 0, "unitPrice": -5},
                {"sku": "ok", "quantity": 1, "unitPrice": 1, "x": 1},
                7
            ]}),
            vec![
                "customerId",
                "currency",
                "items[1].sku",
                "items[1].quantity",
                "items[1].unitPrice",
                "items[2].x",
                "items[3]",
            ],
        ),
        Case {
            status: 413,
            fields: vec![],
            ..raw_case(
                "a 70 KB body",
                &json!({"customerId": "c", "currency": "EUR", "items": [line], "pad": "x".repeat(70_000)}).to_string(),
                vec![],
            )
        },
        Case {
            content_type: Some("text/plain"),
            status: 415,
            ..json_case("text/plain", create_body("c"), vec![])
        },
        Case {
            content_type: None,
            status: 415,
            ..json_case("no content type", create_body("c"), vec![])
        },
        Case {
            content_type: Some("application/x-www-form-urlencoded"),
            status: 415,
            body: b"customerId=c&currency=EUR".to_vec(),
            ..json_case("a form", Value::Null, vec![])
        },
        json_case("an empty JSON body on create", Value::Null, vec!["body"]).with_body(b""),
        Case {
            headers: vec![("idempotency-key", "k".repeat(256))],
            ..json_case("an overlong Idempotency-Key", create_body("c"), vec!["Idempotency-Key"])
        },
        Case {
            headers: vec![("idempotency-key", "tab\there".to_owned())],
            ..json_case("a non-printable Idempotency-Key", create_body("c"), vec!["Idempotency-Key"])
        },
        Case {
            headers: vec![("if-match", "1".to_owned())],
            path: "/orders/{id}/confirm",
            ..json_case("an unquoted If-Match", json!({}), vec!["If-Match"])
        },
        Case {
            path: "/orders/{id}/confirm",
            ..json_case("confirm with a field", json!({"force": true}), vec!["force"])
        },
        Case {
            path: "/orders/{id}/ship",
            ..json_case("ship with an array", json!([]), vec!["body"])
        },
        Case {
            path: "/orders/{id}/cancel",
            ..json_case(
                "an overlong reason",
                json!({"reason": "r".repeat(501)}),
                vec!["reason"],
            )
        },
        Case {
            path: "/orders/{id}/cancel",
            ..json_case("a numeric reason", json!({"reason": 5}), vec!["reason"])
        },
        Case {
            path: "/orders/not-a-uuid/cancel",
            status: 404,
            ..json_case("a non-UUID id", json!({}), vec![])
        },
        Case {
            path: "/orders/{id}/cancel/now",
            status: 404,
            ..json_case("an unknown route", json!({}), vec![])
        },
    ]
}

impl Case {
    fn with_body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_problem_and_write_nothing_on_sqlite() {
    hostile_requests_get_a_4xx_problem_and_write_nothing(TestApi::sqlite()).await;
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_problem_and_write_nothing_on_dynamodb() {
    hostile_requests_get_a_4xx_problem_and_write_nothing(TestApi::dynamodb().await).await;
}

async fn hostile_requests_get_a_4xx_problem_and_write_nothing(api: TestApi) {
    let id = api.create().await;
    let events = api.event_count().await;
    assert_eq!(events, 1, "the counter sees the order's OrderCreated");
    let cases = cases();
    assert!(cases.len() >= 15);

    for case in cases {
        let path = case.path.replace("{id}", &id.to_string());
        let mut builder = request(Method::POST, &path);
        if let Some(content_type) = case.content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        for (name, value) in &case.headers {
            builder = builder.header(*name, value);
        }
        let response = api.send(builder.body(Body::from(case.body)).unwrap()).await;
        assert_eq!(
            response.status.as_u16(),
            case.status,
            "{}: {}",
            case.name,
            response.body
        );
        let fields = response.assert_problem(case.status);
        assert_eq!(fields, case.fields, "{}: {}", case.name, response.body);
        assert_eq!(api.event_count().await, events, "{} wrote", case.name);
    }

    // The order those requests aimed at is untouched.
    let history = api.history(id).await;
    assert_eq!(history.len(), 1);
}
