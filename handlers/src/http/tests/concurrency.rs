//! Races, on a multi-threaded runtime against the real store, on both backends: no lost or
//! duplicated events.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Method, StatusCode, header};

use super::{TestApi, create_body, request, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_cancels_let_exactly_one_through_on_sqlite() {
    concurrent_conditional_cancels_let_exactly_one_through(TestApi::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_cancels_let_exactly_one_through_on_dynamodb() {
    concurrent_conditional_cancels_let_exactly_one_through(TestApi::dynamodb().await).await;
}

async fn concurrent_conditional_cancels_let_exactly_one_through(api: TestApi) {
    let id = api.create().await;

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let router = api.router.clone();
            let path = format!("/orders/{id}/cancel");
            tokio::spawn(async move {
                let request = request(Method::POST, &path)
                    .header(header::IF_MATCH, "\"1\"")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(format!("{{\"reason\": \"racer {i}\"}}")))
                    .unwrap();
                send(router, request).await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        let response = task.await.unwrap();
        match response.status.as_u16() {
            200 => ok += 1,
            409 | 412 => {
                response.assert_problem(response.status.as_u16());
                assert_eq!(response.body["currentVersion"], 2);
            }
            other => panic!("unexpected {other}: {}", response.body),
        }
    }
    assert_eq!(ok, 1, "exactly one cancel wins");
    let history = api.history(id).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].event_type, "OrderCancelled");
    let versions: Vec<u64> = history.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 2], "versions are contiguous");
    let event_ids: HashSet<_> = history.iter().map(|e| e.event_id).collect();
    assert_eq!(event_ids.len(), history.len(), "no duplicate eventId");
    assert_eq!(api.event_count().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_idempotency_key_create_one_order_on_sqlite() {
    concurrent_creates_with_one_idempotency_key_create_one_order(TestApi::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_idempotency_key_create_one_order_on_dynamodb() {
    concurrent_creates_with_one_idempotency_key_create_one_order(TestApi::dynamodb().await).await;
}

async fn concurrent_creates_with_one_idempotency_key_create_one_order(api: TestApi) {
    let body = create_body("c").to_string();

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let router = api.router.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let request = request(Method::POST, "/orders")
                    .header("idempotency-key", "one-order-please")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body))
                    .unwrap();
                send(router, request).await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut replayed = 0;
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        assert_eq!(
            response.header("location"),
            Some(format!("/orders/{}", response.order_id()).as_str())
        );
        ids.insert(response.order_id());
        if response.header("idempotent-replayed") == Some("true") {
            replayed += 1;
        }
    }
    assert_eq!(ids.len(), 1, "every response names the same order");
    assert_eq!(replayed, 15, "all but the first are replays");
    let feed = api.event_count().await;
    assert_eq!(feed, 1, "exactly one OrderCreated");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(api.history(id).await[0].event_type, "OrderCreated");
}
