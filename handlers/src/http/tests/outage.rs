//! A DynamoDB endpoint that is down: the router over a real `DynamoStore` whose client points at
//! a closed local port. Every request that needs the store is a 503 problem+json with
//! `Retry-After`, within seconds (2 s connect timeout, bounded SDK retries). Nothing can be
//! written: there is no store to write to.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use orders_domain::OrderId;
use orders_store::dynamodb::{self, DynamoStore, DynamoTables};

use super::{TestResponse, create_body, send, test_config};
use crate::app::{Stores, SystemClock};
use crate::http::{Api, router};

/// A loopback URL on which nothing listens: a port the OS handed out, then closed.
fn closed_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[track_caller]
fn assert_unavailable(response: &TestResponse) {
    response.assert_problem(503);
    let retry_after = response
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", response.headers));
    let seconds: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not whole seconds: {retry_after:?}"));
    assert!(seconds >= 1, "Retry-After: {seconds}");
    assert!(response.body.get("errors").is_none(), "{}", response.body);
}

#[tokio::test]
async fn a_stopped_dynamodb_endpoint_is_503_with_retry_after_within_seconds() {
    let started = Instant::now();
    let store = DynamoStore::new(
        dynamodb::client(Some(&closed_endpoint())).await,
        DynamoTables::default(),
    );
    let router = router(
        Stores::shared(store),
        test_config(),
        std::sync::Arc::new(SystemClock),
        Api::Both,
    );

    let create = send(
        router.clone(),
        axum::http::Request::post("/orders")
            .header("content-type", "application/json")
            .header("idempotency-key", "during-the-outage")
            .body(create_body("c").to_string().into())
            .unwrap(),
    )
    .await;
    assert_unavailable(&create);
    assert_eq!(create.header("location"), None);
    assert!(create.body.get("orderId").is_none(), "{}", create.body);

    let plain_create = send(
        router.clone(),
        axum::http::Request::post("/orders")
            .header("content-type", "application/json")
            .body(create_body("c").to_string().into())
            .unwrap(),
    )
    .await;
    assert_unavailable(&plain_create);

    let id = OrderId::from_uuid(uuid::Uuid::now_v7());
    let get = send(
        router.clone(),
        axum::http::Request::get(format!("/orders/{id}"))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_unavailable(&get);
    assert_ne!(get.status, StatusCode::NOT_FOUND);

    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(20),
        "three requests to a dead endpoint took {elapsed:?}"
    );
}
