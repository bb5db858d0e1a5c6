//! The OpenAPI document: the committed copy is current, it documents every route the router
//! serves, and its request schemas accept exactly what the parsers accept.

use std::path::PathBuf;

use axum::http::Method;
use jsonschema::Validator;
use orders_domain::{CancelReason, CustomerId, Items, Quantity, Sku, UnitPrice};
use serde_json::{Value, json};

use super::{TestApi, create_body};
use crate::http::Api;
use crate::http::extract::{MAX_BODY_BYTES, cancel_reason, create_order, no_fields};
use crate::http::openapi::{document, document_for, document_json};
use crate::http::problem::ProblemType;
use crate::http::routes::{DEFAULT_LIMIT, MAX_LIMIT};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

fn doc() -> Value {
    serde_json::to_value(document()).unwrap()
}

#[test]
fn openapi_document_matches_docs_openapi_json() {
    let path = committed_path();
    let generated = document_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        committed == generated,
        "docs/openapi.json differs from the document the code generates. Regenerate it with\n  \
         UPDATE_OPENAPI=1 cargo test -p orders-handlers openapi_document_matches\n\
         and commit it."
    );
}

#[test]
fn the_document_is_openapi_3_1_with_every_route() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut operations: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| k.as_str() != "parameters")
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    operations.sort();
    assert_eq!(
        operations,
        [
            "GET /orders",
            "GET /orders/{id}",
            "GET /orders/{id}/events",
            "POST /orders",
            "POST /orders/{id}/cancel",
            "POST /orders/{id}/confirm",
            "POST /orders/{id}/ship",
        ]
    );
    // Every error response is a problem.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.as_str() >= "400" {
                    assert_eq!(
                        response["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}

/// Each documented operation is served: a request reaches its handler (an empty body or an
/// unknown id gets a problem from the handler, never the router's 404 `not-found` or 405).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let api = TestApi::new();
    let id = api.create().await;
    let doc = doc();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let path = template.replace("{id}", &id.to_string());
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = api
                .send(
                    super::request(method.clone(), &path)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await;
            assert_ne!(
                response.body["type"], "urn:orders:problem:not-found",
                "{method} {path}"
            );
            assert_ne!(response.status.as_u16(), 405, "{method} {path}");
        }
    }
}

/// Every `$ref` of each API's document (a Lambda function serves one) resolves in it.
#[test]
fn every_reference_resolves() {
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(values) => values.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    for api in [Api::Both, Api::Commands, Api::Queries] {
        let doc = serde_json::to_value(document_for(api)).unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(
                doc.pointer(pointer).is_some(),
                "{api:?}: {r} does not resolve"
            );
        }
    }
}

