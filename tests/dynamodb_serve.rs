//! `orders tables create` and `orders serve --backend dynamodb`, end to end on DynamoDB Local.

use std::process::Command;

use orders_tests::{
    Server, client, dynamodb_endpoint, get_json, new_order, orders_bin, unique_tables,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_create_is_idempotent_and_serve_runs_every_command_on_dynamodb() {
    let endpoint = dynamodb_endpoint();
    let tables = unique_tables("serve");
    let env: Vec<(&str, &str)> = tables.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Twice: the second run finds the tables and leaves them be.
    for run in 1..=2 {
        let output = Command::new(orders_bin())
            .args(["tables", "create", "--endpoint-url", &endpoint])
            .envs(env.iter().copied())
            .output()
            .expect("run orders tables create");
        assert!(
            output.status.success(),
            "tables create run {run} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        for (_, name) in &tables {
            assert!(
                stdout.contains(name.as_str()),
                "run {run} reports {name}: {stdout}"
            );
        }
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let args = ["--backend", "dynamodb", "--endpoint-url", endpoint.as_str()];
    let mut server = Server::start_with(dir.path(), &args, &env);
    let c = client();

    let created = c
        .post(server.url("/orders"))
        .json(&new_order("cust-ddb"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["etag"], "\"1\"");
    let created: Value = created.json().await.unwrap();
    let id = created["orderId"].as_str().unwrap().to_owned();

    for (action, status) in [("confirm", "CONFIRMED"), ("ship", "SHIPPED")] {
        let response = c
            .post(server.url(&format!("/orders/{id}/{action}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["status"], status);
    }
    let response = c
        .post(server.url(&format!("/orders/{id}/cancel")))
        .json(&json!({"reason": "too late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CONFLICT,
        "a shipped order cannot be cancelled"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    // No projector runs in this mode yet: minVersion folds the event store.
    let (status, view) = get_json(&c, server.url(&format!("/orders/{id}?minVersion=3"))).await;
    assert_eq!(
        (status, view["status"].as_str(), view["version"].as_u64()),
        (StatusCode::OK, Some("SHIPPED"), Some(3))
    );
    let (status, history) = get_json(&c, server.url(&format!("/orders/{id}/events"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["events"].as_array().map(Vec::len), Some(3));
    let (status, at1) = get_json(&c, server.url(&format!("/orders/{id}?atVersion=1"))).await;
    assert_eq!(
        (status, at1["status"].as_str()),
        (StatusCode::OK, Some("PENDING"))
    );

    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits cleanly, got {status}");
}
