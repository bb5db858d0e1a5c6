//! The local bus: what the publisher sends to when there is no EventBridge.
//!
//! Every accepted entry is
//! - appended to a JSON-lines file, one line per entry, shaped like a `PutEvents` request
//!   entry plus the time the bus accepted it (`EventBusName` only when set):
//!   ```json
//!   {"Source":"orders","DetailType":"OrderCreated","Detail":"{\"orderId\":\"…\",\"version\":1,\"eventId\":\"…\",…}","EventBusName":"orders","Time":"2026-01-02T03:04:05.678Z"}
//!   ```
//!   `Detail` stays a JSON string, as `PutEvents` takes it (`jq '.Detail | fromjson'`);
//! - broadcast live to followers of `GET /local/bus` ([`router`]), as Server-Sent Events:
//!   `event: <DetailType>`, `id: <eventId>`, `data: <the JSON line>`. The feed is live only;
//!   history is in the file. A follower too slow for the feed gets `event: lagged` with
//!   `data: {"skipped":N}` and carries on from the newest entries.

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt};
use orders_domain::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, broadcast, watch};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::publisher::{Bus, BusEntry, BusError, EntryResult};

/// Entries a live follower may fall behind by before it is told it lagged.
const LIVE_CAPACITY: usize = 4096;

/// One accepted entry, as the live feed carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBusRecord {
    pub detail_type: String,
    /// The envelope's `eventId`, if the detail has one.
    pub event_id: Option<String>,
    /// The entry's JSON line (without the newline).
    pub json: String,
}

/// A JSON-lines file plus a live broadcast. Cheap to clone; clones share both.
#[derive(Clone)]
pub struct LocalBus {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    // One writer at a time, so that lines never interleave and the live feed has file order.
    file: Mutex<tokio::fs::File>,
    live: broadcast::Sender<Arc<LocalBusRecord>>,
    // Set by `close`: live followers' streams end, so a graceful shutdown is not held open
    // by a client that follows the feed forever.
    closed: watch::Sender<bool>,
}

/// The file's line: a `PutEventsRequestEntry` in EventBridge's own field names.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Line<'a> {
    source: &'a str,
    detail_type: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_bus_name: Option<&'a str>,
    time: &'a str,
}

/// All the bus reads from a detail: that it is a JSON object, and its `eventId`.
#[derive(Deserialize)]
struct DetailId {
    #[serde(rename = "eventId")]
    event_id: Option<String>,
}

impl LocalBus {
    /// Opens `path` for appending, creating it and its directory if missing.
    pub async fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await?;
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                file: Mutex::new(file),
                live,
                closed: watch::channel(false).0,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Follows the entries accepted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LocalBusRecord>> {
        self.inner.live.subscribe()
    }

    /// Ends every `GET /local/bus` stream, now and for followers that connect later. Entries
    /// are still written to the file.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let time = Timestamp::from_millis(now_millis()).to_string();
        let mut lines = String::new();
        let mut records = Vec::with_capacity(entries.len());
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            // Like EventBridge, refuse (per entry) a detail that is not a JSON object.
            let Ok(DetailId { event_id }) = serde_json::from_str::<DetailId>(&entry.detail) else {
                results.push(EntryResult::Failed {
                    code: "MalformedDetail".to_owned(),
                    message: "Detail is not a valid JSON object".to_owned(),
                });
                continue;
            };
            let json = serde_json::to_string(&Line {
                source: &entry.source,
                detail_type: &entry.detail_type,
                detail: &entry.detail,
                event_bus_name: entry.event_bus_name.as_deref(),
                time: &time,
            })
            .expect("a line of strings always serializes");
            lines.push_str(&json);
            lines.push('\n');
            records.push(Arc::new(LocalBusRecord {
                detail_type: entry.detail_type.clone(),
                event_id: event_id.clone(),
                json,
            }));
            results.push(EntryResult::Accepted { event_id });
        }

        let unavailable = |e: io::Error| {
            BusError::Unavailable(format!("cannot write {}: {e}", self.inner.path.display()))
        };
        let mut file = self.inner.file.lock().await;
        file.write_all(lines.as_bytes())
            .await
            .map_err(unavailable)?;
        file.flush().await.map_err(unavailable)?;
        // Under the lock, so the live feed has the file's order. No follower is fine.
        for record in records {
            let _ = self.inner.live.send(record);
        }
        Ok(results)
    }
}

/// `GET /local/bus`: the live feed of bus entries, as Server-Sent Events.
pub fn router(bus: LocalBus) -> Router {
    Router::new()
        .route("/local/bus", get(live_feed))
        .with_state(bus)
}

async fn live_feed(
    State(bus): State<LocalBus>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut closed = bus.inner.closed.subscribe();
    let closing = async move {
        let _ = closed.wait_for(|closed| *closed).await;
    };
    let events = BroadcastStream::new(bus.subscribe()).map(|received| {
        Ok(match received {
            Ok(record) => sse_event(&record),
            Err(BroadcastStreamRecvError::Lagged(skipped)) => {
                tracing::warn!(skipped, "a /local/bus follower lagged; entries skipped");
                Event::default()
                    .event("lagged")
                    .data(format!("{{\"skipped\":{skipped}}}"))
            }
        })
    });
    Sse::new(events.take_until(closing)).keep_alive(KeepAlive::default())
}

fn sse_event(record: &LocalBusRecord) -> Event {
    // SSE field values cannot hold line breaks (axum panics on them): leave such a field out.
    let safe = |s: &str| !s.is_empty() && !s.contains(['\n', '\r', '\0']);
    let mut event = Event::default().data(&record.json);
    if safe(&record.detail_type) {
        event = event.event(&record.detail_type);
    }
    if let Some(id) = record.event_id.as_deref().filter(|id| safe(id)) {
        event = event.id(id);
    }
    event
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
