//! Settling scanned orders against their stored views (see "Beside the live projector" in
//! the module docs of [`super`]): a batch at once, with one read of the stored views and one
//! batched conditional write, and what that cannot settle one order at a time from fresh reads
//! ([`Replay::reconcile`]).

use futures::StreamExt;
use orders_domain::{OrderId, OrderState};
use orders_store::{ConditionalPut, DeleteOutcome, OrderView, PutOutcome, StoreError, fold};

use super::judge::{Verdict, judge};
use super::runs::{Folded, Scanned};
use super::{Drift, DriftKind, Mode, Replay, Tally};
use crate::projector::{MAX_WRITE_ATTEMPTS, ProjectionError};

/// Orders settled one at a time (fresh reads) concurrently.
const ORDER_CONCURRENCY: usize = 16;

/// What settling some orders did, merged into the run's [`Tally`] when it is recorded.
#[derive(Default)]
pub(super) struct Settled {
    pub(super) tally: Tally,
    pub(super) drifts: Vec<Drift>,
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

impl Replay {
    /// Settles a batch of scanned orders (see the module docs).
    pub(super) async fn settle(&self, orders: Vec<Scanned>) -> Result<Settled, StoreError> {
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
        self.reconcile_all(recheck, &mut settled).await?;
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
    pub(super) async fn reconcile(&self, order_id: OrderId) -> Result<Settled, StoreError> {
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

    /// Reconciles each order, [`ORDER_CONCURRENCY`] at once, into `settled`.
    pub(super) async fn reconcile_all(
        &self,
        order_ids: impl IntoIterator<Item = OrderId>,
        settled: &mut Settled,
    ) -> Result<(), StoreError> {
        let reconciles: Vec<_> = order_ids.into_iter().map(|id| self.reconcile(id)).collect();
        let mut reconciles = futures::stream::iter(reconciles).buffer_unordered(ORDER_CONCURRENCY);
        while let Some(result) = reconciles.next().await {
            settled.merge(result?, self.inner.config.max_drifts);
        }
        Ok(())
    }
}

enum Action {
    Put(OrderView, Option<u64>),
    Delete(u64),
}
