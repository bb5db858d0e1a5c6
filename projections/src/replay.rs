//! The replay engine behind `orders replay`: rebuilds the read model from the event store, or
//! checks it against the event store without writing (DESIGN §6).
//!
//! Two passes, each over `segments` disjoint parts read in parallel:
//! 1. **Events to views.** Each part of the event log is scanned page by page and folded as it
//!    streams ([`runs`]): one order in memory per part, whatever the table's size. Finished
//!    orders are settled in batches: one read of their stored views, a judgement of each
//!    ([`judge`]), then one batched conditional write (SQLite: one transaction; DynamoDB:
//!    `TransactWriteItems` of 25 conditional puts). Scanning the next page overlaps settling the
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

mod checkpoint;
mod judge;
mod runs;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use orders_domain::{OrderId, OrderState};
use orders_store::{
    ConditionalPut, DeleteOutcome, EventScan, EventStore, OrderView, PutOutcome, ReadModelScan,
    ReadModelStore, StoreError, fold,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, watch};

pub use self::checkpoint::{Checkpoint, DriftCounts, Position, Tally};
pub use self::judge::{Drift, DriftKind};
use self::judge::{Verdict, judge};
use self::runs::{Finished, Folded, OrderRuns, Scanned};
use crate::projector::{MAX_WRITE_ATTEMPTS, ProjectionError};

/// Orders settled one at a time (fresh reads) concurrently.
const ORDER_CONCURRENCY: usize = 16;
/// How often the checkpoint file is rewritten during a run.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Everything a replay reads and writes: one backend's event store and read model.
pub trait ReplayStore: EventStore + EventScan + ReadModelStore + ReadModelScan {}
impl<T: EventStore + EventScan + ReadModelStore + ReadModelScan> ReplayStore for T {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Write the fold's views where they differ (and delete orphans).
    Rebuild,
    /// Write nothing; report the differences.
    Verify,
}

#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub mode: Mode,
    /// One order instead of all.
    pub order: Option<OrderId>,
    /// Parts read in parallel (at least 1).
    pub segments: u32,
    /// Items per scan page. With `batch_size`, this sets the memory a part holds: a page
    /// being folded and up to two batches waiting to be settled.
    pub page_size: usize,
    /// Orders per settled batch: one read of their views and one batched write.
    pub batch_size: usize,
    /// Differences kept in full (counts are kept for all).
    pub max_drifts: usize,
    /// Where the checkpoint is saved, if anywhere.
    pub checkpoint_file: Option<PathBuf>,
    /// A ceiling on events scanned per second over all parts, so that a replay on a live
    /// table leaves its capacity to the service.
    pub max_events_per_second: Option<u32>,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Rebuild,
            order: None,
            segments: 1,
            page_size: 500,
            batch_size: 250,
            max_drifts: 20,
            checkpoint_file: None,
            max_events_per_second: None,
        }
    }
}

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

/// Which pass a run is in, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Planning,
    Events,
    Views,
    Done,
}

/// Live counters for a progress display, updated as pages are read.
#[derive(Debug, Default)]
pub struct Progress {
    events: AtomicU64,
    views: AtomicU64,
    /// 0: unknown.
    estimate: AtomicU64,
    phase: AtomicU8,
}

impl Progress {
    /// Events scanned so far (counting those of resumed runs).
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Views read by the orphan pass so far.
    pub fn views(&self) -> u64 {
        self.views.load(Ordering::Relaxed)
    }

    /// The event store's approximate size, if known.
    pub fn estimated_events(&self) -> Option<u64> {
        Some(self.estimate.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Planning,
            1 => Phase::Events,
            2 => Phase::Views,
            _ => Phase::Done,
        }
    }

    fn set_phase(&self, phase: Phase) {
        let code = match phase {
            Phase::Planning => 0,
            Phase::Events => 1,
            Phase::Views => 2,
            Phase::Done => 3,
        };
        self.phase.store(code, Ordering::Relaxed);
    }
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

/// What settling some orders did, merged into the run's [`Tally`] when it is committed.
#[derive(Default)]
struct Settled {
    tally: Tally,
    drifts: Vec<Drift>,
}

impl Settled {
    fn drift(&mut self, drift: Drift, max: usize) {
        self.tally.count_drift(drift.kind);
        if self.drifts.len() < max {
            self.drifts.push(drift);
        }
    }

    fn merge(&mut self, other: Settled, max: usize) {
        self.tally.add(&other.tally);
        let room = max.saturating_sub(self.drifts.len());
        self.drifts.extend(other.drifts.into_iter().take(room));
    }

