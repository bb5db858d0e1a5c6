//! The read model's record: an order as the query API shows it.

use orders_domain::{Order, OrderId, OrderState};
use serde::{Deserialize, Serialize};

/// The view of one order after `version` events: its [`OrderState`] flattened, as
/// [`OrderView::from_state`] and [`OrderView::into_state`] convert it. Serialized flat:
/// `{orderId, version, customerId, status, currency, items, total, cancelReason?, createdAt, updatedAt}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: OrderId,
    pub version: u64,
    #[serde(flatten)]
    pub order: Order,
}

impl OrderView {
    /// The view of a folded state; `None` while the order has not been created. Takes the
    /// state by value: a fold's result is done with, so the order moves instead of copying.
    pub fn from_state(order_id: OrderId, state: OrderState) -> Option<Self> {
        let version = state.version;
        state.order.map(|order| Self {
            order_id,
            version,
            order,
        })
    }

    /// The state this view flattens: a fold resumes from it.
    pub fn into_state(self) -> OrderState {
        OrderState {
            version: self.version,
            order: Some(self.order),
        }
    }
}
