//! The order aggregate, its commands and events, in the shape of the cqrs-es demo's
//! `BankAccount`: `handle` decides and writes events to the sink, `apply` folds them.
//!
//! The lifecycle is the Orders service's: PENDING -> CONFIRMED -> SHIPPED, and
//! PENDING | CONFIRMED -> CANCELLED; confirming a confirmed order and cancelling a cancelled
//! one are accepted and record nothing.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
pub use peer_shape::{LineItem, OrderStatus};
use serde::{Deserialize, Serialize};

/// Commands carry the instant the HTTP handler stamped, so `handle` stays deterministic.
#[derive(Debug)]
pub enum OrderCommand {
    Create {
        customer_id: String,
        currency: String,
        items: Vec<LineItem>,
        total: u64,
        at: String,
    },
    Confirm {
        at: String,
    },
    Ship {
        at: String,
    },
    Cancel {
        reason: Option<String>,
        at: String,
    },
}

impl OrderCommand {
    fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::Confirm { .. } => "confirm",
            Self::Ship { .. } => "ship",
            Self::Cancel { .. } => "cancel",
        }
    }
}

/// Events carry what the view needs (the demo's advice: no computing in the view). Their
/// names are the Orders service's event types.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderCreated {
        customer_id: String,
        currency: String,
        items: Vec<LineItem>,
        total: u64,
        at: String,
    },
    OrderConfirmed {
        at: String,
    },
    OrderShipped {
        at: String,
    },
    OrderCancelled {
        reason: Option<String>,
        at: String,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OrderCreated { .. } => "OrderCreated",
            Self::OrderConfirmed { .. } => "OrderConfirmed",
            Self::OrderShipped { .. } => "OrderShipped",
            Self::OrderCancelled { .. } => "OrderCancelled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("the order does not exist")]
    NotFound,
    #[error("the order already exists")]
    AlreadyExists,
    #[error("cannot {command} an order that is {status}")]
    InvalidTransition {
        command: &'static str,
        status: OrderStatus,
    },
}

/// The aggregate keeps only what its decisions need: the status (`None` before creation).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Order {
    status: Option<OrderStatus>,
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use OrderStatus::{Cancelled, Confirmed, Pending};
        let event = match (command, self.status) {
            (
                OrderCommand::Create {
                    customer_id,
                    currency,
                    items,
                    total,
                    at,
                },
                None,
            ) => OrderEvent::OrderCreated {
                customer_id,
                currency,
                items,
                total,
                at,
            },
            (OrderCommand::Create { .. }, Some(_)) => return Err(OrderError::AlreadyExists),
            (_, None) => return Err(OrderError::NotFound),
            (OrderCommand::Confirm { at }, Some(Pending)) => OrderEvent::OrderConfirmed { at },
            (OrderCommand::Confirm { .. }, Some(Confirmed)) => return Ok(()),
            (OrderCommand::Ship { at }, Some(Confirmed)) => OrderEvent::OrderShipped { at },
            (OrderCommand::Cancel { reason, at }, Some(Pending | Confirmed)) => {
                OrderEvent::OrderCancelled { reason, at }
            }
            (OrderCommand::Cancel { .. }, Some(Cancelled)) => return Ok(()),
            (command, Some(status)) => {
                return Err(OrderError::InvalidTransition {
                    command: command.name(),
                    status,
                });
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.status = Some(match event {
            OrderEvent::OrderCreated { .. } => OrderStatus::Pending,
            OrderEvent::OrderConfirmed { .. } => OrderStatus::Confirmed,
            OrderEvent::OrderShipped { .. } => OrderStatus::Shipped,
            OrderEvent::OrderCancelled { .. } => OrderStatus::Cancelled,
        });
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    fn created() -> OrderEvent {
        OrderEvent::OrderCreated {
            customer_id: "c".into(),
            currency: "EUR".into(),
            items: vec![],
            total: 0,
            at: "t0".into(),
        }
    }

    fn at() -> String {
        "t1".into()
    }

    #[test]
    fn the_lifecycle() {
        TestFramework::<Order>::with(())
            .given(vec![created()])
            .when(OrderCommand::Confirm { at: at() })
            .then_expect_events(vec![OrderEvent::OrderConfirmed { at: at() }]);
        TestFramework::<Order>::with(())
            .given(vec![created(), OrderEvent::OrderConfirmed { at: at() }])
            .when(OrderCommand::Confirm { at: at() })
            .then_expect_events(vec![]);
        TestFramework::<Order>::with(())
            .given(vec![created()])
            .when(OrderCommand::Ship { at: at() })
            .then_expect_error_message("cannot ship an order that is PENDING");
        TestFramework::<Order>::with(())
            .given_no_previous_events()
            .when(OrderCommand::Confirm { at: at() })
            .then_expect_error_message("the order does not exist");
    }
}
