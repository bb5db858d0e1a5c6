//! DESIGN §5: the query API. No projector runs here, so the read model holds only what a
//! test puts in it — exactly the situation `minVersion` exists for.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use orders_domain::OrderId;
use orders_store::{AppendError, AppendRequest, EventStore, OrderView, StoreError, StoredEvent};
use uuid::Uuid;

use super::{Ports, TestApi, send, test_config};
use crate::app::Stores;
use crate::http::{Api, router};

#[tokio::test]
async fn get_serves_the_read_model_with_an_etag() {
    let api = TestApi::new();
    let id = api.create().await;
    // Nothing projected yet: the read model does not know the order.
    api.get(&format!("/orders/{id}")).await.assert_problem(404);

    let view = api.project(id).await;
    let response = api.get(&format!("/orders/{id}")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("etag"), Some("\"1\""));
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body, serde_json::to_value(&view).unwrap());

    api.get(&format!("/orders/{}", Uuid::now_v7()))
        .await
        .assert_problem(404);
    api.get("/orders/not-a-uuid").await.assert_problem(404);
}

#[tokio::test]
async fn min_version_reads_your_writes_from_the_event_store() {
    let api = TestApi::new();
    let created = api.post("/orders", super::create_body("c"), &[]).await;
    let id = created.order_id();
    let version = created.header("etag").unwrap().trim_matches('"').to_owned();

    // The read model is empty, yet the client sees its own write.
    let fresh = api.get(&format!("/orders/{id}?minVersion={version}")).await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(fresh.header("etag"), Some("\"1\""));
    assert_eq!(fresh.body, created.body);

    // The read model lags at version 1 while the order is at 2.
    api.project(id).await;
    api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
    let lagging = api.get(&format!("/orders/{id}")).await;
    assert_eq!(lagging.header("etag"), Some("\"1\""));
    let caught_up = api.get(&format!("/orders/{id}?minVersion=2")).await;
    assert_eq!(caught_up.header("etag"), Some("\"2\""));
    assert_eq!(caught_up.body["status"], "CONFIRMED");

    // When the read model is recent enough it is what answers: mark its copy to tell.
    let mut marked: OrderView = caught_up_view(&api, id).await;
    marked.order.customer_id = orders_domain::CustomerId::parse("from-read-model").unwrap();
    api.store.put(&marked, Some(1)).await.unwrap();
    let served = api.get(&format!("/orders/{id}?minVersion=2")).await;
    assert_eq!(served.body["customerId"], "from-read-model");

    // Asking beyond the history returns the latest state; the ETag says how far it got.
    let beyond = api.get(&format!("/orders/{id}?minVersion=9")).await;
    assert_eq!(beyond.status, StatusCode::OK);
    assert_eq!(beyond.header("etag"), Some("\"2\""));
    assert_eq!(beyond.body["customerId"], "c");

    api.get(&format!("/orders/{}?minVersion=1", Uuid::now_v7()))
        .await
        .assert_problem(404);
}

async fn caught_up_view(api: &TestApi, id: OrderId) -> OrderView {
    let events = api.history(id).await;
    let state = orders_store::fold(Default::default(), &events).unwrap();
    OrderView::from_state(id, state).unwrap()
}

#[tokio::test]
async fn at_version_shows_the_order_as_it_was() {
    let api = TestApi::new();
    let id = api.create().await;
    api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
    api.post_empty(&format!("/orders/{id}/ship"), &[]).await;

    for (version, status) in [(1, "PENDING"), (2, "CONFIRMED"), (3, "SHIPPED")] {
        let response = api.get(&format!("/orders/{id}?atVersion={version}")).await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(
            response.header("etag"),
            Some(format!("\"{version}\"").as_str())
        );
        assert_eq!(response.body["status"], status);
        assert_eq!(response.body["version"], version);
    }
    api.get(&format!("/orders/{id}?atVersion=4"))
        .await
        .assert_problem(404);
    api.get(&format!("/orders/{}?atVersion=1", Uuid::now_v7()))
        .await
        .assert_problem(404);
}

/// The event store as a damaged table or a faulty adapter could serve it: every load of an
/// order misses its event 2.
struct LosesEventTwo(Arc<dyn Ports>);