    fn fail(&mut self, order_id: OrderId, error: &dyn std::fmt::Display) {
        tracing::error!(orderId = %order_id, error = %error, "cannot replay the order");
        self.tally.failed += 1;
    }
}

/// A batch of finished orders from one part's scan.
struct Batch {
    orders: Vec<Finished>,
    /// The part is read to its end: settling this batch finishes it.
    last: bool,
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
                Ok(estimate) => progress
                    .estimate
                    .store(estimate.unwrap_or(0), Ordering::Relaxed),
                Err(err) => tracing::warn!(error = %err, "cannot estimate the event count"),
            }
        }
        progress
            .events
            .store(checkpoint.tally.events, Ordering::Relaxed);
        progress
            .views
            .store(checkpoint.tally.views_checked, Ordering::Relaxed);
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
            self.inner
                .progress
                .events
                .fetch_add(events, Ordering::Relaxed);
        }
        self.record(settled, |_| {});
        Ok(())
    }

    /// Both passes over every part, saving the checkpoint every few seconds.
    async fn run_passes(&self, stop: watch::Receiver<bool>) -> Result<(), ReplayError> {
        let parts = self.snapshot().segments.len();
        self.inner.progress.set_phase(Phase::Events);
        self.with_checkpoints((0..parts).map(|part| {
            let this = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move { this.events_pass(part, stop).await })
        }))
        .await?;
        if *stop.borrow() {
            return Ok(());
        }
        self.inner.progress.set_phase(Phase::Views);
        self.with_checkpoints((0..parts).map(|part| {
            let this = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move { this.views_pass(part, stop).await })
        }))
        .await
    }

    /// Waits for `tasks`, saving the checkpoint every [`CHECKPOINT_EVERY`] meanwhile.
    async fn with_checkpoints(
        &self,
        tasks: impl Iterator<Item = tokio::task::JoinHandle<Result<(), ReplayError>>>,
    ) -> Result<(), ReplayError> {
        let all = futures::future::try_join_all(tasks);
        tokio::pin!(all);
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                results = &mut all => {
                    let results = results.map_err(|err| ReplayError::Task(err.to_string()))?;
                    return results.into_iter().collect();
                }
                _ = tick.tick() => self.save(&self.snapshot())?,
            }
        }
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

    /// Pass 1 for one part: the scan and fold feed batches to the settler through a channel
    /// of two, so that reading overlaps writing and memory stays bounded.
    async fn events_pass(
        self,
        part: usize,
        stop: watch::Receiver<bool>,
    ) -> Result<(), ReplayError> {
        let (segment, position) = {
            let state = self.snapshot();
            (state.segments[part].clone(), state.events[part].clone())
        };
        if position.done {
            return Ok(());
        }
        let config = &self.inner.config;
        let (batches, mut settle_queue) = mpsc::channel::<Batch>(2);
        let scan = async {
            // Owned here, so that the settler's queue closes when the scan ends.
            let batches = batches;
            let mut runs = OrderRuns::default();
            let mut after = position.after;
            let mut orders = Vec::with_capacity(config.batch_size);
            loop {
                if *stop.borrow() {
                    return Ok::<_, ReplayError>(());
                }
                let page = self
                    .inner
                    .store
                    .scan_events(&segment, after, config.page_size)
                    .await?;
                self.inner
                    .progress
                    .events
                    .fetch_add(page.items.len() as u64, Ordering::Relaxed);
                self.pace(page.items.len()).await;
                for event in &page.items {
                    if let Some(finished) = runs.push(event) {
                        orders.push(finished);
                    }
                }
                let last = page.next.is_none();
                if last {
                    orders.extend(runs.finish());
                }
                if orders.len() >= config.batch_size || last {
                    let batch = Batch {
                        orders: std::mem::replace(
                            &mut orders,
                            Vec::with_capacity(config.batch_size),
                        ),
                        last,
                    };
                    if batches.send(batch).await.is_err() {
                        return Ok(()); // the settler failed; its error is the one to report
                    }
                }
                if last {
                    return Ok(());
                }
                after = page.next;
            }
        };
        let settle = async {
            while let Some(batch) = settle_queue.recv().await {
                let last_key = batch.orders.last().map(|finished| finished.last_key);
                let settled = self
                    .settle(batch.orders.into_iter().map(|f| f.scanned).collect())
                    .await?;
                self.record(settled, |state| {
                    let position = &mut state.events[part];
                    position.after = last_key.or(position.after);
                    position.done = batch.last;
                });
            }
            Ok::<_, ReplayError>(())
        };
        tokio::try_join!(scan, settle).map(drop)
    }

    /// Settles a batch of scanned orders (see the module docs).
    async fn settle(&self, orders: Vec<Scanned>) -> Result<Settled, StoreError> {
        let store = &self.inner.store;
        let max_drifts = self.inner.config.max_drifts;
        let verify = self.inner.config.mode == Mode::Verify;
        let mut settled = Settled::default();
        let mut folded = Vec::with_capacity(orders.len());
        let mut to_load = Vec::new();
        for order in orders {
            settled.tally.orders += 1;
            settled.tally.events += order.event_count();
            match order {
                Scanned::Folded(order) => folded.push(order),
                Scanned::NeedsLoad { order_id, .. } => to_load.push(order_id),
                Scanned::Failed {
                    order_id, error, ..
                } => settled.fail(order_id, &error),
            }
        }
        settled.tally.loaded += to_load.len() as u64;
        let loads: Vec<_> = to_load.into_iter().map(|id| self.load_folded(id)).collect();
        let mut loads = futures::stream::iter(loads).buffer_unordered(ORDER_CONCURRENCY);
        while let Some(load) = loads.next().await {
            match load {
                Ok(order) => folded.push(order),
                Err((_, ProjectionError::Store(err))) => return Err(err),
                Err((order_id, err)) => settled.fail(order_id, &err),
            }
        }
        drop(loads);

        let ids: Vec<OrderId> = folded.iter().map(|order| order.order_id).collect();
        let stored = store.get_many(&ids).await?;
        let mut recheck = Vec::new();
        let mut puts = Vec::new();
        // Per write: its order and kind, and its difference in full while the batch still
        // keeps full ones (building one costs two view copies and a comparison).
        let mut put_drifts: Vec<(OrderId, DriftKind, Option<Drift>)> = Vec::new();
        let mut deletes = Vec::new();
        for order in folded {
            let current = stored.get(&order.order_id);
            match judge(current, order.view.as_ref(), order.version) {
                Verdict::InSync => settled.tally.in_sync += 1,
                // A verify reports only what fresh reads confirm; a stored view newer than the
                // scan needs them to tell a live projector from a broken view.
                _ if verify => recheck.push(order.order_id),
                Verdict::StoredAhead => recheck.push(order.order_id),
                Verdict::Write {
                    kind,
                    view,
                    expected_version,
                } => {
                    let detail = (put_drifts.len() < max_drifts).then(|| {
                        Drift::new(kind, order.order_id, current, Some(&view), order.version)
                    });
                    put_drifts.push((order.order_id, kind, detail));
                    puts.push(ConditionalPut {
                        view,
                        expected_version,
                    });
                }
                Verdict::Delete { expected_version } => {
                    deletes.push((order.order_id, expected_version, current.cloned()));
                }
            }
        }
        if !puts.is_empty() {
            let outcomes = store.put_many(&puts).await?;
            for (outcome, (order_id, kind, detail)) in outcomes.into_iter().zip(put_drifts) {
                match outcome {
                    PutOutcome::Written => {
                        settled.tally.written += 1;
                        settled.tally.count_drift(kind);
                        if let Some(drift) = detail.filter(|_| settled.drifts.len() < max_drifts) {
                            settled.drifts.push(drift);
                        }
                    }
                    PutOutcome::VersionMismatch => recheck.push(order_id),
                }
            }
        }
        for (order_id, expected_version, current) in deletes {
            match store.delete(order_id, expected_version).await? {
                DeleteOutcome::Deleted => {
                    settled.tally.deleted += 1;
                    let drift =
                        Drift::new(DriftKind::OrphanView, order_id, current.as_ref(), None, 0);
                    settled.drift(drift, max_drifts);
                }
                DeleteOutcome::VersionMismatch => recheck.push(order_id),
            }
        }
        let rechecks: Vec<_> = recheck.into_iter().map(|id| self.reconcile(id)).collect();
        let mut rechecks = futures::stream::iter(rechecks).buffer_unordered(ORDER_CONCURRENCY);
        while let Some(result) = rechecks.next().await {
            settled.merge(result?, max_drifts);
        }
        Ok(settled)
    }

    /// An order folded from a load of its whole history.
    async fn load_folded(&self, order_id: OrderId) -> Result<Folded, (OrderId, ProjectionError)> {
        let history = self
            .inner
            .store
            .load(order_id, None)
            .await
            .map_err(|err| (order_id, err.into()))?;
        let state = fold(OrderState::default(), &history).map_err(|err| (order_id, err.into()))?;
        Ok(Folded::from_state(order_id, state, history.len() as u64))
    }

    /// Settles one order from fresh reads: the stored view, then the order's events, so that
    /// the view cannot reflect an event the load misses. A verify reports what it finds; a
    /// rebuild writes on condition of the version it read, and reads again if that lost.
    async fn reconcile(&self, order_id: OrderId) -> Result<Settled, StoreError> {
        let store = &self.inner.store;
        let max_drifts = self.inner.config.max_drifts;
        let mut settled = Settled::default();
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let stored = store.get(order_id).await?;
            let folded = match self.load_folded(order_id).await {
                Ok(folded) => folded,
                Err((_, ProjectionError::Store(err))) => return Err(err),
                Err((_, err)) => {
                    settled.fail(order_id, &err);
                    return Ok(settled);
                }
            };
            let verdict = match judge(stored.as_ref(), folded.view.as_ref(), folded.version) {
                Verdict::InSync => {
                    settled.tally.in_sync += 1;
                    return Ok(settled);
                }
                // Ahead of events loaded after it was read: the view claims versions that do
                // not exist. Mend it at its own version condition.
                Verdict::StoredAhead => {
                    let stored_version = stored.as_ref().map_or(0, |view| view.version);
                    match folded.view.clone() {
                        Some(view) => Verdict::Write {
                            kind: DriftKind::StaleVersion,
                            view,
                            expected_version: Some(stored_version),
                        },
                        None => Verdict::Delete {
                            expected_version: stored_version,
                        },
                    }
                }
                other => other,
            };
            let (kind, action) = match verdict {
                Verdict::Write {
                    kind,
                    view,
                    expected_version,
                } => (kind, Action::Put(view, expected_version)),
                Verdict::Delete { expected_version } => {
                    (DriftKind::OrphanView, Action::Delete(expected_version))
                }
                Verdict::InSync | Verdict::StoredAhead => unreachable!("settled above"),
            };
            let drift = Drift::new(
                kind,
                order_id,
                stored.as_ref(),
                folded.view.as_ref(),
                folded.version,
            );
            if self.inner.config.mode == Mode::Verify {
                settled.drift(drift, max_drifts);
                return Ok(settled);
            }
            let done = match &action {
                Action::Put(view, expected) => {
                    store.put(view, *expected).await? == PutOutcome::Written
                }
                Action::Delete(expected) => {
                    store.delete(order_id, *expected).await? == DeleteOutcome::Deleted
                }
            };
            if done {
                match action {
                    Action::Put(..) => settled.tally.written += 1,
                    Action::Delete(_) => settled.tally.deleted += 1,
                }
                settled.drift(drift, max_drifts);
                return Ok(settled);
            }
        }
        settled.fail(
            order_id,
            &format_args!("the view kept changing ({MAX_WRITE_ATTEMPTS} attempts)"),
        );
        Ok(settled)
    }

    /// Pass 2 for one part: views whose order has no events.
    async fn views_pass(self, part: usize, stop: watch::Receiver<bool>) -> Result<(), ReplayError> {
        let (segment, position) = {
            let state = self.snapshot();
            (state.segments[part].clone(), state.views[part].clone())
        };
        let config = &self.inner.config;
        let store = &self.inner.store;
        let mut after = position.after;
        let mut done = position.done;
        while !done && !*stop.borrow() {
            let page = store.scan_views(&segment, after, config.page_size).await?;
            self.inner
                .progress
                .views
                .fetch_add(page.items.len() as u64, Ordering::Relaxed);
            let ids: Vec<OrderId> = page.items.iter().map(|view| view.order_id).collect();
            let with_events = store.orders_with_events(&ids).await?;
            let mut settled = Settled::default();
            settled.tally.views_checked = ids.len() as u64;
            let orphans: Vec<_> = ids
                .iter()
                .filter(|id| !with_events.contains(id))
                .map(|&id| self.reconcile(id))
                .collect();
            let mut orphans = futures::stream::iter(orphans).buffer_unordered(ORDER_CONCURRENCY);
            while let Some(result) = orphans.next().await {
                settled.merge(result?, config.max_drifts);
            }
            drop(orphans);
            done = page.next.is_none();
            after = page.next.or(after);
            self.record(settled, |state| {
                state.views[part] = Position { after, done };
            });
        }
        Ok(())
    }
}

enum Action {
    Put(OrderView, Option<u64>),
    Delete(u64),
}
