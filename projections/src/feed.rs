//! The local runner: tails the embedded change feed for one named consumer, the way DynamoDB
//! Streams drives the Lambdas on AWS.
//!
//! A [`FeedConsumer`] loads its checkpoint (the last position it fully processed), then loops:
//! read the entries after the checkpoint, hand them to its [`ConsumerHandler`] (the projector
//! or the publisher, [`crate::consumer`]) as one batch, and move the checkpoint past what
//! succeeded. A failed event is never skipped: the checkpoint stops before it and the batch
//! is retried from there, with backoff, until it succeeds. So a restart resumes where the
//! last run stopped, and at worst repeats a batch, which both handlers tolerate (the
//! projector dedupes on version, bus subscribers on `eventId`).
//!
//! When caught up it sleeps until this process appends ([`ChangeFeed::watch_appends`]) or a
//! short poll interval passes (to see other processes' writes).

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use orders_store::retry::RetryPolicy;
use orders_store::{ChangeFeed, CheckpointStore, StoredEvent};

use crate::consumer::ConsumerHandler;

/// How often an idle consumer looks for other processes' appends.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One named consumer of the change feed.
pub struct FeedConsumer {
    name: String,
    feed: Arc<dyn ChangeFeed>,
    checkpoints: Arc<dyn CheckpointStore>,
    batch_size: usize,
    /// How often to look for appends by other processes while idle.
    poll_interval: Duration,
    /// The pauses between retries after an error; `max_attempts` is ignored: the consumer
    /// retries until it succeeds or is shut down.
    retry: RetryPolicy,
}

impl FeedConsumer {
    pub fn new(
        name: impl Into<String>,
        feed: Arc<dyn ChangeFeed>,
        checkpoints: Arc<dyn CheckpointStore>,
        batch_size: usize,
    ) -> Self {
        Self {
            name: name.into(),
            feed,
            checkpoints,
            batch_size: batch_size.max(1),
            poll_interval: DEFAULT_POLL_INTERVAL,
            retry: RetryPolicy::CONSUMER,
        }
    }

    /// Runs until `shutdown` resolves: then finishes the batch in hand, saves the checkpoint
    /// and returns it.
    pub async fn run(
        self,
        handler: impl ConsumerHandler,
        shutdown: impl Future<Output = ()>,
    ) -> u64 {
        let mut shutdown = pin!(shutdown);
        let consumer = self.name.as_str();
        let mut errors = 0;
        let mut checkpoint = loop {
            match self.checkpoints.load_checkpoint(consumer).await {
                Ok(position) => break position,
                Err(error) => {
                    errors += 1;
                    tracing::warn!(consumer, %error, "cannot load the checkpoint; retrying");
                    if self.pause(errors, shutdown.as_mut()).await {
                        return 0;
                    }
                }
            }
        };
        tracing::info!(consumer, checkpoint, "change-feed consumer started");
        let mut saved = checkpoint;
        let mut appends = self.feed.watch_appends();
        let mut watching = true;

        while shutdown.as_mut().now_or_never().is_none() {
            // Marked seen before reading, so that an append after the read wakes the wait.
            appends.borrow_and_update();
            let entries = match self.feed.read_after(checkpoint, self.batch_size).await {
                Ok(entries) => entries,
                Err(error) => {
                    errors += 1;
                    tracing::warn!(consumer, checkpoint, %error, "cannot read the change feed; retrying");
                    if self.pause(errors, shutdown.as_mut()).await {
                        break;
                    }
                    continue;
                }
            };
            if entries.is_empty() {
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => break,
                    changed = appends.changed(), if watching => {
                        // The sender is gone: fall back to polling alone.
                        watching = changed.is_ok();
                    }
                    () = tokio::time::sleep(self.poll_interval) => {}
                }
                continue;
            }

            let (positions, events): (Vec<u64>, Vec<StoredEvent>) =
                entries.into_iter().map(|e| (e.position, e.event)).unzip();
            match handler.handle(&events).await {
                Ok(()) => {
                    errors = 0;
                    checkpoint = *positions.last().expect("the batch is not empty");
                    self.save(checkpoint, &mut saved).await;
                }
                Err(failure) => {
                    // A nonsensical index from a handler counts as "nothing done".
                    let first_failed = if failure.first_failed < events.len() {
                        failure.first_failed
                    } else {
                        0
                    };
                    if first_failed > 0 {
                        checkpoint = positions[first_failed - 1];
                        self.save(checkpoint, &mut saved).await;
                    }
                    let event = &events[first_failed];
                    errors += 1;
                    tracing::error!(
                        consumer,
                        orderId = %event.order_id,
                        correlationId = %event.metadata.correlation_id,
                        version = event.version,
                        position = positions[first_failed],
                        reason = %failure.reason,
                        "batch failed; retrying from the failed event"
                    );
                    if self.pause(errors, shutdown.as_mut()).await {
                        break;
                    }
                }
            }
        }

        // A failure here only means a restart repeats some events, which is harmless.
        for attempt in 1..=3 {
            match self.checkpoints.save_checkpoint(consumer, checkpoint).await {
                Ok(()) => break,
                Err(error) if attempt < 3 => {
                    tracing::warn!(consumer, checkpoint, %error, "cannot save the final checkpoint; retrying");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                }
                Err(error) => {
                    tracing::error!(consumer, checkpoint, %error, "cannot save the final checkpoint")
                }
            }
        }
        tracing::info!(consumer, checkpoint, "change-feed consumer stopped");
        checkpoint
    }

    /// Saves a moved checkpoint. A failure is logged, not fatal: the position is kept in
    /// memory and saved with the next batch.
    async fn save(&self, checkpoint: u64, saved: &mut u64) {
        if checkpoint == *saved {
            return;
        }
        match self
            .checkpoints
            .save_checkpoint(&self.name, checkpoint)
            .await
        {
            Ok(()) => *saved = checkpoint,
            Err(error) => tracing::warn!(
                consumer = %self.name,
                checkpoint,
                %error,
                "cannot save the checkpoint; will try again"
            ),
        }
    }

    /// Waits out the backoff after `errors` consecutive errors. True if shut down meanwhile.
    async fn pause(&self, errors: u32, shutdown: Pin<&mut impl Future<Output = ()>>) -> bool {
        tokio::select! {
            () = shutdown => true,
            () = tokio::time::sleep(self.retry.delay(errors)) => false,
        }
    }
}

#[cfg(test)]
mod tests;