#[async_trait]
impl EventStore for LosesEventTwo {
    async fn append(&self, request: AppendRequest) -> Result<(), AppendError> {
        self.0.append(request).await
    }

    async fn load(
        &self,
        order_id: OrderId,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = self.0.load(order_id, up_to).await?;
        events.retain(|event| event.version != 2);
        Ok(events)
    }
}

#[tokio::test]
async fn a_history_with_a_gap_is_an_internal_error_never_a_wrong_order() {
    // Given an order at version 3, served by an event store that has lost its event 2
    let api = TestApi::new();
    let id = api.create().await;
    api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
    api.post_empty(&format!("/orders/{id}/ship"), &[]).await;
    let stores = Stores {
        events: Arc::new(LosesEventTwo(api.store.clone())),
        idempotency: api.store.clone(),
        read_model: api.store.clone(),
    };
    let damaged = router(stores, test_config(), api.clock.clone(), Api::Both);
    let get = |query: &str| {
        let request = Request::get(format!("/orders/{id}?{query}"))
            .body(Body::empty())
            .unwrap();
        send(damaged.clone(), request)
    };

    // When a read folds across the gap, then it is a 500, not the order without event 2
    get("minVersion=3").await.assert_problem(500);
    get("atVersion=3").await.assert_problem(500);
    // and a command, which folds the same history, is refused the same way.
    let cancel = Request::post(format!("/orders/{id}/cancel"))
        .body(Body::empty())
        .unwrap();
    send(damaged.clone(), cancel).await.assert_problem(500);

    // A read that stops before the gap is whole, and served.
    let before_the_gap = get("atVersion=1").await;
    assert_eq!(before_the_gap.status, StatusCode::OK);
    assert_eq!(before_the_gap.body["status"], "PENDING");
}

#[tokio::test]
async fn version_parameters_are_validated() {
    let api = TestApi::new();
    let id = api.create().await;
    for (query, fields) in [
        ("atVersion=0", vec!["atVersion"]),
        ("minVersion=0", vec!["minVersion"]),
        ("atVersion=1.5", vec!["atVersion"]),
        ("minVersion=abc", vec!["minVersion"]),
        ("atVersion=-1", vec!["atVersion"]),
        ("atVersion=", vec!["atVersion"]),
        ("atVersion=99999999999999999999999", vec!["atVersion"]),
        ("atVersion=1&minVersion=1", vec!["atVersion"]),
        ("atVersion=1&atVersion=2", vec!["atVersion"]),
        ("version=1", vec!["version"]),
    ] {
        let response = api.get(&format!("/orders/{id}?{query}")).await;
        assert_eq!(response.assert_problem(400), fields, "{query}");
    }
}

#[tokio::test]
async fn events_lists_the_history_in_version_order() {
    let api = TestApi::new();
    let id = api.create().await;
    api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
    api.post(
        &format!("/orders/{id}/cancel"),
        serde_json::json!({"reason": "too slow"}),
        &[],
    )
    .await;

    let response = api.get(&format!("/orders/{id}/events")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["orderId"], id.to_string());
    let events = response.body["events"].as_array().unwrap();
    let types: Vec<_> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["OrderCreated", "OrderConfirmed", "OrderCancelled"]);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["version"], i + 1);
        assert_eq!(event["orderId"], id.to_string());
        assert_eq!(event["schemaVersion"], 1);
        assert!(event["eventId"].is_string());
        assert!(event["occurredAt"].is_string());
        assert_eq!(event["metadata"]["source"], "orders.test");
    }
    assert_eq!(events[2]["data"]["reason"], "too slow");
    assert_eq!(events[0]["data"]["total"], 1300);

    api.get(&format!("/orders/{}/events", Uuid::now_v7()))
        .await
        .assert_problem(404);
    api.get("/orders/xyz/events").await.assert_problem(404);
    assert_eq!(
        api.get(&format!("/orders/{id}/events?limit=1"))
            .await
            .assert_problem(400),
        ["limit"]
    );
}

