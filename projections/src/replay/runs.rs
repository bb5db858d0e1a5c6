//! The streaming fold: scanned events in, one folded order out each time the scan moves on to
//! the next order. Only the order being folded is held in memory.
//!
//! A scan returns each order's events together and in version order (see
//! [`orders_store::EventScan`]), but the fold checks rather than trusts it: an order whose run
//! of events does not start at version 1 or skips a version (a scan resumed mid-order, a
//! backend that interleaves) is not folded from the scan. It is handed on as
//! [`Scanned::NeedsLoad`], and the engine folds it from a per-order load instead. An order
//! whose events come in two runs is then written twice, the second time from its full load:
//! wasted work, never a wrong view.

use orders_domain::{OrderId, OrderState};
use orders_store::{EventKey, FoldError, OrderView, StoredEvent, fold_event};

/// One order, as the scan left it.
#[derive(Debug)]
pub(super) enum Scanned {
    /// Folded from one contiguous run `1..=version`.
    Folded(Folded),
    /// The run was not contiguous from version 1: fold it from a load of the order.
    NeedsLoad { order_id: OrderId, event_count: u64 },
    /// An event does not decode: the order cannot be replayed.
    Failed {
        order_id: OrderId,
        event_count: u64,
        error: FoldError,
    },
}

#[derive(Debug)]
pub(super) struct Folded {
    pub order_id: OrderId,
    /// The version of the last event folded (0: none).
    pub version: u64,
    /// `None` when the events create no order.
    pub view: Option<OrderView>,
    /// How many events were folded.
    pub event_count: u64,
}

impl Folded {
    pub(super) fn from_state(order_id: OrderId, state: OrderState, event_count: u64) -> Self {
        Self {
            order_id,
            version: state.version,
            view: OrderView::from_state(order_id, state),
            event_count,
        }
    }
}

impl Scanned {
    pub(super) fn event_count(&self) -> u64 {
        match self {
            Scanned::Folded(folded) => folded.event_count,
            Scanned::NeedsLoad { event_count, .. } | Scanned::Failed { event_count, .. } => {
                *event_count
            }
        }
    }
}

/// A finished order, and the key of its last scanned event: a scan resumed after that key
/// starts with the next order.
#[derive(Debug)]
pub(super) struct Finished {
    pub scanned: Scanned,
    pub last_key: EventKey,
}

/// The order being folded.
struct Run {
    order_id: OrderId,
    state: OrderState,
    event_count: u64,
    last_key: EventKey,
    outcome: RunOutcome,
}

enum RunOutcome {
    Folding,
    NotContiguous,
    Failed(FoldError),
}

impl RunOutcome {
    /// The outcome of folding the run's next event (`Folding` until then).
    fn fold(state: &mut OrderState, event: &StoredEvent) -> Self {
        match fold_event(state, event) {
            Ok(()) => RunOutcome::Folding,
            Err(FoldError::BrokenHistory { .. }) => RunOutcome::NotContiguous,
            Err(error) => RunOutcome::Failed(error),
        }
    }
}

#[derive(Default)]
pub(super) struct OrderRuns {
    current: Option<Run>,
}

impl OrderRuns {
    /// Folds `event` into its order's run. Returns the previous order once `event` starts
    /// another one.
    pub(super) fn push(&mut self, event: &StoredEvent) -> Option<Finished> {
        let key = EventKey::of(event);
        if let Some(run) = self
            .current
            .as_mut()
            .filter(|run| run.order_id == key.order_id)
        {
            run.event_count += 1;
            run.last_key = key;
            if matches!(run.outcome, RunOutcome::Folding) {
                run.outcome = RunOutcome::fold(&mut run.state, event);
            }
            return None;
        }
        let finished = self.finish();
        // From the empty state, so a run must start at version 1.
        let mut state = OrderState::default();
        let outcome = RunOutcome::fold(&mut state, event);
        self.current = Some(Run {
            order_id: key.order_id,
            state,
            event_count: 1,
            last_key: key,
            outcome,
        });
        finished
    }

    /// The order in progress, at the end of the scan.
    pub(super) fn finish(&mut self) -> Option<Finished> {
        let run = self.current.take()?;
        let scanned = match run.outcome {
            RunOutcome::Folding => {
                Scanned::Folded(Folded::from_state(run.order_id, run.state, run.event_count))
            }
            RunOutcome::NotContiguous => Scanned::NeedsLoad {
                order_id: run.order_id,
                event_count: run.event_count,
            },
            RunOutcome::Failed(error) => Scanned::Failed {
                order_id: run.order_id,
                event_count: run.event_count,
                error,
            },
        };
        Some(Finished {
            scanned,
            last_key: run.last_key,
        })
    }
}
