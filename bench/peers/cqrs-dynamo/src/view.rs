//! The order view, the demo's `BankAccountView` pattern: a `GenericQuery` over a
//! `DynamoViewRepository`, dispatched by the `CqrsFramework` after every commit, and shaped as
//! the response body: `peer-shape`'s `OrderView`, which this wraps only because a foreign type
//! cannot implement cqrs-es's `View` here (stored as the same JSON, `transparent`).

use cqrs_es::persist::GenericQuery;
use cqrs_es::{EventEnvelope, View};
use dynamo_es::DynamoViewRepository;
use serde::{Deserialize, Serialize};

use crate::domain::{Order, OrderEvent, OrderStatus};

pub type OrderViewRepository = DynamoViewRepository<OrderView, Order>;
pub type OrderQuery = GenericQuery<OrderViewRepository, OrderView, Order>;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderView(pub peer_shape::OrderView);

impl View<Order> for OrderView {
    fn update(&mut self, event: &EventEnvelope<Order>) {
        let view = &mut self.0;
        view.order_id.clone_from(&event.aggregate_id);
        view.version = event.sequence as u64;
        let at = match &event.payload {
            OrderEvent::OrderCreated {
                customer_id,
                currency,
                items,
                total,
                at,
            } => {
                view.customer_id.clone_from(customer_id);
                view.status = OrderStatus::Pending;
                view.currency.clone_from(currency);
                view.items.clone_from(items);
                view.total = *total;
                view.created_at.clone_from(at);
                at
            }
            OrderEvent::OrderConfirmed { at } => {
                view.status = OrderStatus::Confirmed;
                at
            }
            OrderEvent::OrderShipped { at } => {
                view.status = OrderStatus::Shipped;
                at
            }
            OrderEvent::OrderCancelled { reason, at } => {
                view.status = OrderStatus::Cancelled;
                view.cancel_reason.clone_from(reason);
                at
            }
        };
        view.updated_at.clone_from(at);
    }
}
