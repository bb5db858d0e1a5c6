//! `orders replay` end to end, as an operator runs it: seed through the API, corrupt the read
//! model, verify, repair; beside the live projector; interrupted and resumed; into a shadow
//! table that `orders serve` is then switched to; and refusing bad input.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;

use orders_domain::{OrderId, OrderStatus};
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::sqlite::SqliteStore;
use orders_store::{ListFilter, ListQuery, ReadModelStore};
use orders_tests::replay::{
    corrupt_five_ways, parse_run, replay, replay_command, seed_orders, wait_for_view,
};
use orders_tests::streams::{append, lifecycle, new_order_id};
use orders_tests::{
    Server, client, create_unique_tables, dynamodb_endpoint, eventually, get_json, orders_bin,
};
use reqwest::StatusCode;
use serde_json::Value;

fn db_arg(dir: &Path) -> String {
    dir.join("orders.db").to_str().unwrap().to_owned()
}

/// Every view of a SQLite read-model table, by order id, as stored (the view's JSON).
fn dump(dir: &Path, table: &str) -> BTreeMap<String, String> {
    let conn = rusqlite::Connection::open(dir.join("orders.db")).unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT order_id, view FROM \"{table}\""))
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_verify_reports_five_corruptions_and_a_replay_repairs_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let orders = seed_orders(&client(), &server, 15).await;
    server.terminate();

    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    let expected = corrupt_five_ways(&store, &orders).await;
    drop(store);
    let db = db_arg(dir.path());

    let verify = replay(&["--db", &db, "--verify"], &[]);
    assert_eq!(verify.code, 1, "drift exits 1: {}", verify.stderr);
    assert_eq!(verify.drift_kinds(), expected, "{}", verify.stdout);
    assert_eq!(verify.tally("drift.missing_view"), 1);
    assert_eq!(verify.tally("drift.stale_version"), 1);
    assert_eq!(verify.tally("drift.different_fields"), 2);
    assert_eq!(verify.tally("drift.orphan_view"), 1);
    assert_eq!(verify.tally("written"), 0, "a verify writes nothing");
    assert_eq!(verify.tally("events"), 15 + 10 + 5, "every event folded");
    assert_eq!(
        verify.tally("loaded"),
        0,
        "the scan was contiguous per order"
    );
    // The status and the total are named as the fields that differ.
    let fields: Vec<&Value> = verify
        .drifts
        .iter()
        .filter(|d| d["kind"] == "different_fields")
        .map(|d| &d["fields"])
        .collect();
    assert!(
        fields.contains(&&serde_json::json!(["status"])),
        "{fields:?}"
    );
    assert!(
        fields.contains(&&serde_json::json!(["total"])),
        "{fields:?}"
    );

    // One order alone.
    let (_, stale_id) = expected
        .iter()
        .find(|(kind, _)| kind == "stale_version")
        .unwrap();
    let one = replay(&["--db", &db, "--verify", "--order", stale_id], &[]);
    assert_eq!(one.code, 1);
    assert_eq!(one.drifts.len(), 1, "{}", one.stdout);

    let repair = replay(&["--db", &db], &[]);
    assert_eq!(repair.code, 0, "{}", repair.stderr);
    assert_eq!(repair.drift_kinds(), expected, "the repairs are listed");
    assert_eq!(repair.tally("written"), 4);
    assert_eq!(repair.tally("deleted"), 1);

    let clean = replay(&["--db", &db, "--verify"], &[]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    assert!(clean.drifts.is_empty());
    assert_eq!(clean.tally("inSync"), 15);

    // The repaired views are what the API serves.
    let server = Server::start(dir.path());
    for (id, version) in &orders {
        wait_for_view(&client(), &server, id, *version).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_verify_and_repair_with_four_segments() {
    let endpoint = dynamodb_endpoint();
    let (env, tables) = create_unique_tables(&endpoint, "replay").await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--backend", "dynamodb", "--endpoint-url", endpoint.as_str()];
    let mut server = Server::start_with(dir.path(), &args, &env);
    let orders = seed_orders(&client(), &server, 15).await;
    server.terminate();

    let store = DynamoStore::new(dynamodb::client(Some(&endpoint)).await, tables);
    let expected = corrupt_five_ways(&store, &orders).await;
    let with = |extra: &[&str]| -> Vec<String> {
        args.iter()
            .chain(["--segments", "4"].iter())
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let run = |extra: &[&str]| {
        let argv = with(extra);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        replay(&argv, &env)
    };

    let verify = run(&["--verify"]);
    assert_eq!(verify.code, 1, "{}", verify.stderr);
    assert_eq!(verify.drift_kinds(), expected, "{}", verify.stdout);
    assert_eq!(verify.tally("orders"), 15);
    // DynamoDB Local's Scan returned each order's events together and in order: no order
    // needed the per-order fallback.
    assert_eq!(verify.tally("loaded"), 0);

    let repair = run(&[]);
    assert_eq!(repair.code, 0, "{}", repair.stderr);
    assert_eq!(repair.drift_kinds(), expected);

    let clean = run(&["--verify"]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    assert_eq!(clean.tally("inSync"), 15);
    assert_eq!(clean.tally("viewsChecked"), 15);
}

/// The ids of the orders a listing by `status` returns (its first page of 100).
async fn listed(store: &impl ReadModelStore, status: OrderStatus) -> Vec<OrderId> {
    let query = ListQuery {
        filter: ListFilter::Status(status),
        limit: 100,
        after: None,
    };
    let page = store.list(&query).await.expect("list");
    page.items.iter().map(|view| view.order_id).collect()
}

/// The printed difference of `order_id`, which must be the only one of that order.
fn drift_of(run: &orders_tests::replay::ReplayRun, order_id: OrderId) -> &Value {
    let mut drifts = run
        .drifts
        .iter()
        .filter(|drift| drift["orderId"] == order_id.to_string());
    let drift = drifts
        .next()
        .unwrap_or_else(|| panic!("no difference for {order_id}: {}", run.stdout));
    assert!(drifts.next().is_none(), "{}", run.stdout);
    drift
}

/// The SQLite read model keeps the status, the timestamps and the version in index columns
/// beside the view's JSON. A hand edit of a column alone (the JSON untouched) is what the
/// listings filter on and what the write conditions test, so `--verify` must see it, and a
/// replay must rewrite the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_verify_sees_an_index_column_edited_alone_and_a_replay_mends_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(dir.path());
    let (status_edited, version_edited) = (new_order_id(), new_order_id());
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    for order_id in [status_edited, version_edited] {
        append(&store, &lifecycle(order_id)).await; // created, confirmed, shipped
    }
    drop(store);
    let built = replay(&["--db", &db], &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(built.tally("written"), 2);

    let conn = rusqlite::Connection::open(dir.path().join("orders.db")).unwrap();
    let edit = |sql: &str, order_id: OrderId| {
        assert_eq!(conn.execute(sql, [order_id.to_string()]).unwrap(), 1);
    };
    edit(
        "UPDATE orders SET status = 'PENDING' WHERE order_id = ?1",
        status_edited,
    );
    edit(
        "UPDATE orders SET version = 2 WHERE order_id = ?1",
        version_edited,
    );
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    assert_eq!(
        listed(&store, OrderStatus::Pending).await,
        vec![status_edited],
        "the edit is what a listing sees"
    );

    let verify = replay(&["--db", &db, "--verify"], &[]);
    assert_eq!(verify.code, 1, "drift exits 1: {}", verify.stdout);
    let status = drift_of(&verify, status_edited);
    assert_eq!(status["kind"], "different_fields", "{status}");
    assert_eq!(status["fields"], serde_json::json!(["status"]), "{status}");
    assert_eq!(status["stored"]["status"], "PENDING", "{status}");
    assert_eq!(status["expected"]["status"], "SHIPPED", "{status}");
    let version = drift_of(&verify, version_edited);
    assert_eq!(version["kind"], "stale_version", "{version}");
    assert_eq!(version["storedVersion"], 2, "{version}");
    assert_eq!(version["expectedVersion"], 3, "{version}");
    assert_eq!(
        version["fields"],
        serde_json::json!(["version"]),
        "{version}"
    );
    assert_eq!(verify.tally("written"), 0, "a verify writes nothing");

    let repair = replay(&["--db", &db], &[]);
    assert_eq!(repair.code, 0, "{}", repair.stderr);
    assert_eq!(repair.tally("written"), 2, "{}", repair.stdout);
    let columns = |order_id: OrderId| -> (String, i64) {
        conn.query_row(
            "SELECT status, version FROM orders WHERE order_id = ?1",
            [order_id.to_string()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!(columns(status_edited), ("SHIPPED".to_owned(), 3));
    assert_eq!(columns(version_edited), ("SHIPPED".to_owned(), 3));

    let clean = replay(&["--db", &db, "--verify"], &[]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    assert_eq!(clean.tally("inSync"), 2);
    assert_eq!(listed(&store, OrderStatus::Pending).await, vec![]);
    let mut shipped = listed(&store, OrderStatus::Shipped).await;
    shipped.sort();
    let mut expected = vec![status_edited, version_edited];
    expected.sort();
    assert_eq!(shipped, expected);
    drop(store);

    // And as the API serves it.
    let server = Server::start(dir.path());
    let (code, page) = get_json(&client(), server.url("/orders?status=PENDING")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(page["items"], serde_json::json!([]), "{page}");
}

/// On DynamoDB the GSI keys (`customerId`, `createdAt` of byCustomer; `status`, `updatedAt`
/// of byStatus) are the item's own attributes, which are the view: there is no second copy to
/// disagree. An attribute edited alone, by a raw update that bypasses the adapter, is a
/// difference `--verify` names and a replay mends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_verify_sees_a_gsi_key_attribute_edited_alone_and_a_replay_mends_it() {
    let endpoint = dynamodb_endpoint();
    let (env, tables) = create_unique_tables(&endpoint, "replay").await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sdk = dynamodb::client(Some(&endpoint)).await;
    let store = DynamoStore::new(sdk.clone(), tables.clone());
    let (status_edited, customer_edited) = (new_order_id(), new_order_id());
    for order_id in [status_edited, customer_edited] {
        append(&store, &lifecycle(order_id)).await; // created, confirmed, shipped
    }
    let run = |extra: &[&str]| {
        let mut argv = vec!["--backend", "dynamodb", "--endpoint-url", endpoint.as_str()];
        argv.extend(extra);
        replay(&argv, &env)
    };
    let built = run(&[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(built.tally("written"), 2);

    // PartiQL: an item update through the client, with no adapter code involved.
    for (attribute, value, order_id) in [
        ("status", "PENDING", status_edited),
        ("customerId", "hand-edited", customer_edited),
    ] {
        sdk.execute_statement()
            .statement(format!(
                "UPDATE \"{}\" SET \"{attribute}\" = '{value}' WHERE \"orderId\" = '{order_id}'",
                tables.orders
            ))
            .send()
            .await
            .unwrap_or_else(|err| panic!("update {attribute} of {order_id}: {err:?}"));
    }
    eventually(
        "the byStatus index lists the edited status",
        Duration::from_secs(20),
        || async { (listed(&store, OrderStatus::Pending).await == [status_edited]).then_some(()) },
    )
    .await;

    let verify = run(&["--verify"]);
    assert_eq!(verify.code, 1, "drift exits 1: {}", verify.stdout);
    for (order_id, field) in [(status_edited, "status"), (customer_edited, "customerId")] {
        let drift = drift_of(&verify, order_id);
        assert_eq!(drift["kind"], "different_fields", "{drift}");
        assert_eq!(drift["fields"], serde_json::json!([field]), "{drift}");
    }

    let repair = run(&[]);
    assert_eq!(repair.code, 0, "{}", repair.stderr);
    assert_eq!(repair.tally("written"), 2, "{}", repair.stdout);
    let clean = run(&["--verify"]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    assert_eq!(clean.tally("inSync"), 2);
    eventually(
        "the byStatus index drops the mended order from PENDING",
        Duration::from_secs(20),
        || async {
            listed(&store, OrderStatus::Pending)
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_beside_the_live_projector_converges_on_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let c = client();
    let mut orders = seed_orders(&c, &server, 12).await;
    let db = db_arg(dir.path());

    // Commands keep coming while replays run (the live projector in `serve` applies them),
    // each replay both racing the projector and being raced by it.
    let writer = {
        let c = c.clone();
        let base = server.url("");
        tokio::spawn(async move {
            let mut created = Vec::new();
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                let response = c
                    .post(format!("{base}/orders"))
                    .json(&orders_tests::new_order("racing"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                let id = response.json::<Value>().await.unwrap()["orderId"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let confirmed = c
                    .post(format!("{base}/orders/{id}/confirm"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(confirmed.status(), StatusCode::OK);
                created.push((id, 2));
            }
            created
        })
    };
    let mut replays = 0;
    while !writer.is_finished() {
        let db = db.clone();
        let run = tokio::task::spawn_blocking(move || replay(&["--db", &db], &[]))
            .await
            .unwrap();
        assert_eq!(run.code, 0, "{}", run.stderr);
        replays += 1;
    }
    assert!(replays >= 2, "only {replays} replays ran during the writes");
    orders.extend(writer.await.unwrap());

    for (id, version) in &orders {
        wait_for_view(&c, &server, id, *version).await;
    }
    let verify = replay(&["--db", &db, "--verify"], &[]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    assert_eq!(verify.tally("inSync"), orders.len() as u64);
}

/// Orders of three events, appended straight to the store: enough for a replay to take a
/// while, without views (so a replay writes every one).
async fn seed_direct(dir: &Path, orders: usize) {
    let store = SqliteStore::open(&dir.join("orders.db")).unwrap();
    futures::stream::iter(0..orders)
        .map(|_| {
            let store = store.clone();
            async move { append(&store, &lifecycle(new_order_id())).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

/// Runs a replay held to 3 000 events/s (so 18 000 events take 6 s), signals it once it has
/// settled some orders and a periodic checkpoint has been saved, and returns the run.
fn interrupted_run(dir: &Path, signal: &str) -> orders_tests::replay::ReplayRun {
    let db = db_arg(dir);
    let mut child = replay_command(
        &[
            "--db",
            &db,
            "--segments",
            "2",
            "--page-size",
            "30",
            "--batch-size",
            "10",
            "--max-rate",
            "3000",
            "--json",
        ],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let written = dump(dir, "orders").len();
        if written >= 200 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the replay ended before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "the replay made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let a periodic checkpoint (every 2 s) land, for the SIGKILL case.
    std::thread::sleep(Duration::from_millis(2500));
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    parse_run(child.wait_with_output().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_replay_resumes_to_the_state_of_an_uninterrupted_one() {
    const ORDERS: usize = 6000;
    let dir = tempfile::tempdir().unwrap();
    seed_direct(dir.path(), ORDERS).await;
    let db = db_arg(dir.path());
    let checkpoint = dir.path().join("replay-orders-rebuild.checkpoint.json");

    // Ctrl-C: the batches in flight settle, the checkpoint is saved, exit 130.
    let stopped = interrupted_run(dir.path(), "-INT");
    assert_eq!(stopped.code, 130, "{}", stopped.stderr);
    assert_eq!(stopped.summary["status"], "interrupted");
    assert!(checkpoint.exists(), "the checkpoint is saved");
    let partial = dump(dir.path(), "orders").len();
    assert!(
        (1..ORDERS).contains(&partial),
        "{partial} views written before the stop"
    );

    let resumed = replay(&["--db", &db, "--segments", "2", "--resume"], &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(
        resumed.tally("orders"),
        ORDERS as u64,
        "the counts carry over"
    );
    assert!(!checkpoint.exists(), "a finished run leaves no checkpoint");

    // The same views as an uninterrupted run builds into a table of its own.
    let reference = replay(&["--db", &db, "--into", "reference"], &[]);
    assert_eq!(reference.code, 0, "{}", reference.stderr);
    let views = dump(dir.path(), "orders");
    assert_eq!(views.len(), ORDERS);
    assert_eq!(views, dump(dir.path(), "reference"));

    // SIGKILL: no chance to save; the periodic checkpoint is enough.
    let conn = rusqlite::Connection::open(dir.path().join("orders.db")).unwrap();
    conn.execute("DELETE FROM orders", []).unwrap();
    drop(conn);
    let killed = interrupted_run(dir.path(), "-KILL");
    assert_eq!(killed.code, -1, "killed by a signal");
    assert!(checkpoint.exists(), "a periodic checkpoint was saved");
    let resumed = replay(&["--db", &db, "--segments", "2", "--resume"], &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(dump(dir.path(), "orders"), dump(dir.path(), "reference"));
    let verify = replay(&["--db", &db, "--verify"], &[]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}

/// Progress as an operator sees it. Off a terminal: a log line every `--progress-every`
/// seconds, with the phase, the events so far, the rate and the ETA. On a terminal (a
/// pseudo-terminal from util-linux's `script`): a bar with the phase, events/s and the ETA.
/// Either way the summary comes last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_a_bar_on_a_terminal_and_log_lines_off_one() {
    let dir = tempfile::tempdir().unwrap();
    seed_direct(dir.path(), 1500).await; // 4 500 events: 1.5 s at 3 000 events/s
    let db = db_arg(dir.path());

    let logged = replay(
        &[
            "--db",
            &db,
            "--into",
            "logged",
            "--max-rate",
            "3000",
            "--progress-every",
            "1",
        ],
        &[],
    );
    assert_eq!(logged.code, 0, "{}", logged.stderr);
    let lines: Vec<&str> = logged
        .stderr
        .lines()
        .filter(|line| line.contains("replay progress"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|line| line.contains("phase=\"folding events\"")
                && line.contains("events_per_s=")
                && line.contains("eta_s=")),
        "a progress line with rate and ETA: {}",
        logged.stderr
    );
    assert!(!logged.stderr.contains(", ETA "), "no bar off a terminal");

    let command = format!(
        "'{}' replay --db '{db}' --into shown --max-rate 3000",
        orders_bin().display()
    );
    let output = std::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("RUST_LOG", "info")
        .output()
        .expect("run `script` (Debian's bsdutils) to give the replay a terminal");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert!(
        screen.contains("folding events ["),
        "the bar's phase: {screen}"
    );
    assert!(screen.contains(" events, "), "the bar's count: {screen}");
    assert!(
        screen.contains("/s, ETA "),
        "the bar's rate and ETA: {screen}"
    );
    assert!(
        screen.contains("replay of shown: done"),
        "the summary: {screen}"
    );
    assert_eq!(dump(dir.path(), "shown"), dump(dir.path(), "logged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_table_is_built_beside_the_live_one_and_serve_switches_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let c = client();
    let orders = seed_orders(&c, &server, 12).await;
    server.terminate();

    // The live table has drifted; the shadow is built from the events alone.
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    corrupt_five_ways(&store, &orders).await;
    drop(store);
    let live_before = dump(dir.path(), "orders");
    let db = db_arg(dir.path());

    let build = replay(&["--db", &db, "--into", "orders_v2"], &[]);
    assert_eq!(build.code, 0, "{}", build.stderr);
    assert_eq!(build.tally("written"), 12);
    assert_eq!(
        dump(dir.path(), "orders"),
        live_before,
        "the live table is untouched"
    );
    let shadow = replay(&["--db", &db, "--into", "orders_v2", "--verify"], &[]);
    assert_eq!(shadow.code, 0, "{}", shadow.stdout);
    let live = replay(&["--db", &db, "--verify"], &[]);
    assert_eq!(live.code, 1, "the live table still drifts");

    // Switch over: ORDERS_TABLE points the query API (and the projector) at the shadow.
    let server = Server::start_with(dir.path(), &[], &[("ORDERS_TABLE", "orders_v2")]);
    for (id, version) in &orders {
        let (status, view) = get_json(&c, server.url(&format!("/orders/{id}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(view["version"], *version, "{view}");
    }
    let (status, page) = get_json(&c, server.url("/orders?status=SHIPPED&limit=100")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 4, "{page}");
    // New events reach the shadow through the live projector.
    let created = c
        .post(server.url("/orders"))
        .json(&orders_tests::new_order("after-switch"))
        .send()
        .await
        .unwrap();
    let id = created.json::<Value>().await.unwrap()["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_view(&c, &server, &id, 1).await;
    assert!(dump(dir.path(), "orders_v2").contains_key(&id));
    assert!(!dump(dir.path(), "orders").contains_key(&id));

    // An unknown table is refused rather than served empty.
    let mut wrong = std::process::Command::new(orders_bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--db", &db])
        .env("ORDERS_TABLE", "orders_v3")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wrong.wait().unwrap();
    assert!(!status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_clear_error_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    seed_direct(dir.path(), 3).await;
    let db = db_arg(dir.path());
    let tables = || {
        let conn = rusqlite::Connection::open(dir.path().join("orders.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    };
    let before = (tables(), dump(dir.path(), "orders"));
    let missing = dir.path().join("nowhere/orders.db");
    let missing = missing.to_str().unwrap();

    let cases: [(&[&str], &str); 7] = [
        (
            &["--backend", "cassandra", "--db", &db],
            "invalid value 'cassandra'",
        ),
        (&["--db", missing], "there is no database at"),
        (
            &["--db", &db, "--order", "not-a-uuid"],
            "is not an order id",
        ),
        (
            &["--db", &db, "--into", "no spaces"],
            "is not a valid table name",
        ),
        (
            &["--db", &db, "--into", "events"],
            "event store's own tables",
        ),
        (&["--db", &db, "--segments", "0"], "0 is not in 1..=1024"),
        (&["--db", &db, "--resume"], "there is no checkpoint"),
    ];
    for (args, message) in cases {
        let output = replay_command(args, &[]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(!Path::new(missing).exists(), "no database is created");
    assert!(!dir.path().join("nowhere").exists());
    assert_eq!((tables(), dump(dir.path(), "orders")), before);

    // A well-formed table name that is not there: a verify does not create it.
    let output = replay_command(&["--db", &db, "--into", "absent", "--verify"], &[])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(tables(), before.0);
}
