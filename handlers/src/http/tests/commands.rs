//! DESIGN §4: every success and error status of the command API.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use serde_json::json;
use tower::ServiceExt;
use uuid::Uuid;

use super::{Mode, SECRET_DETAIL, TestApi, create_body, request};
use crate::http::Api;

#[tokio::test]
async fn create_answers_201_with_location_etag_and_the_order() {
    let api = TestApi::new();
    let response = api
        .post(
            "/orders",
            create_body("customer-1"),
            &[("x-correlation-id", "corr-42")],
        )
        .await;

    assert_eq!(response.status, StatusCode::CREATED);
    let id = response.order_id();
    assert_eq!(
        Uuid::parse_str(&id.to_string()).unwrap().get_version_num(),
        7,
        "new ids are UUID v7"
    );
    assert_eq!(
        response.header("location"),
        Some(format!("/orders/{id}").as_str())
    );
    assert_eq!(response.header("etag"), Some("\"1\""));
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("x-correlation-id"), Some("corr-42"));
    assert_eq!(response.header("idempotent-replayed"), None);
    let body = &response.body;
    assert_eq!(body["version"], 1);
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["customerId"], "customer-1");
    assert_eq!(body["currency"], "EUR");
    assert_eq!(body["total"], 1300);
    assert_eq!(
        body["items"][1],
        json!({"sku": "SKU-2", "quantity": 1, "unitPrice": 1000})
    );
    assert_eq!(body["createdAt"], api.clock_now());

    let history = api.history(id).await;
    assert_eq!(history.len(), 1);
    let event = &history[0];
    assert_eq!(event.event_type, "OrderCreated");
    assert_eq!(event.version, 1);
    assert_eq!(event.event_id.get_version_num(), 7);
    assert_eq!(event.metadata.correlation_id, "corr-42");
    assert_eq!(event.metadata.source, "orders.test");
    assert_eq!(event.metadata.idempotency_key, None);
    assert!(Uuid::try_parse(&event.metadata.causation_id).is_ok());
}

impl TestApi {
    fn clock_now(&self) -> String {
        use crate::app::Clock;
        self.clock.now().to_string()
    }
}

#[tokio::test]
async fn a_missing_or_unusable_correlation_id_is_replaced_by_a_fresh_one() {
    let api = TestApi::new();
    for headers in [vec![], vec![("x-correlation-id", "x".repeat(129))]] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = api.post("/orders", create_body("c"), &headers).await;
        let echoed = response.header("x-correlation-id").unwrap();
        assert!(Uuid::try_parse(echoed).is_ok(), "{echoed}");
        let history = api.history(response.order_id()).await;
        assert_eq!(history[0].metadata.correlation_id, echoed);
    }
}

#[tokio::test]
async fn the_lifecycle_answers_200_with_the_new_version() {
    let api = TestApi::new();
    let id = api.create().await;

    let confirmed = api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(confirmed.header("etag"), Some("\"2\""));
    assert_eq!(confirmed.header("location"), None);
    assert_eq!(confirmed.body["status"], "CONFIRMED");

    let shipped = api
        .post(&format!("/orders/{id}/ship"), json!({}), &[])
        .await;
    assert_eq!(shipped.status, StatusCode::OK);
    assert_eq!(shipped.header("etag"), Some("\"3\""));
    assert_eq!(shipped.body["status"], "SHIPPED");

    let other = api.create().await;
    let cancelled = api
        .post(
            &format!("/orders/{other}/cancel"),
            json!({"reason": "changed my mind"}),
            &[],
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    assert_eq!(cancelled.body["cancelReason"], "changed my mind");
    assert_eq!(cancelled.header("etag"), Some("\"2\""));
}

#[tokio::test]
async fn a_no_op_answers_200_with_the_current_order_and_appends_nothing() {
    let api = TestApi::new();
    let id = api.create().await;
    api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
    let before = api.event_count().await;

    let again = api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.header("etag"), Some("\"2\""));
    assert_eq!(again.body["status"], "CONFIRMED");

    let other = api.create().await;
    api.post_empty(&format!("/orders/{other}/cancel"), &[])
        .await;
    let before_cancel = api.event_count().await;
    let cancel_again = api
        .post(
            &format!("/orders/{other}/cancel"),
            json!({"reason": "r"}),
            &[],
        )
        .await;
    assert_eq!(cancel_again.status, StatusCode::OK);
    assert_eq!(cancel_again.body["status"], "CANCELLED");
    assert_eq!(api.event_count().await, before_cancel);
    assert_eq!(before_cancel, before + 2);
}

