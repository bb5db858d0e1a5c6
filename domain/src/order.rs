//! The order lifecycle: `PENDING -> CONFIRMED -> SHIPPED`, and `PENDING | CONFIRMED -> CANCELLED`.
//!
//! [`decide`] turns a command into events (or refuses it); [`evolve`] folds one event into the
//! state. Confirming a confirmed order and cancelling a cancelled one are accepted no-ops.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::command::OrderCommand;
use crate::event::{EventData, OrderEvent};
use crate::values::{CancelReason, Currency, CustomerId, Items, Money, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] = [
        Self::Pending,
        Self::Confirmed,
        Self::Shipped,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Shipped => "SHIPPED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Nothing but the idempotent no-ops may follow a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Shipped | Self::Cancelled)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| "must be one of PENDING, CONFIRMED, SHIPPED, CANCELLED".to_owned())
    }
}

/// An order that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub currency: Currency,
    pub items: Items,
    pub total: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The aggregate state: how many events have been folded, and the order if it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderState {
    pub version: u64,
    pub order: Option<Order>,
}

impl OrderState {
    /// Counts an event this build cannot interpret: the version advances, nothing else changes,
    /// so the events after it are not mistaken for a gap.
    pub fn skip_unknown(mut self) -> Self {
        self.version += 1;
        self
    }

    pub fn status(&self) -> Option<OrderStatus> {
        self.order.as_ref().map(|o| o.status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
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

/// Decides which events a command produces against the current state. `now` stamps them.
pub fn decide(
    state: &OrderState,
    command: &OrderCommand,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    use OrderStatus::*;
    let event = |data| {
        Ok(vec![OrderEvent {
            occurred_at: now,
            data,
        }])
    };
    let no_op = || Ok(Vec::new());
    let Some(status) = state.status() else {
        return match command {
            OrderCommand::Create(create) => event(EventData::OrderCreated {
                customer_id: create.customer_id().clone(),
                currency: *create.currency(),
                items: create.items().clone(),
                total: create.total(),
            }),
            _ => Err(DomainError::NotFound),
        };
    };
    match (command, status) {
        (OrderCommand::Create(_), _) => Err(DomainError::AlreadyExists),
        (OrderCommand::Confirm, Pending) => event(EventData::OrderConfirmed),
        (OrderCommand::Confirm, Confirmed) => no_op(),
        (OrderCommand::Cancel { reason }, Pending | Confirmed) => {
            event(EventData::OrderCancelled {
                reason: reason.clone(),
            })
        }
        (OrderCommand::Cancel { .. }, Cancelled) => no_op(),
        (OrderCommand::Ship, Confirmed) => event(EventData::OrderShipped),
        (command, status) => Err(DomainError::InvalidTransition {
            command: command.name(),
            status,
        }),
    }
}

/// Folds one event into the state. Events are facts, so this never fails: an event that does
/// not fit the state (which `decide` never produces) only advances the version.
pub fn evolve(mut state: OrderState, event: &OrderEvent) -> OrderState {
    state.version += 1;
    let at = event.occurred_at;
    let set_status = |order: &mut Order, status| {
        order.status = status;
        order.updated_at = at;
    };
    match (&event.data, state.order.as_mut()) {
        (
            EventData::OrderCreated {
                customer_id,
                currency,
                items,
                total,
            },
            None,
        ) => {
            state.order = Some(Order {
                customer_id: customer_id.clone(),
                status: OrderStatus::Pending,
                currency: *currency,
                items: items.clone(),
                total: *total,
                cancel_reason: None,
                created_at: at,
                updated_at: at,
            });
        }
        (EventData::OrderConfirmed, Some(order)) => set_status(order, OrderStatus::Confirmed),
        (EventData::OrderShipped, Some(order)) => set_status(order, OrderStatus::Shipped),
        (EventData::OrderCancelled { reason }, Some(order)) => {
            set_status(order, OrderStatus::Cancelled);
            order.cancel_reason = reason.clone();
        }
        _ => {}
    }
    state
}
