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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::command::CreateOrder;
    use crate::values::{LineItem, Quantity, Sku, UnitPrice};

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_790_000_000_000 + ms)
    }

    fn create_order(lines: &[(u32, u64)]) -> CreateOrder {
        let lines = lines
            .iter()
            .enumerate()
            .map(|(i, (q, p))| LineItem {
                sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
                quantity: Quantity::parse(i64::from(*q)).unwrap(),
                unit_price: UnitPrice::parse(*p as i64).unwrap(),
            })
            .collect();
        CreateOrder::new(
            CustomerId::parse("customer-1").unwrap(),
            Currency::parse("EUR").unwrap(),
            Items::parse(lines).unwrap(),
        )
        .unwrap()
    }

    fn created() -> EventData {
        let c = create_order(&[(2, 150), (1, 1000)]);
        EventData::OrderCreated {
            customer_id: c.customer_id().clone(),
            currency: *c.currency(),
            items: c.items().clone(),
            total: c.total(),
        }
    }

    fn reason() -> Option<CancelReason> {
        Some(CancelReason::parse("customer asked").unwrap())
    }

    /// Given these past events, when this command runs, then... (cqrs-es style).
    struct Given(OrderState);

    fn given(history: &[EventData]) -> Given {
        let state = history
            .iter()
            .enumerate()
            .fold(OrderState::default(), |s, (i, data)| {
                evolve(
                    s,
                    &OrderEvent {
                        occurred_at: at(i as i64),
                        data: data.clone(),
                    },
                )
            });
        Given(state)
    }

    impl Given {
        fn when(self, command: OrderCommand) -> (OrderState, Result<Vec<OrderEvent>, DomainError>) {
            let decided = decide(&self.0, &command, at(1_000));
            (self.0, decided)
        }
    }

    fn then_events(
        (_, decided): (OrderState, Result<Vec<OrderEvent>, DomainError>),
        expected: &[EventData],
    ) {
        let data: Vec<EventData> = decided
            .expect("command should be accepted")
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(data, expected);
    }

    fn then_error(
        (_, decided): (OrderState, Result<Vec<OrderEvent>, DomainError>),
        expected: DomainError,
    ) {
        assert_eq!(decided.expect_err("command should be refused"), expected);
    }

    use EventData::*;
    use OrderStatus::*;

    #[test]
    fn create_a_new_order() {
        let create = create_order(&[(2, 150), (1, 1000)]);
        then_events(given(&[]).when(OrderCommand::Create(create)), &[created()]);
    }

    #[test]
    fn create_an_existing_order_is_refused() {
        let create = create_order(&[(1, 1)]);
        then_error(
            given(&[created()]).when(OrderCommand::Create(create)),
            DomainError::AlreadyExists,
        );
    }

    #[test]
    fn commands_on_a_missing_order_are_refused() {
        for command in [
            OrderCommand::Confirm,
            OrderCommand::Cancel { reason: None },
            OrderCommand::Ship,
        ] {
            then_error(given(&[]).when(command), DomainError::NotFound);
        }
    }

    #[test]
    fn confirm_a_pending_order() {
        then_events(
            given(&[created()]).when(OrderCommand::Confirm),
            &[OrderConfirmed],
        );
    }

    #[test]
    fn confirm_a_confirmed_order_is_a_no_op() {
        then_events(
            given(&[created(), OrderConfirmed]).when(OrderCommand::Confirm),
            &[],
        );
    }

    #[test]
    fn confirm_after_the_end_of_the_lifecycle_is_refused() {
        let shipped = [created(), OrderConfirmed, OrderShipped];
        then_error(
            given(&shipped).when(OrderCommand::Confirm),
            DomainError::InvalidTransition {
                command: "confirm",
                status: Shipped,
            },
        );
        then_error(
            given(&[created(), OrderCancelled { reason: None }]).when(OrderCommand::Confirm),
            DomainError::InvalidTransition {
                command: "confirm",
                status: Cancelled,
            },
        );
    }

    #[test]
    fn cancel_a_pending_or_confirmed_order() {
        let cancel = || OrderCommand::Cancel { reason: reason() };
        then_events(
            given(&[created()]).when(cancel()),
            &[OrderCancelled { reason: reason() }],
        );
        then_events(
            given(&[created(), OrderConfirmed]).when(cancel()),
            &[OrderCancelled { reason: reason() }],
        );
    }

    #[test]
    fn cancel_a_cancelled_order_is_a_no_op() {
        then_events(
            given(&[created(), OrderCancelled { reason: None }])
                .when(OrderCommand::Cancel { reason: reason() }),
            &[],
        );
    }

    #[test]
    fn cancel_a_shipped_order_is_refused() {
        then_error(
            given(&[created(), OrderConfirmed, OrderShipped])
                .when(OrderCommand::Cancel { reason: None }),
            DomainError::InvalidTransition {
                command: "cancel",
                status: Shipped,
            },
        );
    }

    #[test]
    fn ship_a_confirmed_order() {
        then_events(
            given(&[created(), OrderConfirmed]).when(OrderCommand::Ship),
            &[OrderShipped],
        );
    }

    #[test]
    fn ship_from_any_other_status_is_refused() {
        let cases: [(&[EventData], OrderStatus); 3] = [
            (&[created()], Pending),
            (&[created(), OrderConfirmed, OrderShipped], Shipped),
            (&[created(), OrderCancelled { reason: None }], Cancelled),
        ];
        for (history, status) in cases {
            then_error(
                given(history).when(OrderCommand::Ship),
                DomainError::InvalidTransition {
                    command: "ship",
                    status,
                },
            );
        }
    }

    #[test]
    fn evolve_builds_the_order_with_timestamps_and_version() {
        let state = given(&[
            created(),
            OrderConfirmed,
            OrderCancelled { reason: reason() },
        ])
        .0;
        assert_eq!(state.version, 3);
        let order = state.order.unwrap();
        assert_eq!(order.status, Cancelled);
        assert_eq!(order.total, Money(1300));
        assert_eq!(order.cancel_reason, reason());
        assert_eq!(order.created_at, at(0));
        assert_eq!(order.updated_at, at(2));
    }

    #[test]
    fn an_unknown_event_only_advances_the_version() {
        let before = given(&[created()]).0;
        let after = before.clone().skip_unknown();
        assert_eq!(after.version, 2);
        assert_eq!(after.order, before.order);
    }

    fn arb_command() -> impl Strategy<Value = OrderCommand> {
        let lines = prop::collection::vec((1u32..=10_000, 0u64..=1_000_000_000), 1..=100);
        prop_oneof![
            lines.prop_map(|l| OrderCommand::Create(create_order(&l))),
            Just(OrderCommand::Confirm),
            prop::option::of("[a-z ]{0,20}").prop_map(|r| OrderCommand::Cancel {
                reason: r.map(|r| CancelReason::parse(&r).unwrap())
            }),
            Just(OrderCommand::Ship),
        ]
    }

    proptest! {
        #[test]
        fn any_command_sequence_keeps_the_invariants(commands in prop::collection::vec(arb_command(), 1..30)) {
            let mut state = OrderState::default();
            let mut history: Vec<OrderEvent> = Vec::new();
            for (i, command) in commands.iter().enumerate() {
                let before = state.status();
                let Ok(events) = decide(&state, command, at(i as i64)) else { continue };
                if before.is_some_and(OrderStatus::is_terminal) {
                    // Only the idempotent no-ops are accepted after the end of the lifecycle.
                    prop_assert!(events.is_empty(), "{:?} after {:?} produced {:?}", command, before, events);
                }
                for event in events {
                    state = evolve(state, &event);
                    history.push(event);
                    // Versions are contiguous: the n-th event makes version n.
                    prop_assert_eq!(state.version, history.len() as u64);
                }
            }
            // The fold of every decided event from empty equals the state we kept.
            let refolded = history.iter().fold(OrderState::default(), evolve);
            prop_assert_eq!(&refolded, &state);
            if let Some(order) = &state.order {
                let expected: u64 = order.items.lines().iter()
                    .map(|l| u64::from(l.quantity.get()) * l.unit_price.get())
                    .sum();
                prop_assert_eq!(order.total, Money(expected));
            }
        }
    }
}
