//! The projector: folds stored events into the read model, one [`OrderView`] per order.
//!
//! Delivery is at-least-once and unordered (stream retries, parallel shards, replays running
//! beside the live projector), so every write is conditional on the view's version (DESIGN §6).
//! An event at version `v` meets the stored view at version `w` (0 when there is none):
//!
//! - `v <= w`: already in the view; a duplicate, nothing to do.
//! - `v == w + 1`: fold it into the view ([`orders_store::fold_event`] onto
//!   [`OrderView::into_state`]) and write with the condition "still at `w`" ("no view yet" for
//!   `w == 0`).
//! - `v > w + 1`: a gap (an earlier event is late or lost). Heal it: load the order's events
//!   from the event store, fold them from empty ([`orders_store::fold`], which refuses a
//!   history that skips a version), and write the result if it is newer.
//!
//! A lost write condition means another writer moved the view: re-read and decide again, a
//! bounded number of times.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use orders_domain::{OrderId, OrderState};
use orders_store::{
    ConditionalPut, EventStore, FoldError, OrderView, PutOutcome, ReadModelStore, StoreError,
    StoredEvent, check_decodes, fold, fold_event,
};
use thiserror::Error;

/// How many times a write that lost its condition is re-read and retried.
pub const MAX_WRITE_ATTEMPTS: u32 = 5;
/// How many orders [`Projector::apply_batch`] works on at once.
pub const ORDER_CONCURRENCY: usize = 16;

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The view already included the event (`v <= w`).
    Duplicate,
    /// The event was folded into the view, which is now at its version.
    Applied,
    /// There was a gap: the view was rebuilt from the event store and is now at `version`
    /// (at least the event's).
    Healed { version: u64 },
    /// The order's events so far do not create it (e.g. an unknown event type came first), so
    /// there is no view to write yet. The next event heals from the event store.
    NoView,
}

#[derive(Debug, Error)]
pub enum ProjectionError {
    /// The order's stored events do not fold: an undecodable payload (never skipped: on AWS it
    /// ends in the on-failure destination; locally the consumer stops at it and logs), or a
    /// history that is not `1, 2, 3, ...`.
    #[error(transparent)]
    Fold(#[from] FoldError),
    /// Other writers kept moving the view; a later retry will see it settle.
    #[error(
        "event {version} of order {order_id}: the view kept changing under us ({attempts} attempts)"
    )]
    Contended {
        order_id: OrderId,
        version: u64,
        attempts: u32,
    },
    /// The event store returned fewer events than the event being healed implies (e.g. a
    /// replica that has not caught up). Retrying later resolves it.
    #[error(
        "order {order_id}: healing event {version}, but the event store holds only {loaded} events"
    )]
    StoreBehind {
        order_id: OrderId,
        version: u64,
        loaded: u64,
    },
    /// Not tried, because an earlier event of the same order in the batch failed: the order's
    /// events are applied in version order.
    #[error(
        "event {version} of order {order_id} not attempted: an earlier event of the order failed"
    )]
    NotAttempted { order_id: OrderId, version: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The results of [`Projector::apply_batch`], one per input event, in input order.
#[derive(Debug)]
pub struct BatchOutcome {
    pub results: Vec<Result<Applied, ProjectionError>>,
}

impl BatchOutcome {
    /// The input index of the first event that did not succeed: where a retry must resume
    /// (the Lambda partial batch response reports this record's sequence number).
    pub fn first_failure(&self) -> Option<usize> {
        self.results.iter().position(Result::is_err)
    }

    pub fn is_success(&self) -> bool {
        self.first_failure().is_none()
    }

    /// The failed events' input indexes and errors, in input order.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &ProjectionError)> {
        self.results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
    }
}

/// Folds events into the read model. Cheap to clone; safe to run many at once.
#[derive(Clone)]
pub struct Projector {
    events: Arc<dyn EventStore>,
    views: Arc<dyn ReadModelStore>,
}

impl Projector {
    /// `events` is only read, to heal gaps.
    pub fn new(events: Arc<dyn EventStore>, views: Arc<dyn ReadModelStore>) -> Self {
        Self { events, views }
    }

