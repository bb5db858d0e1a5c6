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
//!
//! The file holds only whole lines:
//! - A call's lines are written with one write. If it fails part-way (a full disk), the file
//!   is cut back to its length before the write, so no fragment is left for the next entry to
//!   run into; the call fails and the publisher sends its entries again. Should the cut fail
//!   too, the next call retries it first and fails rather than write after a fragment.
//! - [`LocalBus::open`] cuts a torn last line (a crash in the middle of a write) back to the
//!   last whole line.
//!
//! What survives a power cut: the bus is a best-effort local sink, written through the page
//! cache; an accepted call's lines are not fsynced one by one. [`LocalBus::sync`] fsyncs the
//! file, and `orders serve` calls it before each save of the publisher's checkpoint
//! ([`crate::local`]), one fsync per batch of the change feed. So a power cut can lose only
//! lines whose checkpoint had not advanced, and the publisher resends those from its
//! checkpoint: delivery stays at-least-once (subscribers dedupe on `eventId`), and the lines
//! of events already checkpointed are on disk. The live feed may have shown a follower entries
//! that a power cut then loses; they are resent, too.

use std::convert::Infallible;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt};
use orders_store::{Clock, SystemClock};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
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
    file: std::sync::Mutex<LineFile<File>>,
    /// Another handle on the file, so that an fsync does not hold up the writers.
    sync_handle: File,
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
    /// Opens `path` for appending, creating it and its directory if missing, and cuts a torn
    /// last line (left by a crash in the middle of a write) back to the last whole line.
    pub async fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let opened = path.clone();
        let (file, sync_handle) = tokio::task::spawn_blocking(move || {
            if let Some(dir) = opened.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&opened)?;
            let dropped = cut_torn_tail(&mut file)?;
            if dropped > 0 {
                tracing::warn!(path = %opened.display(), bytes = dropped, "cut a torn last line off the bus file");
            }
            let sync_handle = file.try_clone()?;
            io::Result::Ok((file, sync_handle))
        })
        .await
        .map_err(io::Error::other)??;
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                file: std::sync::Mutex::new(LineFile::new(file)),
                sync_handle,
                live,
                closed: watch::channel(false).0,
            }),
        })
    }

    /// Makes every line written so far durable (fsync). `orders serve` calls it before it
    /// saves the publisher's checkpoint, so that no checkpointed entry is lost in a power cut.
    pub async fn sync(&self) -> io::Result<()> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.sync_handle.sync_data())
            .await
            .map_err(io::Error::other)?
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
        let time = SystemClock.now().to_string();
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

        let inner = self.inner.clone();
        let written = tokio::task::spawn_blocking(move || {
            let mut file = inner.file.lock().unwrap_or_else(PoisonError::into_inner);
            file.append(lines.as_bytes())?;
            // Under the lock, so the live feed has the file's order. No follower is fine.
            for record in records {
                let _ = inner.live.send(record);
            }
            io::Result::Ok(())
        })
        .await
        .map_err(io::Error::other)
        .and_then(|written| written);
        written.map_err(|e| {
            BusError::Unavailable(format!("cannot write {}: {e}", self.inner.path.display()))
        })?;
        Ok(results)
    }
}

/// What the bus needs of its file besides writing: a test stands in one that fails part-way.
trait Truncate: Write {
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Cuts the file back to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl Truncate for File {
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// An append-only file of whole lines: a write that fails part-way leaves no fragment.
struct LineFile<F> {
    file: F,
    /// The length to cut the file back to before anything else is written: set when a failed
    /// write's fragment could not be cut off at once.
    torn_after: Option<u64>,
}

impl<F: Truncate> LineFile<F> {
    fn new(file: F) -> Self {
        Self {
            file,
            torn_after: None,
        }
    }

    /// Appends `lines` (whole lines, each ending in `\n`) in one write. On an error the file is
    /// as it was before, or will be before the next append succeeds.
    fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        if let Some(len) = self.torn_after {
            self.file.truncate(len)?;
            self.torn_after = None;
        }
        let before = self.file.len()?;
        let written = self.file.write_all(lines).and_then(|()| self.file.flush());
        if written.is_err()
            && let Err(error) = self.file.truncate(before)
        {
            tracing::warn!(%error, "cannot cut a failed write off the bus file; will retry");
            self.torn_after = Some(before);
        }
        written
    }
}

/// Cuts the file back to just after its last `\n` (to empty if it has none); returns the
/// number of bytes cut off.
fn cut_torn_tail(file: &mut File) -> io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        chunk.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        if let Some(newline) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        file.set_len(end)?;
    }
    Ok(len - end)
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

#[cfg(test)]
mod tests;