#[tokio::test]
async fn refused_transitions_are_409_and_unknown_orders_404() {
    let api = TestApi::new();
    let id = api.create().await;

    let ship = api.post_empty(&format!("/orders/{id}/ship"), &[]).await;
    ship.assert_problem(409);
    assert_eq!(ship.body["type"], "urn:orders:problem:invalid-transition");
    assert_eq!(ship.body["detail"], "cannot ship an order that is PENDING");

    api.post_empty(&format!("/orders/{id}/cancel"), &[]).await;
    api.post_empty(&format!("/orders/{id}/confirm"), &[])
        .await
        .assert_problem(409);

    let unknown = Uuid::now_v7();
    let missing = api
        .post_empty(&format!("/orders/{unknown}/confirm"), &[])
        .await;
    missing.assert_problem(404);
    assert_eq!(missing.body["type"], "urn:orders:problem:order-not-found");
    // The id in the path is not a UUID at all.
    api.post_empty("/orders/12345/confirm", &[])
        .await
        .assert_problem(404);
    assert_eq!(api.event_count().await, 2);
}

#[tokio::test]
async fn losing_an_append_race_is_409_and_never_retried_silently() {
    let api = TestApi::new();
    let id = api.create().await;
    let key = [("idempotency-key", "confirm-race")];
    api.flaky().set(Mode::LoseRace);

    let lost = api.post_empty(&format!("/orders/{id}/confirm"), &key).await;
    lost.assert_problem(409);
    assert_eq!(
        lost.body["type"],
        "urn:orders:problem:concurrent-modification"
    );
    assert_eq!(lost.body["currentVersion"], 2);
    let history = api.history(id).await;
    let types: Vec<_> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["OrderCreated", "OrderCancelled"],
        "no confirm slipped in"
    );

    // The idempotency record went down with the lost append: a retry decides afresh.
    let retried = api.post_empty(&format!("/orders/{id}/confirm"), &key).await;
    retried.assert_problem(409);
    assert_eq!(
        retried.body["type"],
        "urn:orders:problem:invalid-transition"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_problems() {
    let api = TestApi::new();
    let id = api.create().await;
    for path in ["/", "/nope", "/orders/", &format!("/orders/{id}/refund")] {
        let response = api.post_empty(path, &[]).await;
        response.assert_problem(404);
        assert!(response.header("x-correlation-id").is_some());
    }
    for (method, path) in [
        (Method::DELETE, "/orders".to_owned()),
        (Method::PUT, format!("/orders/{id}")),
        (Method::GET, format!("/orders/{id}/confirm")),
    ] {
        let response = api
            .send(request(method, &path).body(Body::empty()).unwrap())
            .await;
        response.assert_problem(405);
        assert!(
            response.header("allow").is_some(),
            "405 names the allowed methods"
        );
    }
}

#[tokio::test]
async fn each_lambda_router_serves_only_its_half() {
    let commands = TestApi::serving(Api::Commands);
    let id = commands.create().await;
    commands
        .get(&format!("/orders/{id}/events"))
        .await
        .assert_problem(404);
    // GET on a command route: the path exists, the method does not.
    commands
        .get("/orders?status=PENDING")
        .await
        .assert_problem(405);

    let queries = TestApi::serving(Api::Queries);
    queries
        .post("/orders", create_body("c"), &[])
        .await
        .assert_problem(405);
    queries
        .post_empty(&format!("/orders/{id}/confirm"), &[])
        .await
        .assert_problem(404);
    assert_eq!(queries.event_count().await, 0);
}

#[tokio::test]
async fn if_match_makes_a_command_conditional() {
    let api = TestApi::new();
    let id = api.create().await;
    let confirm = format!("/orders/{id}/confirm");

    let stale = api.post_empty(&confirm, &[("if-match", "\"7\"")]).await;
    stale.assert_problem(412);
    assert_eq!(stale.body["currentVersion"], 1);

    let ok = api.post_empty(&confirm, &[("if-match", "\"1\"")]).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("etag"), Some("\"2\""));

    // Stale again: 412, not the no-op's 200, since the client has not seen version 2.
    api.post_empty(&confirm, &[("if-match", "\"1\"")])
        .await
        .assert_problem(412);
    let any = api.post_empty(&confirm, &[("if-match", "*")]).await;
    assert_eq!(any.status, StatusCode::OK);

    let fields = api
        .post_empty(&confirm, &[("if-match", "W/\"2\"")])
        .await
        .assert_problem(400);
    assert_eq!(fields, ["If-Match"]);

    // An unknown order stays a 404 whatever the precondition.
    api.post_empty(
        &format!("/orders/{}/confirm", Uuid::now_v7()),
        &[("if-match", "\"1\"")],
    )
    .await
    .assert_problem(404);
    // Creating: there is no current version to match.
    api.post("/orders", create_body("c"), &[("if-match", "*")])
        .await
        .assert_problem(412);
    assert_eq!(api.event_count().await, 2);
}

