use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use orders_domain::Timestamp;
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::publisher::{Publisher, PublisherConfig};
use crate::test_support::*;

async fn bus() -> (tempfile::TempDir, LocalBus) {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(dir.path().join("sub/bus.jsonl"))
        .await
        .unwrap();
    (dir, bus)
}

fn lines(bus: &LocalBus) -> Vec<Value> {
    std::fs::read_to_string(bus.path())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn entry(detail: &str) -> BusEntry {
    BusEntry {
        source: "orders".into(),
        detail_type: "OrderCreated".into(),
        detail: detail.into(),
        event_bus_name: None,
    }
}

/// Reads the SSE body until `text` has arrived (or fails after a few seconds).
async fn read_until(body: &mut Body, text: &str) -> String {
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let frame = body.frame().await.expect("the stream stays open").unwrap();
            let Ok(data) = frame.into_data() else {
                continue;
            };
            // Search only where the text can newly appear: the whole is long when lagging.
            let mut from = seen.len().saturating_sub(text.len());
            while !seen.is_char_boundary(from) {
                from -= 1;
            }
            seen.push_str(std::str::from_utf8(&data).unwrap());
            if seen[from..].contains(text) {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{text:?} not in {seen:?}"));
    seen
}

#[tokio::test]
async fn a_published_event_is_a_json_line_shaped_like_a_put_events_entry() {
    let (_dir, bus) = bus().await;
    let events = lifecycle(new_order_id());
    let publisher = Publisher::new(
        Arc::new(bus.clone()),
        PublisherConfig {
            event_bus_name: Some("orders-bus".into()),
            ..PublisherConfig::default()
        },
    );
    publisher.publish(&events).await.unwrap();

    let lines = lines(&bus);
    assert_eq!(lines.len(), 3);
    for (line, event) in lines.iter().zip(&events) {
        assert_eq!(line["Source"], "orders");
        assert_eq!(line["DetailType"], event.event_type.as_str());
        assert_eq!(line["EventBusName"], "orders-bus");
        assert!(Timestamp::parse(line["Time"].as_str().unwrap()).is_ok());
        let detail: Value = serde_json::from_str(line["Detail"].as_str().unwrap()).unwrap();
        assert_eq!(detail, serde_json::to_value(event).unwrap());
    }
    let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
}

#[tokio::test]
async fn entries_are_appended_across_reopens_and_omit_an_unset_bus_name() {
    let (dir, bus) = bus().await;
    bus.put_events(&[entry(r#"{"eventId":"a"}"#)])
        .await
        .unwrap();
    drop(bus);
    let bus = LocalBus::open(dir.path().join("sub/bus.jsonl"))
        .await
        .unwrap();
    bus.put_events(&[entry(r#"{"eventId":"b"}"#)])
        .await
        .unwrap();

    let lines = lines(&bus);
    assert_eq!(lines.len(), 2);
    assert!(lines[1].get("EventBusName").is_none());
    assert_eq!(lines[1]["Detail"], r#"{"eventId":"b"}"#);
}

#[tokio::test]
async fn a_detail_that_is_not_a_json_object_fails_that_entry_only() {
    let (_dir, bus) = bus().await;
    let results = bus
        .put_events(&[
            entry("not json"),
            entry(r#"{"eventId":"ok"}"#),
            entry("[1]"),
        ])
        .await
        .unwrap();
    assert!(matches!(&results[0], EntryResult::Failed { code, .. } if code == "MalformedDetail"));
    assert_eq!(
        results[1],
        EntryResult::Accepted {
            event_id: Some("ok".into())
        }
    );
    assert!(matches!(&results[2], EntryResult::Failed { .. }));
    assert_eq!(lines(&bus).len(), 1);
}

#[tokio::test]
async fn a_published_event_appears_on_the_sse_feed() {
    let (_dir, bus) = bus().await;
    let response = router(bus.clone())
        .oneshot(Request::get("/local/bus").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();

    let event = event(new_order_id(), 1, created());
    Publisher::new(Arc::new(bus.clone()), PublisherConfig::default())
        .publish(std::slice::from_ref(&event))
        .await
        .unwrap();

    let seen = read_until(&mut body, "\n\n").await;
    let field = |name: &str| {
        seen.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} in {seen:?}"))
            .to_owned()
    };
    assert_eq!(field("event"), "OrderCreated");
    assert_eq!(field("id"), event.event_id.to_string());
    let data: Value = serde_json::from_str(&field("data")).unwrap();
    assert_eq!(data, lines(&bus)[0]);
}

#[tokio::test]
async fn a_lagging_follower_is_told_and_carries_on() {
    let (_dir, bus) = bus().await;
    let response = router(bus.clone())
        .oneshot(Request::get("/local/bus").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut body = response.into_body();

    // More than the live buffer holds, before the follower reads anything.
    let overflow: Vec<BusEntry> = (0..LIVE_CAPACITY + 10)
        .map(|i| entry(&format!(r#"{{"eventId":"e{i}"}}"#)))
        .collect();
    bus.put_events(&overflow).await.unwrap();

    let seen = read_until(&mut body, "event: lagged").await;
    assert!(seen.contains(r#"data: {"skipped":10}"#), "{seen}");
    let last = format!("id: e{}", LIVE_CAPACITY + 9);
    read_until(&mut body, &last).await;
}

/// A file that accepts `budget` more bytes, then fails as a full disk does; its truncation
/// can be made to fail too.
struct FailingFile {
    file: File,
    budget: usize,
    truncate_fails: bool,
}

impl Write for FailingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        self.file.write(&buf[..n])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Truncate for FailingFile {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        if self.truncate_fails {
            return Err(io::Error::other("cannot truncate"));
        }
        self.file.truncate(len)
    }
}

fn failing_file(path: &Path) -> LineFile<FailingFile> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    LineFile::new(FailingFile {
        file,
        budget: usize::MAX,
        truncate_fails: false,
    })
}

fn line(event_id: &str) -> String {
    format!("{{\"Detail\":\"{{\\\"eventId\\\":\\\"{event_id}\\\"}}\"}}\n")
}

/// Every line of the file parses; returns their event ids.
fn event_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let line: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            let detail: Value = serde_json::from_str(line["Detail"].as_str().unwrap()).unwrap();
            detail["eventId"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// A write that fails part-way (a full disk) leaves no fragment for the next entry to merge
/// with: the file is cut back to the whole lines it had.
#[test]
fn a_write_that_fails_part_way_leaves_no_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.jsonl");
    let mut file = failing_file(&path);
    file.append(line("a").as_bytes()).unwrap();

    file.file.budget = 10;
    let batch = line("b") + &line("c");
    assert!(file.append(batch.as_bytes()).is_err());

    file.file.budget = usize::MAX;
    file.append(line("d").as_bytes()).unwrap();
    assert_eq!(event_ids(&path), ["a", "d"]);
}

/// If the fragment cannot be cut off at once, nothing is written after it until it can.
#[test]
fn a_fragment_that_cannot_be_cut_off_blocks_the_next_write_until_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.jsonl");
    let mut file = failing_file(&path);
    file.append(line("a").as_bytes()).unwrap();

    file.file.budget = 10;
    file.file.truncate_fails = true;
    assert!(file.append(line("b").as_bytes()).is_err());
    file.file.budget = usize::MAX;
    let fragment = std::fs::read(&path).unwrap();
    assert!(file.append(line("c").as_bytes()).is_err());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        fragment,
        "nothing written after it"
    );

    file.file.truncate_fails = false;
    file.append(line("d").as_bytes()).unwrap();
    assert_eq!(event_ids(&path), ["a", "d"]);
}

/// A crash in the middle of a write leaves a torn last line: opening the bus cuts it off, so
/// the next entry starts a line of its own.
#[tokio::test]
async fn opening_cuts_off_a_torn_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.jsonl");
    std::fs::write(&path, line("a") + r#"{"Source":"orders","Deta"#).unwrap();
    let bus = LocalBus::open(&path).await.unwrap();
    bus.put_events(&[entry(r#"{"eventId":"b"}"#)])
        .await
        .unwrap();
    assert_eq!(event_ids(&path), ["a", "b"]);

    // A file with no whole line at all is emptied.
    drop(bus);
    std::fs::write(&path, r#"{"Source":"#).unwrap();
    let bus = LocalBus::open(&path).await.unwrap();
    bus.put_events(&[entry(r#"{"eventId":"c"}"#)])
        .await
        .unwrap();
    assert_eq!(event_ids(&path), ["c"]);
}
