//! Running `orders replay` as an operator would, seeding orders through the API, and
//! corrupting a read model in the five ways `--verify` must tell apart.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use orders_domain::OrderId;
use orders_store::{OrderView, ReadModelScan, ReadModelStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Server, eventually, get_json, new_order, orders_bin};

/// One `orders replay` run: its exit code, the differences it printed, and its summary.
#[derive(Debug)]
pub struct ReplayRun {
    pub code: i32,
    /// The JSON lines before the summary.
    pub drifts: Vec<Value>,
    /// The `--json` summary (the last line); `Null` without `--json`.
    pub summary: Value,
    pub stdout: String,
    pub stderr: String,
}

impl ReplayRun {
    /// The (kind, orderId) pairs of the printed differences, sorted.
    pub fn drift_kinds(&self) -> BTreeSet<(String, String)> {
        self.drifts
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap_or_default().to_owned(),
                    d["orderId"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// A count from the summary's tally, e.g. `written` or `drift.orphan_view`.
    pub fn tally(&self, path: &str) -> u64 {
        let mut value = &self.summary["tally"];
        for part in path.split('.') {
            value = &value[part];
        }
        value
            .as_u64()
            .unwrap_or_else(|| panic!("no tally {path} in {}", self.summary))
    }
}

/// Runs `orders replay <args>` with `--json` and the given environment, to the end.
pub fn replay(args: &[&str], env: &[(&str, &str)]) -> ReplayRun {
    let output = replay_command(args, env)
        .arg("--json")
        .output()
        .expect("run orders replay");
    parse_run(output)
}

/// The `orders replay <args>` command, not started (for tests that signal it).
pub fn replay_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(orders_bin());
    command
        .arg("replay")
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info");
    command
}

pub fn parse_run(output: std::process::Output) -> ReplayRun {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let mut lines: Vec<Value> = stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}\n{stderr}"))
        })
        .collect();
    let summary = match lines.last() {
        Some(last) if last.get("tally").is_some() => lines.pop().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    ReplayRun {
        code: output.status.code().unwrap_or(-1),
        drifts: lines,
        summary,
        stdout,
        stderr,
    }
}

/// Creates `n` orders through the API: every second one confirmed, every third also shipped.
/// Returns each order's id and its last version, once the read model shows that version.
pub async fn seed_orders(c: &reqwest::Client, server: &Server, n: usize) -> Vec<(String, u64)> {
    let mut orders = Vec::with_capacity(n);
    for i in 0..n {
        let created = c
            .post(server.url("/orders"))
            .json(&new_order(&format!("replay-{}", i % 4)))
            .send()
            .await
            .expect("create");
        assert_eq!(created.status(), StatusCode::CREATED);
        let id = created.json::<Value>().await.unwrap()["orderId"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut version = 1;
        let actions: &[&str] = match i % 3 {
            0 => &[],
            1 => &["confirm"],
            _ => &["confirm", "ship"],
        };
        for action in actions {
            let response = c
                .post(server.url(&format!("/orders/{id}/{action}")))
                .send()
                .await
                .expect("command");
            assert_eq!(response.status(), StatusCode::OK, "{action}");
            version += 1;
        }
        orders.push((id, version));
    }
    for (id, version) in &orders {
        wait_for_view(c, server, id, *version).await;
    }
    orders
}

/// Waits until the read model (not a fold: no `minVersion`) shows `id` at `version`.
pub async fn wait_for_view(c: &reqwest::Client, server: &Server, id: &str, version: u64) {
    eventually(
        &format!("the view of {id} at version {version}"),
        Duration::from_secs(20),
        || async {
            let (status, view) = get_json(c, server.url(&format!("/orders/{id}"))).await;
            (status == StatusCode::OK && view["version"] == json!(version)).then_some(())
        },
    )
    .await
}

/// Corrupts five views of `orders` (each order at version 3, i.e. shipped, where a kind needs
/// it), one way each, through the read model's own ports, and adds an orphan. Returns the
/// (kind, orderId) pairs `--verify` must report.
pub async fn corrupt_five_ways(
    store: &(impl ReadModelStore + ReadModelScan),
    orders: &[(String, u64)],
) -> BTreeSet<(String, String)> {
    let shipped: Vec<OrderId> = orders
        .iter()
        .filter(|(_, version)| *version == 3)
        .map(|(id, _)| OrderId::parse(id).unwrap())
        .take(4)
        .collect();
    assert_eq!(shipped.len(), 4, "seed at least 12 orders");
    let view = |id| async move { store.get(id).await.unwrap().expect("a view") };
    let edited = |view: &OrderView, field: &str, value: Value| -> OrderView {
        let mut json = serde_json::to_value(view).unwrap();
        json[field] = value;
        serde_json::from_value(json).unwrap()
    };
    let mut expected = BTreeSet::new();

    // 1. Delete a view.
    let deleted = shipped[0];
    assert_eq!(
        store.delete(deleted, 3).await.unwrap(),
        orders_store::DeleteOutcome::Deleted
    );
    expected.insert(("missing_view".to_owned(), deleted.to_string()));

    // 2. Set an old version.
    let old = view(shipped[1]).await;
    store
        .put(&edited(&old, "version", json!(2)), Some(3))
        .await
        .unwrap();
    expected.insert(("stale_version".to_owned(), old.order_id.to_string()));

    // 3. Change a status.
    let status = view(shipped[2]).await;
    store
        .put(&edited(&status, "status", json!("CANCELLED")), Some(3))
        .await
        .unwrap();
    expected.insert(("different_fields".to_owned(), status.order_id.to_string()));

    // 4. Change a total.
    let total = view(shipped[3]).await;
    store
        .put(&edited(&total, "total", json!(1)), Some(3))
        .await
        .unwrap();
    expected.insert(("different_fields".to_owned(), total.order_id.to_string()));

    // 5. Insert an orphan view: an order that has no events.
    let orphan_id = OrderId::from_uuid(uuid::Uuid::now_v7());
    let orphan = edited(&total, "orderId", json!(orphan_id.to_string()));
    store.put(&orphan, None).await.unwrap();
    expected.insert(("orphan_view".to_owned(), orphan_id.to_string()));
    expected
}
