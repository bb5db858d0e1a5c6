//! The query side. It only reads: the read model for the usual case, the event store when
//! the client needs a version the read model may not have reached yet, or a past one.

use std::sync::Arc;

use orders_domain::{OrderId, OrderState};
use orders_store::{EventStore, ListQuery, OrderView, Page, ReadModelStore, StoredEvent, fold};
use tracing::debug;

use super::{AppError, Stores};

/// Which version of an order to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// Whatever the read model holds (eventually consistent).
    Projection,
    /// Read-your-writes: at least this version. When the read model is behind, the order is
    /// folded from the event store, which is consistent; if the order has fewer events than
    /// asked for, its latest state is returned and the `ETag` tells the client how far it got.
    MinVersion(u64),
    /// The order as it was right after event N.
    AtVersion(u64),
}

pub struct QueryService {
    events: Arc<dyn EventStore>,
    read_model: Arc<dyn ReadModelStore>,
}

impl QueryService {
    pub fn new(stores: &Stores) -> Self {
        Self {
            events: stores.events.clone(),
            read_model: stores.read_model.clone(),
        }
    }

    pub async fn order(&self, order_id: OrderId, at: ReadAt) -> Result<OrderView, AppError> {
        match at {
            ReadAt::Projection => self
                .read_model
                .get(order_id)
                .await?
                .ok_or(AppError::NotFound),
            ReadAt::MinVersion(min) => match self.read_model.get(order_id).await? {
                Some(view) if view.version >= min => Ok(view),
                _ => {
                    debug!(%order_id, min, "read model behind; folding the event store");
                    self.fold_events(order_id, None).await
                }
            },
            ReadAt::AtVersion(version) => {
                let view = self.fold_events(order_id, Some(version)).await?;
                if view.version == version {
                    Ok(view)
                } else {
                    Err(AppError::NotFound)
                }
            }
        }
    }

    /// The order's events in version order; `NotFound` if it has none.
    pub async fn history(&self, order_id: OrderId) -> Result<Vec<StoredEvent>, AppError> {
        let events = self.events.load(order_id, None).await?;
        if events.is_empty() {
            Err(AppError::NotFound)
        } else {
            Ok(events)
        }
    }

    pub async fn list(&self, query: &ListQuery) -> Result<Page, AppError> {
        Ok(self.read_model.list(query).await?)
    }

    /// The order folded from its events up to `up_to` (all of them for `None`).
    async fn fold_events(
        &self,
        order_id: OrderId,
        up_to: Option<u64>,
    ) -> Result<OrderView, AppError> {
        let events = self.events.load(order_id, up_to).await?;
        let state = fold(OrderState::default(), &events)?;
        OrderView::from_state(order_id, state).ok_or(AppError::NotFound)
    }
}