#[tokio::test]
async fn the_same_idempotency_key_and_request_replays_the_first_response() {
    let api = TestApi::new();
    let key = [("idempotency-key", "create-1")];
    let first = api.post("/orders", create_body("c"), &key).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let id = first.order_id();

    // The same request, keys in another order: same fingerprint.
    let reordered = json!({
        "items": create_body("c")["items"],
        "currency": "EUR",
        "customerId": "c",
    });
    let replay = api.post("/orders", reordered, &key).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.header("location"), first.header("location"));
    assert_eq!(replay.header("etag"), Some("\"1\""));
    assert_eq!(replay.body, first.body);
    assert_eq!(api.event_count().await, 1);
    assert_eq!(
        api.history(id).await[0].metadata.idempotency_key.as_deref(),
        Some("create-1")
    );

    // A confirm under its own key; the order moves on, and the replay still shows version 2.
    let confirm_key = [("idempotency-key", "confirm-1")];
    let confirm = format!("/orders/{id}/confirm");
    let confirmed = api.post_empty(&confirm, &confirm_key).await;
    assert_eq!(confirmed.status, StatusCode::OK);
    api.post_empty(&format!("/orders/{id}/ship"), &[]).await;
    let replayed = api.post_empty(&confirm, &confirm_key).await;
    assert_eq!(replayed.status, StatusCode::OK);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.header("etag"), Some("\"2\""));
    assert_eq!(replayed.body, confirmed.body);
    assert_eq!(replayed.body["status"], "CONFIRMED");

    // A no-op under a key records it too (with no events) and replays.
    let noop_key = [("idempotency-key", "noop-1")];
    let other = api.create().await;
    api.post_empty(&format!("/orders/{other}/cancel"), &[])
        .await;
    let events = api.event_count().await;
    let noop = api
        .post_empty(&format!("/orders/{other}/cancel"), &noop_key)
        .await;
    assert_eq!(noop.status, StatusCode::OK);
    assert_eq!(noop.header("idempotent-replayed"), None);
    let noop_again = api
        .post_empty(&format!("/orders/{other}/cancel"), &noop_key)
        .await;
    assert_eq!(noop_again.header("idempotent-replayed"), Some("true"));
    assert_eq!(noop_again.body, noop.body);
    assert_eq!(api.event_count().await, events);
}

