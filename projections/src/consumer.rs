//! What a consumer of stored events does with one batch: the projector folds it into the
//! read model, the publisher sends it to the bus. Both take the batch in store order and say
//! how far they got: on failure, the index of the first event not handled, every event before
//! it being done.
//!
//! The change-feed runner ([`FeedConsumer`](crate::feed::FeedConsumer)) calls this with the
//! feed's entries and moves its checkpoint to the last position before that index. The
//! Lambdas call it too, through [`crate::stream`], which decodes the stream records first and
//! maps the failed index to the record a partial batch response names. The stream poller
//! hands the Lambda payload to a [`StreamHandler`](crate::poller::StreamHandler), which every
//! `ConsumerHandler` is through that same [`crate::stream::consume`], so that it runs exactly
//! what the Lambdas run: this is the one trait a consumer implements.
//!
//! So the projector's metrics are recorded here, once for all three runtimes
//! ([`orders_lambda::metrics`]): the projection lag of each event whose view was written, gap
//! heals, and payloads that do not decode. The publisher records its own as the bus accepts or
//! refuses each entry ([`Publisher::publish`]).

use std::sync::Arc;

use async_trait::async_trait;
use orders_lambda::metrics;
use orders_store::{FoldError, StoredEvent};
use thiserror::Error;

use crate::projector::{Applied, ProjectionError, Projector};
use crate::publisher::Publisher;

/// A batch was handled only in part.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("event {first_failed} of the batch failed: {reason}")]
pub struct BatchFailure {
    /// The index of the first event not handled; all before it were.
    pub first_failed: usize,
    pub reason: String,
}

/// What a consumer does with each batch of stored events.
#[async_trait]
pub trait ConsumerHandler: Send + Sync {
    /// Handles events in store order. On failure, the events before `first_failed` count as
    /// done and the rest are delivered again.
    async fn handle(&self, events: &[StoredEvent]) -> Result<(), BatchFailure>;

    /// The `consumer` label of its metrics (`projector`, `publisher`).
    fn name(&self) -> &'static str {
        "consumer"
    }
}

#[async_trait]
impl<H: ConsumerHandler + ?Sized> ConsumerHandler for Arc<H> {
    async fn handle(&self, events: &[StoredEvent]) -> Result<(), BatchFailure> {
        (**self).handle(events).await
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

#[async_trait]
impl ConsumerHandler for Projector {
    async fn handle(&self, events: &[StoredEvent]) -> Result<(), BatchFailure> {
        let outcome = self.apply_batch(events).await;
        for (event, result) in events.iter().zip(&outcome.results) {
            match result {
                Ok(Applied::Applied) => metrics::projected(event.occurred_at.millis()),
                Ok(Applied::Healed { .. }) => {
                    metrics::gap_healed();
                    metrics::projected(event.occurred_at.millis());
                }
                Ok(Applied::Duplicate | Applied::NoView) => {}
                Err(ProjectionError::Fold(FoldError::Decode { .. })) => {
                    metrics::decode_failed(self.name())
                }
                Err(_) => {}
            }
        }
        match outcome.failures().next() {
            None => Ok(()),
            Some((first_failed, error)) => Err(BatchFailure {
                first_failed,
                reason: error.to_string(),
            }),
        }
    }

    fn name(&self) -> &'static str {
        "projector"
    }
}

#[async_trait]
impl ConsumerHandler for Publisher {
    async fn handle(&self, events: &[StoredEvent]) -> Result<(), BatchFailure> {
        self.publish(events).await.map_err(|error| BatchFailure {
            first_failed: error.first_failure(),
            reason: error.to_string(),
        })
    }

    fn name(&self) -> &'static str {
        "publisher"
    }
}
