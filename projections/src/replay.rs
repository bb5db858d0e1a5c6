//! The replay engine behind `orders replay`: rebuilds the read model from the event store, or
//! checks it against the event store without writing (DESIGN §6).
//!
//! Two passes, each over `segments` disjoint parts read in parallel:
//! 1. **Events to views.** Each part of the event log is scanned page by page and folded as it
//!    streams ([`runs`]): one order in memory per part, whatever the table's size. Finished
//!    orders are settled in batches: one read of their stored views, a judgement of each
//!    ([`judge`]), then one batched conditional write (SQLite: one transaction; DynamoDB:
//!    concurrent conditional `PutItem`s). Scanning the next page overlaps settling the
//!    last batch, through a channel of at most two batches.
//! 2. **Orphan views.** Each part of the read model is scanned for views whose order has no
//!    events, which are reported, or deleted on condition of their version.
//!
//! **What is compared.** A stored view is judged whole against the fold, as the store reads it:
//! the view its listings filter and sort by and its write conditions test. On DynamoDB the GSI
//! keys are the item's own attributes; on SQLite the index columns override the JSON they
//! duplicate (see `orders_store`'s SQLite read model). So an index column or key attribute
//! edited by hand is a difference like any other, and the write that mends it rewrites the
//! whole view.
//!
//! **Beside the live projector.** Every write is conditional on the version the engine read, so
//! neither overwrites the other's newer view. Whatever a batch cannot settle at once (a stored
//! view newer than the scan, a lost condition) is settled one order at a time from fresh reads:
//! the stored view first, then the order's events, so a view can never be newer than events
//! loaded after it. `--verify` confirms every difference the same way before reporting it, so a
//! projector catching up during the scan is not mistaken for drift.
//!
//! **Interruption.** A part's position advances only when a batch is settled, to the key of its
//! last order's last event; positions, counts and the first differences are saved in a
//! [`Checkpoint`] every few seconds and when the run stops. A resumed scan starts with the next
//! whole order (the one in progress when it stopped is done again: writes are idempotent).
//!
//! **Where things are.** Here: a run's start, end and bookkeeping. [`config`]: what a run is
//! asked to do; [`progress`]: its live counts; [`passes`]: the two passes; [`runs`]: the
//! streaming fold; [`settle`]: settling orders against their views, in batches and one at a
//! time; [`judge`]: how a view compares with its fold; [`checkpoint`]: what is saved.

mod checkpoint;
mod config;
mod judge;
mod passes;
mod progress;
mod runs;
mod settle;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use orders_domain::OrderId;
use orders_store::{EventScan, EventStore, ReadModelScan, ReadModelStore, StoreError};
use thiserror::Error;
use tokio::sync::watch;

pub use self::checkpoint::{Checkpoint, DriftCounts, Position, Tally};
pub use self::config::{Mode, ReplayConfig};
pub use self::judge::{Drift, DriftKind};
pub use self::progress::{Phase, Progress};
use self::settle::Settled;

/// Everything a replay reads and writes: one backend's event store and read model.
pub trait ReplayStore: EventStore + EventScan + ReadModelStore + ReadModelScan {}
impl<T: EventStore + EventScan + ReadModelStore + ReadModelScan> ReplayStore for T {}

#[derive(Debug, Error)]
pub enum ReplayError {
    /// The store failed after its own retries. The checkpoint holds what was settled.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot save the checkpoint {path}: {source}")]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a replay task failed: {0}")]
    Task(String),
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Counts and first differences, including those of the runs this one resumed.
    pub checkpoint: Checkpoint,
    /// Stopped before the end (the checkpoint is saved for `--resume`).
    pub interrupted: bool,
    /// This invocation's duration and events folded, for its rate.
    pub elapsed: Duration,
    pub events_this_run: u64,
}

/// A replay run. Cheap to clone; its parts run as tasks of their own.
#[derive(Clone)]
pub struct Replay {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ReplayStore>,
    config: ReplayConfig,
    progress: Arc<Progress>,
    /// The checkpoint as batches settle; saved from here.
    state: Mutex<Checkpoint>,
    /// Since when, and how many events, the rate ceiling has counted.
    paced: Mutex<(Instant, u64)>,
}