#[test]
fn the_problem_types_are_the_documented_ones() {
    let doc = doc();
    let documented: Vec<&str> = doc["components"]["schemas"]["ProblemTypeUri"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut kinds: Vec<String> = ProblemType::ALL.iter().map(|k| k.uri()).collect();
    kinds.sort();
    assert_eq!(documented, kinds);
}

/// The document's `OrderStatus` mirrors the domain's enum (the schema types are written for
/// the document): a status added to the domain must be documented too.
#[test]
fn the_order_statuses_are_the_domain_ones() {
    let doc = doc();
    let documented: Vec<&str> = doc["components"]["schemas"]["OrderStatus"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let domain: Vec<&str> = orders_domain::OrderStatus::ALL
        .iter()
        .map(|status| status.as_str())
        .collect();
    assert_eq!(documented, domain);
}

/// The validator of one component schema.
fn schema(doc: &Value, name: &str) -> Validator {
    let mut root = json!({"$ref": format!("#/components/schemas/{name}")});
    root["components"] = doc["components"].clone();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap()
}

/// Request bodies at and across every documented limit: the schema and the parser agree on
/// each (DESIGN §2's limits are the schema's).
#[test]
fn request_schemas_accept_what_the_parsers_accept() {
    let doc = doc();
    let create = schema(&doc, "CreateOrderRequest");
    let line = |sku: Value, quantity: Value, price: Value| json!({"sku": sku, "quantity": quantity, "unitPrice": price});
    let order = |customer: Value, currency: Value, items: Vec<Value>| json!({"customerId": customer, "currency": currency, "items": items});
    let ok_line = line(json!("SKU-1"), json!(1), json!(0));
    let example = doc["components"]["schemas"]["CreateOrderRequest"]["example"].clone();
    let creates = [
        example,
        create_body("customer-1"),
        order(json!("c"), json!("EUR"), vec![ok_line.clone()]),
        order(
            json!("é".repeat(CustomerId::MAX_CHARS)),
            json!("EUR"),
            vec![ok_line.clone()],
        ),
        order(
            json!("é".repeat(CustomerId::MAX_CHARS + 1)),
            json!("EUR"),
            vec![ok_line.clone()],
        ),
        order(json!(""), json!("EUR"), vec![ok_line.clone()]),
        order(json!("c"), json!("eur"), vec![ok_line.clone()]),
        order(json!("c"), json!("EURO"), vec![ok_line.clone()]),
        order(json!("c"), json!(1), vec![ok_line.clone()]),
        order(json!("c"), json!("EUR"), vec![]),
        order(
            json!("c"),
            json!("EUR"),
            vec![ok_line.clone(); Items::MAX_LINES],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![ok_line.clone(); Items::MAX_LINES + 1],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![line(json!("a".repeat(Sku::MAX_CHARS)), json!(1), json!(0))],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![line(
                json!("a".repeat(Sku::MAX_CHARS + 1)),
                json!(1),
                json!(0),
            )],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![line(json!("a b"), json!(1), json!(0))],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![line(
                json!("A.b_c-9"),
                json!(Quantity::MAX),
                json!(UnitPrice::MAX),
            )],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![line(json!("A"), json!(Quantity::MAX + 1), json!(0))],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![line(json!("A"), json!(0), json!(0))],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![line(json!("A"), json!(1), json!(UnitPrice::MAX + 1))],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![line(json!("A"), json!(1), json!(-1))],
        ),
        order(
            json!("c"),
            json!("EUR"),
            vec![line(json!("A"), json!(1.5), json!(0))],
        ),
        json!({"customerId": "c", "currency": "EUR", "items": [ok_line], "extra": 1}),
        json!({"customerId": "c", "currency": "EUR"}),
        json!({"customerId": "c", "currency": "EUR", "items": [{"sku": "A", "quantity": 1}]}),
        json!({"customerId": "c", "currency": "EUR", "items": [{"sku": "A", "quantity": 1, "unitPrice": 0, "x": 1}]}),
        json!([]),
    ];
    for body in creates {
        assert_eq!(
            create.is_valid(&body),
            create_order(Some(&body)).is_ok(),
            "schema and parser disagree on {body}"
        );
    }

    let cancel = schema(&doc, "CancelRequest");
    let cancel_example = doc["components"]["schemas"]["CancelRequest"]["example"].clone();
    for body in [
        cancel_example,
        json!({}),
        json!({"reason": null}),
        json!({"reason": ""}),
        json!({"reason": "é".repeat(CancelReason::MAX_CHARS)}),
        json!({"reason": "é".repeat(CancelReason::MAX_CHARS + 1)}),
        json!({"reason": 1}),
        json!({"reason": "x", "other": 1}),
        json!("x"),
    ] {
        assert_eq!(
            cancel.is_valid(&body),
            cancel_reason(Some(&body)).is_ok(),
            "schema and parser disagree on {body}"
        );
    }

    let empty = schema(&doc, "EmptyRequest");
    for body in [json!({}), json!({"x": 1}), json!([]), json!(null)] {
        assert_eq!(
            empty.is_valid(&body),
            no_fields(Some(&body)).is_ok(),
            "schema and parser disagree on {body}"
        );
    }
}

/// What the schemas cannot say (characters refused inside a length, a total that overflows)
/// is in their descriptions; the numeric limits the document states are the code's.
#[test]
fn documented_limits_are_the_codes() {
    let doc = doc();
    let list = &doc["paths"]["/orders"]["get"]["parameters"];
    let limit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["default"], json!(DEFAULT_LIMIT));
    assert_eq!(limit["schema"]["maximum"], json!(MAX_LIMIT));
    assert_eq!(limit["schema"]["minimum"], json!(1));
    let key = doc["paths"]["/orders"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap();
    assert_eq!(
        key["schema"]["maxLength"],
        json!(orders_store::IdempotencyKey::MAX_LEN)
    );
    assert!(
        doc["paths"]["/orders"]["post"]["responses"]["413"]["description"]
            .as_str()
            .unwrap()
            .contains(&format!("{} KiB", MAX_BODY_BYTES / 1024))
    );
}
