//! The projections of `orders serve`: the projector and the publisher in-process, each a
//! [`FeedConsumer`] of the embedded change feed with its own checkpoint, the publisher
//! sending to a [`LocalBus`]. The bus file is fsynced before the publisher's checkpoint is
//! saved ([`BusSyncedCheckpoints`]), so a power cut loses no line of a checkpointed event.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use orders_store::{ChangeFeed, CheckpointStore, EventStore, ReadModelStore, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::feed::FeedConsumer;
use crate::local_bus::{self, LocalBus};
use crate::projector::Projector;
use crate::publisher::{Bus, Publisher, PublisherConfig};

/// The projector's checkpoint name.
pub const PROJECTOR_CONSUMER: &str = "projector";
/// The publisher's checkpoint name.
pub const PUBLISHER_CONSUMER: &str = "publisher";

/// Feed entries per batch locally: enough to absorb bursts (the projector works on up to
/// 16 orders of a batch at once), few enough that a batch stays quick.
pub const LOCAL_BATCH_SIZE: usize = 500;

/// Runs the projector and the publisher in-process, each tailing `store`'s change feed from
/// its own checkpoint ([`PROJECTOR_CONSUMER`], [`PUBLISHER_CONSUMER`]); the publisher sends
/// to `bus` with `Source` = `bus_source`, and fsyncs the bus file before each save of its
/// checkpoint.
///
/// Both stop when `shutdown` becomes `true` (or its sender is dropped): each finishes its
/// batch in hand and saves its checkpoint. Await the handles to know they have; each
/// returns its final checkpoint.
///
/// `store` must share its connections with the store the command side appends through (a
/// clone of it), so that its appends wake the consumers at once.
pub fn spawn_local_consumers<S>(
    store: S,
    bus: LocalBus,
    bus_source: String,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<u64>>
where
    S: EventStore + ReadModelStore + ChangeFeed + CheckpointStore + 'static,
{
    let store = Arc::new(store);
    let projector = Projector::new(store.clone(), store.clone());
    let publisher_checkpoints = Arc::new(BusSyncedCheckpoints {
        bus: bus.clone(),
        checkpoints: store.clone(),
    });
    let publisher = Publisher::new(
        Arc::new(bus) as Arc<dyn Bus>,
        PublisherConfig {
            bus_source,
            // One call at a time: the file's lines are in send order, each order's events in
            // version order (as with any setting) and the orders interleaved as sent.
            max_concurrent_batches: 1,
            ..PublisherConfig::default()
        },
    );
    let projector_consumer = FeedConsumer::new(
        PROJECTOR_CONSUMER,
        store.clone(),
        store.clone(),
        LOCAL_BATCH_SIZE,
    );
    let publisher_consumer = FeedConsumer::new(
        PUBLISHER_CONSUMER,
        store,
        publisher_checkpoints,
        LOCAL_BATCH_SIZE,
    );
    vec![
        tokio::spawn(projector_consumer.run(projector, stopped(shutdown.clone()))),
        tokio::spawn(publisher_consumer.run(publisher, stopped(shutdown))),
    ]
}

/// Something whose accepted writes can be made durable: the local bus file.
#[async_trait]
pub(crate) trait Durable: Send + Sync {
    async fn sync(&self) -> io::Result<()>;
}

#[async_trait]
impl Durable for LocalBus {
    async fn sync(&self) -> io::Result<()> {
        LocalBus::sync(self).await
    }
}

/// The publisher's checkpoints: the bus is fsynced before each save. Without it a power cut
/// could lose bus lines whose checkpoint survived (SQLite fsyncs its commits), and the
/// publisher would never resend them. With it, only lines past the checkpoint can be lost,
/// and those are resent: at-least-once, at the cost of one fsync per batch of the feed.
pub(crate) struct BusSyncedCheckpoints<B, C> {
    pub(crate) bus: B,
    pub(crate) checkpoints: Arc<C>,
}

#[async_trait]
impl<B: Durable, C: CheckpointStore> CheckpointStore for BusSyncedCheckpoints<B, C> {
    async fn load_checkpoint(&self, consumer: &str) -> Result<u64, StoreError> {
        self.checkpoints.load_checkpoint(consumer).await
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.bus
            .sync()
            .await
            .map_err(|err| StoreError::Unavailable {
                reason: format!("cannot fsync the bus file: {err}"),
                retry_after: Duration::from_secs(1),
            })?;
        self.checkpoints.save_checkpoint(consumer, position).await
    }
}

/// Resolves once the flag is `true` or nobody can set it any more.
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Everything `orders serve` needs from this crate: the [`LocalBus`] on `bus_file`, the two
/// consumers, and the `GET /local/bus` router. `cli/src/serve.rs` is the real use; in short:
///
/// ```text
/// let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
/// let local = LocalRuntime::start(&store, &bus_file, source, stop_rx).await?;
/// let app = api_router(..).merge(local.bus_router());
/// // ... serve until Ctrl-C ...
/// stop_tx.send(true)?;
/// local.stop().await;
/// ```
pub struct LocalRuntime {
    bus: LocalBus,
    consumers: Vec<JoinHandle<u64>>,
}

impl LocalRuntime {
    /// Opens (creating if needed) the bus file and starts the consumers on clones of `store`.
    pub async fn start<S>(
        store: &S,
        bus_file: &Path,
        bus_source: String,
        shutdown: watch::Receiver<bool>,
    ) -> io::Result<Self>
    where
        S: EventStore + ReadModelStore + ChangeFeed + CheckpointStore + Clone + 'static,
    {
        let bus = LocalBus::open(bus_file).await?;
        let consumers = spawn_local_consumers(store.clone(), bus.clone(), bus_source, shutdown);
        Ok(Self { bus, consumers })
    }

    pub fn bus(&self) -> &LocalBus {
        &self.bus
    }

    /// `GET /local/bus`, the live Server-Sent Events feed of the bus entries.
    pub fn bus_router(&self) -> Router {
        local_bus::router(self.bus.clone())
    }

    /// Waits until both consumers have stopped and saved their checkpoints. Set the
    /// `shutdown` flag first, or this waits forever.
    pub async fn stop(self) {
        for consumer in self.consumers {
            if let Err(error) = consumer.await {
                tracing::error!(%error, "a change-feed consumer failed");
            }
        }
    }
}

#[cfg(test)]
mod tests;
