//! The projections of `orders serve`: the projector and the publisher in-process, each a
//! [`FeedConsumer`] of the embedded change feed with its own checkpoint, the publisher
//! sending to a [`LocalBus`].

use std::io;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use orders_store::{ChangeFeed, CheckpointStore, EventStore, ReadModelStore};
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
/// to `bus` with `Source` = `source`.
///
/// Both stop when `shutdown` becomes `true` (or its sender is dropped): each finishes its
/// batch in hand and saves its checkpoint. Await the handles to know they have; each
/// returns its final checkpoint.
///
/// `store` must share its connections with the store the command side appends through (a
/// clone of it), so that its appends wake the consumers at once.
pub fn spawn_local_consumers<S>(
    store: S,
    bus: Arc<dyn Bus>,
    source: String,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<u64>>
where
    S: EventStore + ReadModelStore + ChangeFeed + CheckpointStore + 'static,
{
    let store = Arc::new(store);
    let projector = Projector::new(store.clone(), store.clone());
    let publisher = Publisher::new(
        bus,
        PublisherConfig {
            source,
            // One call at a time: the file's lines are in send order, each order's events in
            // version order (as with any setting) and the orders interleaved as sent.
            max_concurrent_batches: 1,
            ..PublisherConfig::default()
        },
    );
    let consumer = |name| FeedConsumer::new(name, store.clone(), store.clone(), LOCAL_BATCH_SIZE);
    vec![
        tokio::spawn(consumer(PROJECTOR_CONSUMER).run(projector, stopped(shutdown.clone()))),
        tokio::spawn(consumer(PUBLISHER_CONSUMER).run(publisher, stopped(shutdown))),
    ]
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
        source: String,
        shutdown: watch::Receiver<bool>,
    ) -> io::Result<Self>
    where
        S: EventStore + ReadModelStore + ChangeFeed + CheckpointStore + Clone + 'static,
    {
        let bus = LocalBus::open(bus_file).await?;
        let consumers =
            spawn_local_consumers(store.clone(), Arc::new(bus.clone()), source, shutdown);
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
