//! `orders serve` end to end: the real binary, on an ephemeral port, in a temp directory.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use orders_tests::{Server, bus_entries, client, eventually, get_json, list_all, new_order};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn post(
    c: &reqwest::Client,
    url: String,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = c.post(url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let (status, headers) = (response.status(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Reads the SSE feed until `want` event ids have arrived; returns the DetailType per eventId.
async fn read_bus(response: reqwest::Response, want: usize) -> HashMap<String, String> {
    let mut seen = HashMap::new();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while seen.len() < want {
        let chunk = tokio::time::timeout(WAIT, body.next())
            .await
            .expect("the bus feed went quiet")
            .expect("the bus feed ended")
            .expect("bus chunk");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let data: String = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if data.is_empty() {
                continue; // keep-alive comment
            }
            let entry: Value = serde_json::from_str(&data).expect("SSE data is a JSON bus entry");
            let detail: Value =
                serde_json::from_str(entry["Detail"].as_str().expect("Detail is a JSON string"))
                    .expect("Detail parses");
            seen.insert(
                detail["eventId"].as_str().expect("eventId").to_owned(),
                entry["DetailType"].as_str().expect("DetailType").to_owned(),
            );
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_end_to_end_then_a_clean_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    let c = client();

    // Follow the bus from the start.
    let bus = c
        .get(server.url("/local/bus"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("bus");
    assert_eq!(bus.status(), StatusCode::OK);
    assert!(
        bus.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let bus_reader = tokio::spawn(read_bus(bus, 5));

    // Create, confirm, ship.
    let (status, headers, created) =
        post(&c, server.url("/orders"), Some(new_order("cust-e2e"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["orderId"].as_str().expect("orderId").to_owned();
    assert_eq!(headers["location"], format!("/orders/{id}").as_str());
    assert_eq!(headers["etag"], "\"1\"");
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["total"], 2 * 1250 + 999);

    let (status, headers, confirmed) =
        post(&c, server.url(&format!("/orders/{id}/confirm")), None).await;
    assert_eq!(
        (status, confirmed["status"].as_str()),
        (StatusCode::OK, Some("CONFIRMED"))
    );
    assert_eq!(headers["etag"], "\"2\"");
    let (status, _, shipped) = post(&c, server.url(&format!("/orders/{id}/ship")), None).await;
    assert_eq!(
        (
            status,
            shipped["status"].as_str(),
            shipped["version"].as_u64()
        ),
        (StatusCode::OK, Some("SHIPPED"), Some(3))
    );

    // Create and cancel a second order.
    let (_, _, other) = post(&c, server.url("/orders"), Some(new_order("cust-e2e"))).await;
    let other_id = other["orderId"].as_str().unwrap().to_owned();
    let (status, _, cancelled) = post(
        &c,
        server.url(&format!("/orders/{other_id}/cancel")),
        Some(json!({"reason": "changed my mind"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            cancelled["status"].as_str(),
            cancelled["cancelReason"].as_str()
        ),
        (Some("CANCELLED"), Some("changed my mind"))
    );
    // Shipping a cancelled order is outside the lifecycle.
    let (status, _, problem) =
        post(&c, server.url(&format!("/orders/{other_id}/ship")), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    // Read-your-writes: minVersion answers at once even if the projector lags.
    let (status, view) = get_json(&c, server.url(&format!("/orders/{id}?minVersion=3"))).await;
    assert_eq!(
        (status, view["version"].as_u64(), view["status"].as_str()),
        (StatusCode::OK, Some(3), Some("SHIPPED"))
    );
    // The projected view catches up.
    let view = eventually("the read model shows version 3", WAIT, || async {
        let (status, view) = get_json(&c, server.url(&format!("/orders/{id}"))).await;
        (status == StatusCode::OK && view["version"] == 3).then_some(view)
    })
    .await;
    assert_eq!(
        view, shipped,
        "the projected view equals the command's answer"
    );

    // History and time travel.
    let (status, history) = get_json(&c, server.url(&format!("/orders/{id}/events"))).await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["OrderCreated", "OrderConfirmed", "OrderShipped"]);
    let versions: Vec<u64> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    let (status, at1) = get_json(&c, server.url(&format!("/orders/{id}?atVersion=1"))).await;
    assert_eq!(
        (status, at1["status"].as_str(), at1["version"].as_u64()),
        (StatusCode::OK, Some("PENDING"), Some(1))
    );
    let (status, _) = get_json(&c, server.url(&format!("/orders/{id}?atVersion=4"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every event reaches the bus: 3 + 2 events.
    let on_bus = tokio::time::timeout(WAIT * 2, bus_reader)
        .await
        .expect("bus events in time")
        .expect("bus reader");
    let history_ids: Vec<String> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventId"].as_str().unwrap().to_owned())
        .collect();
    for (event_id, expected_type) in
        history_ids
            .iter()
            .zip(["OrderCreated", "OrderConfirmed", "OrderShipped"])
    {
        assert_eq!(
            on_bus.get(event_id).map(String::as_str),
            Some(expected_type)
        );
    }

    // Listings: 7 more orders for one customer, paged 3 at a time, newest first.
    let mut expected = Vec::new();
    for _ in 0..7 {
        let (status, _, body) =
            post(&c, server.url("/orders"), Some(new_order("cust-pages"))).await;
        assert_eq!(status, StatusCode::CREATED);
        expected.push(body["orderId"].as_str().unwrap().to_owned());
    }
    expected.reverse();
    eventually("all 7 views projected", WAIT, || async {
        let (_, page) = get_json(&c, server.url("/orders?customerId=cust-pages&limit=100")).await;
        (page["items"].as_array().map(Vec::len) == Some(7)).then_some(())
    })
    .await;
    let (listed, pages) = list_all(&c, &server, "customerId=cust-pages&limit=3").await;
    assert!(
        pages >= 3,
        "7 orders at 3 a page take at least 3 pages, got {pages}"
    );
    assert_eq!(listed, expected, "every order once, newest first");
    let (status, by_status) = get_json(&c, server.url("/orders?status=SHIPPED")).await;
    assert_eq!(status, StatusCode::OK);
    let shipped_ids: Vec<&str> = by_status["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(shipped_ids, [id.as_str()]);

    // Graceful stop, with a bus follower still connected (it must not hold the drain open),
    // then restart on the same data: nothing lost, nothing published twice.
    let follower = c
        .get(server.url("/local/bus"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("follow the bus");
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits cleanly, got {status}");
    let mut follower = follower.bytes_stream();
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(Ok(_)) = follower.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the bus stream ends when the server stops");
    let before_restart = bus_entries(dir.path());
    let server = Server::start(dir.path());
    let (status, view) = get_json(&c, server.url(&format!("/orders/{id}"))).await;
    assert_eq!(
        (status, view["version"].as_u64()),
        (StatusCode::OK, Some(3))
    );
    let (status, _, _) = post(
        &c,
        server.url("/orders"),
        Some(new_order("cust-after-restart")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let entries = eventually(
        "the new order is published after the restart",
        WAIT,
        || async {
            let entries = bus_entries(dir.path());
            (entries.len() > before_restart.len()).then_some(entries)
        },
    )
    .await;
    let mut ids = HashSet::new();
    for entry in &entries {
        let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
        assert!(
            ids.insert(detail["eventId"].as_str().unwrap().to_owned()),
            "published twice: {detail}"
        );
    }
    assert_eq!(
        ids.len(),
        2 + 3 + 7 + 1,
        "every event published exactly once across the restart"
    );
}

/// `orders serve`'s extra arguments and environment.
type Invocation<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

/// A weak cursor key is a usage error (exit 2) found before the data directory, the database
/// or a key file is created; the flag and the environment variable are checked alike.
#[test]
fn a_weak_cursor_key_is_refused_before_anything_is_created() {
    let cases: [Invocation<'_>; 3] = [
        (&["--cursor-key", "short"], &[]),
        (&["--cursor-key", ""], &[]),
        (
            &[],
            &[("ORDERS_CURSOR_KEY", "0123456789abcdef0123456789abcde")],
        ),
    ];
    for (args, env) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut child = std::process::Command::new(orders_tests::orders_bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(data.join("orders.db"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run orders serve");
        // Bounded: a server that accepted the key would otherwise run until killed.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("{args:?} {env:?}: orders serve started instead of refusing the key");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        for named in ["--cursor-key", "ORDERS_CURSOR_KEY", "at least 32 bytes"] {
            assert!(stderr.contains(named), "{named} in {stderr}");
        }
        assert!(
            !data.exists(),
            "{args:?} {env:?}: created {}",
            data.display()
        );
    }
}

/// `--consumers none` (or `ORDERS_CONSUMERS=none`) runs the API alone, as on AWS where the
/// projector and the publisher are functions of their own: commands and `?minVersion=` reads
/// work, but no view is written, nothing is published and there is no `/local/bus`.
#[tokio::test]
async fn the_api_alone_runs_no_projector_and_no_publisher() {
    let cases: [Invocation<'_>; 2] = [
        (&["--consumers", "none"], &[]),
        (&[], &[("ORDERS_CONSUMERS", "none")]),
    ];
    for (args, env) in cases {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(dir.path(), args, env);
        let c = client();
        let (status, _, created) =
            post(&c, server.url("/orders"), Some(new_order("cust-api-alone"))).await;
        assert_eq!(status, StatusCode::CREATED, "{args:?} {env:?}: {created}");
        let id = created["orderId"].as_str().unwrap();

        let (status, fresh) = get_json(&c, server.url(&format!("/orders/{id}?minVersion=1"))).await;
        assert_eq!(
            (status, &fresh["version"]),
            (StatusCode::OK, &json!(1)),
            "{args:?} {env:?}: read-your-writes still folds from the events"
        );
        // Given time a projector would have taken, the view is still not there.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _) = get_json(&c, server.url(&format!("/orders/{id}"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{args:?} {env:?}: no view");
        let bus = c.get(server.url("/local/bus")).send().await.unwrap();
        assert_eq!(
            bus.status(),
            StatusCode::NOT_FOUND,
            "{args:?} {env:?}: no bus"
        );
        assert!(
            !dir.path().join("bus.jsonl").exists(),
            "{args:?} {env:?}: nothing published"
        );
    }
}

/// A value other than `all` or `none` is a usage error.
#[test]
fn an_unknown_consumers_value_is_refused() {
    let output = std::process::Command::new(orders_tests::orders_bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--consumers", "some"])
        .output()
        .expect("run orders serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--consumers"), "{stderr}");
}