#[tokio::test]
async fn a_cancel_without_a_reason_is_one_request_however_it_is_written() {
    let api = TestApi::new();
    let id = api.create().await;
    let cancel = format!("/orders/{id}/cancel");
    let key = [("idempotency-key", "cancel-1")];

    let first = api.post_empty(&cancel, &key).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let events = api.event_count().await;

    // No body, `{}` and `{"reason": null}` all say "cancel, no reason": each replays.
    for body in [None, Some(json!({})), Some(json!({"reason": null}))] {
        let replay = match &body {
            None => api.post_empty(&cancel, &key).await,
            Some(body) => api.post(&cancel, body.clone(), &key).await,
        };
        assert_eq!(replay.status, StatusCode::OK, "{body:?}: {}", replay.body);
        assert_eq!(
            replay.header("idempotent-replayed"),
            Some("true"),
            "{body:?}"
        );
        assert_eq!(replay.body, first.body, "{body:?}");
    }
    // A reason is a different request.
    api.post(&cancel, json!({"reason": "x"}), &key)
        .await
        .assert_problem(422);
    assert_eq!(api.event_count().await, events);

    // The other way round: first `{"reason": null}`, then no body.
    let other = api.create().await;
    let cancel_other = format!("/orders/{other}/cancel");
    let other_key = [("idempotency-key", "cancel-2")];
    let first = api
        .post(&cancel_other, json!({"reason": null}), &other_key)
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let replay = api.post_empty(&cancel_other, &other_key).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn the_same_reason_written_differently_replays_and_another_reason_is_422() {
    let api = TestApi::new();
    let id = api.create().await;
    let cancel = format!("/orders/{id}/cancel");
    let key = [("idempotency-key", "cancel-late")];

    let first = api.post(&cancel, json!({"reason": "late"}), &key).await;
    assert_eq!(first.status, StatusCode::OK);
    // The same reason, escaped and spaced differently.
    let request = request(Method::POST, &cancel)
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", "cancel-late")
        .body(Body::from(r#" { "reason" : "l\u0061te" } "#))
        .unwrap();
    let replay = api.send(request).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    for other in [json!({"reason": "Late"}), json!({"reason": null})] {
        api.post(&cancel, other, &key).await.assert_problem(422);
    }
    api.post_empty(&cancel, &key).await.assert_problem(422);
}

#[tokio::test]
async fn the_same_idempotency_key_with_a_different_request_is_422() {
    let api = TestApi::new();
    let key = [("idempotency-key", "k")];
    let first = api.post("/orders", create_body("c"), &key).await;
    let id = first.order_id();

    let other_body = api.post("/orders", create_body("someone-else"), &key).await;
    other_body.assert_problem(422);
    assert_eq!(
        other_body.body["type"],
        "urn:orders:problem:idempotency-key-reused"
    );
    // Same key on another route.
    api.post_empty(&format!("/orders/{id}/confirm"), &key)
        .await
        .assert_problem(422);
    assert_eq!(api.event_count().await, 1);
}

#[tokio::test]
async fn errors_are_not_recorded_so_a_retry_with_the_key_runs_again() {
    let api = TestApi::new();
    let id = api.create().await;
    let key = [("idempotency-key", "ship-1")];
    let ship = format!("/orders/{id}/ship");

    api.post_empty(&ship, &key).await.assert_problem(409);
    api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
    let retried = api.post_empty(&ship, &key).await;
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(retried.header("idempotent-replayed"), None);
    assert_eq!(retried.body["status"], "SHIPPED");
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_whether_declared_or_not() {
    let api = TestApi::new();
    let big = format!(
        "{{\"customerId\": \"{}\", \"currency\": \"EUR\", \"items\": []}}",
        "x".repeat(64 * 1024)
    );
    let post = |content_length: Option<usize>, body: String| {
        let mut builder =
            request(Method::POST, "/orders").header(header::CONTENT_TYPE, "application/json");
        if let Some(length) = content_length {
            builder = builder.header(header::CONTENT_LENGTH, length);
        }
        builder.body(Body::from(body)).unwrap()
    };
    // Declared: refused from the header, before reading.
    api.send(post(Some(big.len()), big.clone()))
        .await
        .assert_problem(413);
    // Undeclared (as with chunked encoding): refused while reading.
    api.send(post(None, big)).await.assert_problem(413);
    // A Content-Length above the limit is refused even if the body is small.
    api.send(post(Some(1_000_000), create_body("c").to_string()))
        .await
        .assert_problem(413);
    // Exactly at the limit is allowed through to validation.
    let padded = format!(
        "{}{}",
        create_body("c"),
        " ".repeat(64 * 1024 - create_body("c").to_string().len())
    );
    assert_eq!(padded.len(), 64 * 1024);
    assert_eq!(
        api.send(post(None, padded)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(api.event_count().await, 1);
}

#[tokio::test]
async fn non_json_bodies_are_415_but_json_flavours_and_empty_bodies_pass() {
    let api = TestApi::new();
    let body = create_body("c").to_string();
    let with_type = |content_type: Option<&str>| {
        let mut builder = request(Method::POST, "/orders");
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        builder.body(Body::from(body.clone())).unwrap()
    };
    for refused in [Some("text/plain"), Some("application/xml"), None] {
        api.send(with_type(refused)).await.assert_problem(415);
    }
    assert_eq!(api.event_count().await, 0);
    for accepted in [
        "application/json; charset=utf-8",
        "application/vnd.orders+json",
    ] {
        assert_eq!(
            api.send(with_type(Some(accepted))).await.status,
            StatusCode::CREATED
        );
    }
    // An empty body needs no content type, whatever it claims.
    let id = api.create().await;
    let confirm = api
        .send(
            request(Method::POST, &format!("/orders/{id}/confirm"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unavailable_store_is_503_with_retry_after() {
    let api = TestApi::new();
    let id = api.create().await;
    api.flaky().set(Mode::Unavailable);

    let create = api.post("/orders", create_body("c"), &[]).await;
    create.assert_problem(503);
    assert_eq!(create.header("retry-after"), Some("2"));
    let confirm = api.post_empty(&format!("/orders/{id}/confirm"), &[]).await;
    confirm.assert_problem(503);
    assert_eq!(confirm.header("retry-after"), Some("2"));
    let query = api.get(&format!("/orders/{id}?minVersion=1")).await;
    query.assert_problem(503);
    assert_eq!(query.header("retry-after"), Some("2"));

    api.flaky().set(Mode::Healthy);
    assert_eq!(api.event_count().await, 1);
    assert_eq!(
        api.post_empty(&format!("/orders/{id}/confirm"), &[])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn internal_failures_are_500_without_internal_details() {
    let api = TestApi::new();
    let id = api.create().await;
    api.flaky().set(Mode::Broken);
    for response in [
        api.post_empty(&format!("/orders/{id}/confirm"), &[]).await,
        api.get(&format!("/orders/{id}/events")).await,
    ] {
        response.assert_problem(500);
        assert!(
            !response.body.to_string().contains("sda1"),
            "leaked: {}",
            response.body
        );
        assert_eq!(response.header("retry-after"), None);
    }
    let _ = SECRET_DETAIL;
}

#[tokio::test]
async fn the_public_router_merges_with_extra_routes_and_keeps_its_problem_fallbacks() {
    use axum::Router;
    use axum::routing::get;
    use std::sync::Arc;

    use crate::{ApiConfig, Stores, api_router};

    let (_dir, store) = orders_testkit::stores::sqlite();
    let stores = Stores {
        events: Arc::new(store.clone()),
        idempotency: Arc::new(store.clone()),
        read_model: Arc::new(store),
    };
    let config = ApiConfig {
        source: "orders.api".into(),
        cursor_key: b"k".to_vec(),
    };
    let app = api_router(stores, config)
        .merge(Router::new().route("/local/bus", get(|| async { "bus" })));

    let created = super::send(
        app.clone(),
        request(Method::POST, "/orders")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(create_body("c").to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let bus = app
        .clone()
        .oneshot(
            request(Method::GET, "/local/bus")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(bus.status(), StatusCode::OK);
    super::send(
        app,
        request(Method::GET, "/nowhere")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .assert_problem(404);
}
