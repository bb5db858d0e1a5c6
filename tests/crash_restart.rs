//! SIGKILL in the middle of a stream of creates, then restart: every acknowledged create is
//! in the event store, and every view equals the fold of its events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orders_tests::{Server, bus_entries, client, eventually, get_json, list_all, new_order};
use reqwest::StatusCode;
use serde_json::Value;

const CUSTOMER: &str = "cust-crash";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_sigkill_and_views_converge_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));

    // Four clients create orders (and confirm every other one) as fast as they can.
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (base, acknowledged) = (server.base.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            let c = client();
            for n in 0.. {
                let Ok(response) = c
                    .post(format!("{base}/orders"))
                    .json(&new_order(CUSTOMER))
                    .send()
                    .await
                else {
                    break; // the server is gone
                };
                if response.status() != StatusCode::CREATED {
                    break;
                }
                let Ok(body) = response.json::<Value>().await else {
                    break;
                };
                let id = body["orderId"].as_str().expect("orderId").to_owned();
                acknowledged.lock().unwrap().push(id.clone());
                if (n + writer) % 2 == 0
                    && c.post(format!("{base}/orders/{id}/confirm"))
                        .send()
                        .await
                        .is_err()
                {
                    break;
                }
            }
        }));
    }
    // Let a few hundred creates through, then pull the plug.
    eventually(
        "some creates acknowledged",
        Duration::from_secs(20),
        || async { (acknowledged.lock().unwrap().len() >= 200).then_some(()) },
    )
    .await;
    server.kill();
    for writer in writers {
        writer.await.expect("writer task");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 200);

    let server = Server::start(dir.path());
    let c = client();

    // Every acknowledged create is in the event store.
    for id in &acknowledged {
        let response = c
            .get(server.url(&format!("/orders/{id}/events")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "acknowledged order {id} lost"
        );
        let history: Value = response.json().await.unwrap();
        assert_eq!(history["events"][0]["eventType"], "OrderCreated");
    }

    // After the projector catches up, every view equals the fold of its events
    // (`atVersion` = the last event's version folds the whole history).
    for id in &acknowledged {
        let (_, history) = get_json(&c, server.url(&format!("/orders/{id}/events"))).await;
        let last = history["events"].as_array().unwrap().len();
        let (_, folded) = get_json(&c, server.url(&format!("/orders/{id}?atVersion={last}"))).await;
        let view = eventually(
            &format!("view of {id} at version {last}"),
            Duration::from_secs(20),
            || async {
                let response = c
                    .get(server.url(&format!("/orders/{id}")))
                    .send()
                    .await
                    .ok()?;
                let view: Value = response.json().await.ok()?;
                (view["version"] == last).then_some(view)
            },
        )
        .await;
        assert_eq!(
            view, folded,
            "the projected view of {id} equals the fold of its events"
        );
    }

    // The read model holds no order twice, and includes every acknowledged one.
    let (listed, _) = list_all(&c, &server, &format!("customerId={CUSTOMER}&limit=100")).await;
    let unique: std::collections::HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "an order listed twice");
    for id in &acknowledged {
        assert!(
            unique.contains(id),
            "acknowledged order {id} missing from the read model"
        );
    }

    // The bus got every acknowledged order's creation at least once (delivery is
    // at-least-once across a crash; consumers dedupe on eventId).
    let published: std::collections::HashSet<String> = eventually(
        "the publisher catches up",
        Duration::from_secs(20),
        || async {
            let ids: std::collections::HashSet<String> = bus_entries(dir.path())
                .iter()
                .filter(|e| e["DetailType"] == "OrderCreated")
                .map(|e| {
                    serde_json::from_str::<Value>(e["Detail"].as_str().unwrap()).unwrap()["orderId"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            acknowledged
                .iter()
                .all(|id| ids.contains(id))
                .then_some(ids)
        },
    )
    .await;
    assert!(published.len() >= acknowledged.len());
}
