//! The order view, the demo's `BankAccountView` pattern: a `GenericQuery` over a
//! `DynamoViewRepository`, dispatched by the `CqrsFramework` after every commit, and shaped as
//! the response body (`{"orderId","version","customerId","status",…}`).

use cqrs_es::persist::GenericQuery;
use cqrs_es::{EventEnvelope, View};
use dynamo_es::DynamoViewRepository;
use serde::{Deserialize, Serialize};

use crate::domain::{LineItem, Order, OrderEvent, OrderStatus};

pub type OrderViewRepository = DynamoViewRepository<OrderView, Order>;
pub type OrderQuery = GenericQuery<OrderViewRepository, OrderView, Order>;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub version: usize,
    pub customer_id: String,
    pub status: OrderStatus,
    pub currency: String,
    pub items: Vec<LineItem>,
    pub total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl View<Order> for OrderView {
    fn update(&mut self, event: &EventEnvelope<Order>) {
        self.order_id.clone_from(&event.aggregate_id);
        self.version = event.sequence;
        let at = match &event.payload {
            OrderEvent::OrderCreated {
                customer_id,
                currency,
                items,
                total,
                at,
            } => {
                self.customer_id.clone_from(customer_id);
                self.status = OrderStatus::Pending;
                self.currency.clone_from(currency);
                self.items.clone_from(items);
                self.total = *total;
                self.created_at.clone_from(at);
                at
            }
            OrderEvent::OrderConfirmed { at } => {
                self.status = OrderStatus::Confirmed;
                at
            }
            OrderEvent::OrderShipped { at } => {
                self.status = OrderStatus::Shipped;
                at
            }
            OrderEvent::OrderCancelled { reason, at } => {
                self.status = OrderStatus::Cancelled;
                self.cancel_reason.clone_from(reason);
                at
            }
        };
        self.updated_at.clone_from(at);
    }
}