/// Walks a listing to its end, checking every page's size.
async fn walk(api: &TestApi, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/orders?{query}&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let response = api.get(&path).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        let items = response.body["items"].as_array().unwrap();
        pages += 1;
        ids.extend(
            items
                .iter()
                .map(|i| i["orderId"].as_str().unwrap().to_owned()),
        );
        match &response.body["nextCursor"] {
            serde_json::Value::Null => break,
            serde_json::Value::String(next) => {
                assert_eq!(items.len(), limit, "only the last page is short");
                cursor = Some(next.clone());
            }
            other => panic!("nextCursor {other}"),
        }
        assert!(pages < 100, "the listing does not end");
    }
    ids
}

#[tokio::test]
async fn listings_page_through_without_duplicates_or_gaps() {
    let api = TestApi::new();
    let mut mine = Vec::new();
    for i in 0..8 {
        api.clock.advance(1000);
        let id = api.create_for("customer-a").await;
        if i % 3 == 0 {
            api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
        }
        api.project(id).await;
        mine.push(id.to_string());
        // Someone else's orders interleave.
        let other = api.create_for("customer-b").await;
        api.project(other).await;
    }

    let listed = walk(&api, "customerId=customer-a", 3).await;
    assert_eq!(listed.len(), 8);
    assert_eq!(
        listed.iter().collect::<HashSet<_>>().len(),
        8,
        "no duplicates"
    );
    // Newest first.
    let mut newest_first = mine.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);

    let pending = walk(&api, "status=PENDING", 4).await;
    let confirmed = walk(&api, "status=CONFIRMED", 2).await;
    assert_eq!(confirmed.len(), 3);
    assert_eq!(pending.len(), 13);
    let all: HashSet<_> = pending.iter().chain(&confirmed).collect();
    assert_eq!(all.len(), 16);

    // The default limit is 20 and an empty listing is a valid listing.
    let response = api.get("/orders?customerId=customer-b").await;
    assert_eq!(response.body["items"].as_array().unwrap().len(), 8);
    assert_eq!(response.body["nextCursor"], serde_json::Value::Null);
    let none = api.get("/orders?status=SHIPPED").await;
    assert_eq!(none.body["items"], serde_json::json!([]));
}

#[tokio::test]
async fn listing_parameters_and_cursors_are_validated() {
    let api = TestApi::new();
    for _ in 0..3 {
        let id = api.create_for("c").await;
        api.project(id).await;
    }
    let first = api.get("/orders?customerId=c&limit=1").await;
    let cursor = first.body["nextCursor"].as_str().unwrap().to_owned();
    assert_eq!(
        api.get(&format!("/orders?customerId=c&limit=1&cursor={cursor}"))
            .await
            .status,
        StatusCode::OK
    );

    // Change one character of the signed cursor.
    let mut tampered = cursor.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    for (query, fields) in [
        (format!("customerId=c&cursor={tampered}"), vec!["cursor"]),
        ("customerId=c&cursor=garbage!".to_owned(), vec!["cursor"]),
        // A cursor made for another listing.
        (format!("customerId=d&cursor={cursor}"), vec!["cursor"]),
        (format!("status=PENDING&cursor={cursor}"), vec!["cursor"]),
        ("customerId=c&limit=0".to_owned(), vec!["limit"]),
        ("customerId=c&limit=101".to_owned(), vec!["limit"]),
        ("customerId=c&limit=ten".to_owned(), vec!["limit"]),
        ("".to_owned(), vec!["customerId"]),
        ("limit=5".to_owned(), vec!["customerId"]),
        ("customerId=c&status=PENDING".to_owned(), vec!["status"]),
        ("status=pending".to_owned(), vec!["status"]),
        ("status=LOST".to_owned(), vec!["status"]),
        ("customerId=".to_owned(), vec!["customerId"]),
        ("customerId=c&customerId=d".to_owned(), vec!["customerId"]),
        ("customerId=c&sort=asc".to_owned(), vec!["sort"]),
    ] {
        let response = api.get(&format!("/orders?{query}")).await;
        assert_eq!(response.assert_problem(400), fields, "{query}");
    }
    let limits = api.get("/orders?customerId=c&limit=100").await;
    assert_eq!(limits.body["items"].as_array().unwrap().len(), 3);
}
