//! `GET /metrics` of a running `orders serve` (issue 16): after commands of every outcome the
//! command service can reach from one client, the Prometheus text parses with a real parser
//! (`prometheus-parse`), the command counters say what happened, and both lag histograms and
//! gauges have samples from the projector and the publisher.

use std::time::Duration;

use orders_lambda::metrics::{
    COMMANDS_TOTAL, DECODE_FAILURES_TOTAL, PROJECTION_GAP_HEALS_TOTAL, PROJECTION_LAG_LAST_SECONDS,
    PROJECTION_LAG_SECONDS, PUBLISH_LAG_LAST_SECONDS, PUBLISH_LAG_SECONDS,
};
use orders_tests::{Server, client, eventually, new_order};
use prometheus_parse::{Sample, Scrape, Value};
use reqwest::StatusCode;

const WAIT: Duration = Duration::from_secs(10);

async fn scrape(c: &reqwest::Client, server: &Server) -> (String, Scrape) {
    let response = c
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("the body");
    let parsed = Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("parses");
    (text, parsed)
}

fn command_count(scrape: &Scrape, command: &str, outcome: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == COMMANDS_TOTAL
                && s.labels.get("command") == Some(command)
                && s.labels.get("outcome") == Some(outcome)
        })
        .map(|s| match s.value {
            Value::Counter(n) => n,
            ref other => panic!("{COMMANDS_TOTAL} is a counter, not {other:?}"),
        })
        .sum()
}

fn sample<'a>(scrape: &'a Scrape, metric: &str) -> Option<&'a Sample> {
    scrape.samples.iter().find(|s| s.metric == metric)
}

/// The histogram's observations: its `+Inf` bucket.
fn observations(scrape: &Scrape, metric: &str) -> Option<f64> {
    match &sample(scrape, metric)?.value {
        Value::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than == f64::INFINITY)
            .map(|b| b.count),
        other => panic!("{metric} is a histogram, not {other:?}"),
    }
}

fn gauge(scrape: &Scrape, metric: &str) -> Option<f64> {
    match sample(scrape, metric)?.value {
        Value::Gauge(value) => Some(value),
        ref other => panic!("{metric} is a gauge, not {other:?}"),
    }
}

async fn post(
    c: &reqwest::Client,
    url: String,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> StatusCode {
    let mut request = c.post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_command_outcome_and_both_lags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let c = client();

    // Before any command the text parses and has no command samples yet.
    let (_, before) = scrape(&c, &server).await;
    assert_eq!(command_count(&before, "create", "created"), 0.0);

    // A create, and the same request again: a replay.
    let key = [("Idempotency-Key", "metrics-create-1")];
    let body = new_order("cust-metrics");
    let created = c
        .post(server.url("/orders"))
        .header("Idempotency-Key", "metrics-create-1")
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<serde_json::Value>().await.unwrap()["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned();
    assert_eq!(
        post(&c, server.url("/orders"), &key, Some(body)).await,
        StatusCode::CREATED
    );

    let confirm = server.url(&format!("/orders/{id}/confirm"));
    // Applied, then a no-op (confirming a confirmed order), then a stale If-Match.
    assert_eq!(post(&c, confirm.clone(), &[], None).await, StatusCode::OK);
    assert_eq!(post(&c, confirm.clone(), &[], None).await, StatusCode::OK);
    assert_eq!(
        post(&c, confirm, &[("If-Match", "\"1\"")], None).await,
        StatusCode::PRECONDITION_FAILED
    );
    // Rejected by the decider: a cancelled order cannot be shipped.
    let other: serde_json::Value = c
        .post(server.url("/orders"))
        .json(&new_order("cust-metrics"))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .unwrap();
    let other = other["orderId"].as_str().expect("orderId");
    let cancel = serde_json::json!({ "reason": "metrics test" });
    assert_eq!(
        post(
            &c,
            server.url(&format!("/orders/{other}/cancel")),
            &[],
            Some(cancel)
        )
        .await,
        StatusCode::OK
    );
    let shipped = post(&c, server.url(&format!("/orders/{other}/ship")), &[], None).await;
    assert!(
        shipped.is_client_error(),
        "shipping a cancelled order: {shipped}"
    );

    // Four events (2 creates, a confirm, a cancel): both consumers catch up, asynchronously.
    let (text, after) = eventually("both lags have a sample of every event", WAIT, || async {
        let (text, after) = scrape(&c, &server).await;
        let done = observations(&after, PROJECTION_LAG_SECONDS) >= Some(4.0)
            && observations(&after, PUBLISH_LAG_SECONDS) >= Some(4.0);
        done.then_some((text, after))
    })
    .await;

    let counts = [
        ("create", "created", 2.0),
        ("create", "idempotent_replay", 1.0),
        ("confirm", "applied", 1.0),
        ("confirm", "noop", 1.0),
        ("confirm", "precondition_failed", 1.0),
        ("cancel", "applied", 1.0),
        ("ship", "rejected", 1.0),
    ];
    for (command, outcome, want) in counts {
        assert_eq!(
            command_count(&after, command, outcome),
            want,
            "{command}/{outcome} in:\n{text}"
        );
    }
    let all: f64 = after
        .samples
        .iter()
        .filter(|s| s.metric == COMMANDS_TOTAL)
        .map(|s| match s.value {
            Value::Counter(n) => n,
            _ => 0.0,
        })
        .sum();
    assert_eq!(all, 8.0, "no command counted twice or elsewhere:\n{text}");

    for metric in [PROJECTION_LAG_LAST_SECONDS, PUBLISH_LAG_LAST_SECONDS] {
        let lag = gauge(&after, metric).unwrap_or_else(|| panic!("no {metric} in:\n{text}"));
        assert!((0.0..WAIT.as_secs_f64()).contains(&lag), "{metric} = {lag}");
    }
    // The failure counters are there from the start, at 0: nothing failed.
    let zero = |metric: &str, label: Option<(&str, &str)>| {
        let found = after.samples.iter().find(|s| {
            s.metric == metric
                && label.is_none_or(|(name, value)| s.labels.get(name) == Some(value))
        });
        assert_eq!(
            found.map(|s| &s.value),
            Some(&Value::Counter(0.0)),
            "{metric} {label:?} in:\n{text}"
        );
    };
    zero(PROJECTION_GAP_HEALS_TOTAL, None);
    zero(DECODE_FAILURES_TOTAL, Some(("consumer", "projector")));
    zero(DECODE_FAILURES_TOTAL, Some(("consumer", "publisher")));

    for metric in [PROJECTION_LAG_SECONDS, PUBLISH_LAG_SECONDS] {
        assert!(
            after.docs.contains_key(metric),
            "{metric} has its HELP line:\n{text}"
        );
    }
}
