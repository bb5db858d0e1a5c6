//! The two passes of a full run, each over every part of the scan in parallel: events to
//! views (scan, fold, settle in batches), then orphan views. The checkpoint is saved every
//! few seconds meanwhile.

use std::time::Duration;

use orders_domain::OrderId;
use tokio::sync::{mpsc, watch};

use super::runs::{Finished, OrderRuns};
use super::settle::Settled;
use super::{Phase, Position, Replay, ReplayError};

/// How often the checkpoint file is rewritten during a run.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// A batch of finished orders from one part's scan.
struct Batch {
    orders: Vec<Finished>,
    /// The part is read to its end: settling this batch finishes it.
    last: bool,
}

impl Replay {
    /// Both passes over every part, saving the checkpoint every few seconds.
    pub(super) async fn run_passes(&self, stop: watch::Receiver<bool>) -> Result<(), ReplayError> {
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
                self.inner.progress.count_events(page.items.len() as u64);
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
            self.inner.progress.count_views(page.items.len() as u64);
            let ids: Vec<OrderId> = page.items.iter().map(|view| view.order_id).collect();
            let with_events = store.orders_with_events(&ids).await?;
            let mut settled = Settled::default();
            settled.tally.views_checked = ids.len() as u64;
            let orphans = ids.iter().copied().filter(|id| !with_events.contains(id));
            self.reconcile_all(orphans, &mut settled).await?;
            done = page.next.is_none();
            after = page.next.or(after);
            self.record(settled, |state| {
                state.views[part] = Position { after, done };
            });
        }
        Ok(())
    }
}