impl Replay {
    /// Plans a new run (splitting the scan into parts), or takes up `resume`'s. `run` names the
    /// run for its checkpoint (see [`Checkpoint::run`]); a resumed checkpoint must carry the
    /// same name.
    pub async fn start(
        store: Arc<dyn ReplayStore>,
        config: ReplayConfig,
        run: String,
        resume: Option<Checkpoint>,
    ) -> Result<Self, ReplayError> {
        let progress = Arc::new(Progress::default());
        let checkpoint = match resume {
            Some(checkpoint) => checkpoint,
            None if config.order.is_some() => Checkpoint::new(run, Vec::new()),
            None => Checkpoint::new(run, store.plan_scan(config.segments.max(1)).await?),
        };
        if config.order.is_none() {
            // A progress estimate only; a backend that cannot tell leaves the ETA out.
            match store.estimated_events().await {
                Ok(estimate) => progress.set_estimate(estimate),
                Err(err) => tracing::warn!(error = %err, "cannot estimate the event count"),
            }
        }
        // A resumed run counts on from where it stopped.
        progress.count_events(checkpoint.tally.events);
        progress.count_views(checkpoint.tally.views_checked);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                config,
                progress,
                state: Mutex::new(checkpoint),
                paced: Mutex::new((Instant::now(), 0)),
            }),
        })
    }

    pub fn progress(&self) -> Arc<Progress> {
        self.inner.progress.clone()
    }

    /// Runs to the end, or until `stop` turns true (then the parts finish the batches they
    /// have read, and the checkpoint is saved). On a store error the checkpoint is saved too,
    /// and the error returned.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<Outcome, ReplayError> {
        let started = Instant::now();
        let events_before = self.snapshot().tally.events;
        let result = match self.inner.config.order {
            Some(order_id) => self.run_one(order_id).await,
            None => self.run_passes(stop.clone()).await,
        };
        let checkpoint = self.snapshot();
        let interrupted = !checkpoint.is_done() && self.inner.config.order.is_none();
        if result.is_err() || interrupted {
            self.save(&checkpoint)?;
        } else if let Some(path) = &self.inner.config.checkpoint_file {
            // Finished: nothing left to resume.
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "cannot remove the checkpoint")
                }
            }
        }
        result?;
        self.inner.progress.set_phase(Phase::Done);
        Ok(Outcome {
            events_this_run: checkpoint.tally.events - events_before,
            checkpoint,
            interrupted,
            elapsed: started.elapsed(),
        })
    }

    /// Counts `events` against the rate ceiling and waits until they are due.
    async fn pace(&self, events: usize) {
        let Some(rate) = self.inner.config.max_events_per_second else {
            return;
        };
        let due = {
            let mut paced = self
                .inner
                .paced
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            paced.1 += events as u64;
            paced.0 + Duration::from_secs_f64(paced.1 as f64 / f64::from(rate.max(1)))
        };
        tokio::time::sleep_until(due.into()).await;
    }

    fn snapshot(&self) -> Checkpoint {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn save(&self, checkpoint: &Checkpoint) -> Result<(), ReplayError> {
        let Some(path) = &self.inner.config.checkpoint_file else {
            return Ok(());
        };
        checkpoint
            .save(path)
            .map_err(|source| ReplayError::Checkpoint {
                path: path.clone(),
                source,
            })
    }

    /// `--order`: the one order, from a load, with the same judgement as a full run.
    async fn run_one(&self, order_id: OrderId) -> Result<(), ReplayError> {
        self.inner.progress.set_phase(Phase::Events);
        let events = self.inner.store.load(order_id, None).await?.len() as u64;
        let mut settled = self.reconcile(order_id).await?;
        if events > 0 {
            settled.tally.orders += 1;
            settled.tally.events += events;
            self.inner.progress.count_events(events);
        }
        self.record(settled, |_| {});
        Ok(())
    }

    /// Records a settled batch: counts, first differences, and (through `advance`) the part's
    /// position.
    fn record(&self, settled: Settled, advance: impl FnOnce(&mut Checkpoint)) {
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.tally.add(&settled.tally);
        let room = self
            .inner
            .config
            .max_drifts
            .saturating_sub(state.drifts.len());
        state.drifts.extend(settled.drifts.into_iter().take(room));
        advance(&mut state);
    }
}