    /// Applies one event to its order's view (see the module docs for the rules).
    pub async fn apply(&self, event: &StoredEvent) -> Result<Applied, ProjectionError> {
        let (order_id, v) = (event.order_id, event.version);
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let stored = self.views.get(order_id).await?;
            let w = stored.as_ref().map_or(0, |view| view.version);
            // An undecodable event fails wherever it stands, a duplicate included; the fold
            // decodes it on the `w + 1` path, so it is decoded once per attempt there too.
            let (state, applied) = if v <= w {
                check_decodes(event)?;
                return Ok(Applied::Duplicate);
            } else if v == w + 1 {
                let mut state = stored.map_or_else(OrderState::default, OrderView::into_state);
                fold_event(&mut state, event)?;
                (state, Applied::Applied)
            } else {
                check_decodes(event)?;
                let state = self.fold_history(event).await?;
                let version = state.version;
                (state, Applied::Healed { version })
            };
            let Some(view) = OrderView::from_state(order_id, state) else {
                return Ok(Applied::NoView);
            };
            let expected = (w > 0).then_some(w);
            match self.views.put(&view, expected).await? {
                PutOutcome::Written => {
                    tracing::debug!(
                        orderId = %order_id,
                        correlationId = %event.metadata.correlation_id,
                        version = v,
                        view_version = view.version,
                        outcome = ?applied,
                        "event projected"
                    );
                    return Ok(applied);
                }
                PutOutcome::VersionMismatch => {
                    tracing::debug!(
                        orderId = %order_id,
                        correlationId = %event.metadata.correlation_id,
                        version = v,
                        "view moved concurrently; re-reading"
                    );
                }
            }
        }
        Err(ProjectionError::Contended {
            order_id,
            version: v,
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// The order's state from its full history in the event store: the healed view.
    async fn fold_history(&self, event: &StoredEvent) -> Result<OrderState, ProjectionError> {
        let order_id = event.order_id;
        let history = self.events.load(order_id, None).await?;
        let state = fold(OrderState::default(), &history)?;
        if state.version < event.version {
            return Err(ProjectionError::StoreBehind {
                order_id,
                version: event.version,
                loaded: state.version,
            });
        }
        Ok(state)
    }

    /// Applies a batch: different orders concurrently, each order's events in version order.
    /// After an event fails, its order's later events are not attempted
    /// ([`ProjectionError::NotAttempted`]); other orders carry on.
    ///
    /// The common case (each order's events continue its view) takes two round trips for the
    /// whole batch: one [`ReadModelStore::get_many`], the folds in memory, one
    /// [`ReadModelStore::put_many`] with each view's own version condition. Whatever that
    /// cannot settle (a gap, an undecodable event, a condition lost to another writer, a store
    /// error) goes through [`Projector::apply`] one event at a time, which heals, retries and
    /// reports errors exactly as for a single event.
    pub async fn apply_batch(&self, events: &[StoredEvent]) -> BatchOutcome {
        let mut by_order: HashMap<OrderId, Vec<usize>> = HashMap::new();
        for (i, event) in events.iter().enumerate() {
            by_order.entry(event.order_id).or_default().push(i);
        }
        let mut groups: Vec<Vec<usize>> = by_order.into_values().collect();
        for indexes in &mut groups {
            indexes.sort_by_key(|&i| events[i].version);
        }
        let mut results: Vec<Option<Result<Applied, ProjectionError>>> =
            events.iter().map(|_| None).collect();

        let slow = match self
            .fold_in_memory(events, groups, &mut results, ViewReads::SkipNew)
            .await
        {
            Ok(FastPath { mut slow, unread }) if !unread.is_empty() => {
                // Views that existed after all (a redelivery): once more, reading them.
                match self
                    .fold_in_memory(events, unread, &mut results, ViewReads::All)
                    .await
                {
                    Ok(again) => slow.extend(again.slow.into_iter().chain(again.unread)),
                    Err(FastPathFailed(groups)) => slow.extend(groups),
                }
                slow
            }
            Ok(FastPath { slow, .. }) => slow,
            Err(FastPathFailed(groups)) => groups,
        };
        let per_order = futures::stream::iter(slow)
            .map(|indexes| self.apply_in_order(events, indexes))
            .buffer_unordered(ORDER_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for (i, result) in per_order.into_iter().flatten() {
            results[i] = Some(result);
        }
        BatchOutcome {
            results: results
                .into_iter()
                .map(|r| r.expect("every event belongs to exactly one order group"))
                .collect(),
        }
    }

    /// The batched fast path. Settles what it can in `results` and returns, per order, the
    /// events (in version order) left for [`Projector::apply_in_order`], and those whose view
    /// it did not read and found to exist.
    async fn fold_in_memory(
        &self,
        events: &[StoredEvent],
        groups: Vec<Vec<usize>>,
        results: &mut [Option<Result<Applied, ProjectionError>>],
        reads: ViewReads,
    ) -> Result<FastPath, FastPathFailed> {
        let unread = |first: &StoredEvent| reads == ViewReads::SkipNew && first.version == 1;
        let order_ids: Vec<OrderId> = groups
            .iter()
            .map(|g| &events[g[0]])
            .filter(|first| !unread(first))
            .map(|first| first.order_id)
            .collect();
        let read = if order_ids.is_empty() {
            Ok(HashMap::new())
        } else {
            self.views.get_many(&order_ids).await
        };
        let mut stored = match read {
            Ok(stored) => stored,
            Err(error) => {
                tracing::debug!(%error, "batched read failed; applying one event at a time");
                return Err(FastPathFailed(groups));
            }
        };
        let mut slow = Vec::new();
        let mut unread_but_there = Vec::new();
        // Per written view: its put, the events it covers (then those left after them), and
        // whether the view was left unread.
        let mut puts = Vec::new();
        let mut covered: Vec<(Vec<usize>, Vec<usize>, bool)> = Vec::new();
        for indexes in groups {
            let order_id = events[indexes[0]].order_id;
            let base = stored.remove(&order_id);
            let w = base.as_ref().map_or(0, |view| view.version);
            let mut state = base.map_or_else(OrderState::default, OrderView::into_state);
            let mut folded = Vec::new();
            let mut rest = Vec::new();
            for (k, &i) in indexes.iter().enumerate() {
                let event = &events[i];
                // Checked even for a duplicate, as `apply` does: an undecodable event is an
                // error wherever it stands.
                let duplicate = event.version <= state.version;
                let step = if duplicate {
                    check_decodes(event)
                } else {
                    fold_event(&mut state, event)
                };
                match step {
                    Ok(()) if duplicate => results[i] = Some(Ok(Applied::Duplicate)),
                    Ok(()) => folded.push(i),
                    // Undecodable, or a gap (healing loads the order from the event store):
                    // `apply` takes the order from this event on.
                    Err(_) => {
                        rest = indexes[k..].to_vec();
                        break;
                    }
                }
            }
            if folded.is_empty() {
                if !rest.is_empty() {
                    slow.push(rest);
                }
                continue;
            }
            match OrderView::from_state(order_id, state) {
                Some(view) => {
                    let expected_version = (w > 0).then_some(w);
                    puts.push(ConditionalPut {
                        view,
                        expected_version,
                    });
                    covered.push((folded, rest, unread(&events[indexes[0]])));
                }
                None => {
                    for i in folded {
                        results[i] = Some(Ok(Applied::NoView));
                    }
                    if !rest.is_empty() {
                        slow.push(rest);
                    }
                }
            }
        }
        let outcomes = match self.views.put_many(&puts).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::debug!(%error, "batched write failed; applying one event at a time");
                vec![PutOutcome::VersionMismatch; puts.len()]
            }
        };
        for ((put, outcome), (folded, rest, was_unread)) in puts.iter().zip(outcomes).zip(covered) {
            if outcome == PutOutcome::Written {
                for &i in &folded {
                    let event = &events[i];
                    tracing::debug!(
                        orderId = %event.order_id,
                        correlationId = %event.metadata.correlation_id,
                        version = event.version,
                        view_version = put.view.version,
                        "event projected"
                    );
                    results[i] = Some(Ok(Applied::Applied));
                }
                if !rest.is_empty() {
                    slow.push(rest);
                }
            } else if was_unread {
                unread_but_there.push(folded.into_iter().chain(rest).collect());
            } else {
                // Another writer moved the view: redo this order's events one by one.
                slow.push(folded.into_iter().chain(rest).collect());
            }
        }
        Ok(FastPath {
            slow,
            unread: unread_but_there,
        })
    }

    /// One order's events, in version order, one at a time; the events after a failure are
    /// not attempted.
    async fn apply_in_order(
        &self,
        events: &[StoredEvent],
        indexes: Vec<usize>,
    ) -> Vec<(usize, Result<Applied, ProjectionError>)> {
        let mut results = Vec::with_capacity(indexes.len());
        let mut failed = false;
        for i in indexes {
            let event = &events[i];
            let result = if failed {
                Err(ProjectionError::NotAttempted {
                    order_id: event.order_id,
                    version: event.version,
                })
            } else {
                self.apply(event).await
            };
            if let Err(error) = &result
                && !failed
            {
                failed = true;
                tracing::warn!(
                    orderId = %event.order_id,
                    correlationId = %event.metadata.correlation_id,
                    version = event.version,
                    eventId = %event.event_id,
                    %error,
                    "event not projected"
                );
            }
            results.push((i, result));
        }
        results
    }
}

/// The batched read failed: every order goes the one-event-at-a-time way.
struct FastPathFailed(Vec<Vec<usize>>);

/// What the fast path left: orders for the one-event-at-a-time way, and orders whose view it
/// did not read (their events start at version 1) but found to exist (a redelivery).
struct FastPath {
    slow: Vec<Vec<usize>>,
    unread: Vec<Vec<usize>>,
}

/// Which views the fast path reads. An order whose events start at version 1 has no view yet,
/// as a rule: reading it would find nothing and be billed all the same (0.5 RRU). When one
/// exists after all (the stream redelivered the event), its conditional put fails, and the
/// fast path runs once more for those orders, reading their views.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ViewReads {
    SkipNew,
    All,
}

#[cfg(test)]
mod tests;
