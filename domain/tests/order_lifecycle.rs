//! The order lifecycle through `decide` and `evolve`, read as given / when / then
//! ([`orders_testkit::decider`]).

use orders_domain::{
    CancelReason, CreateOrder, Currency, CustomerId, DomainError, EventData, Items, LineItem,
    Money, OrderCommand, OrderEvent, OrderState, OrderStatus, Quantity, Sku, UnitPrice, decide,
    evolve,
};
use orders_testkit::decider::given;
use orders_testkit::fixtures::at;
use proptest::prelude::*;

use EventData::*;
use OrderStatus::*;

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

/// The event [`create_order`]`(&[(2, 150), (1, 1000)])` makes: a total of 1300.
fn created() -> EventData {
    let c = create_order(&[(2, 150), (1, 1000)]);
    OrderCreated {
        customer_id: c.customer_id().clone(),
        currency: *c.currency(),
        items: c.items().clone(),
        total: c.total(),
    }
}

fn reason() -> Option<CancelReason> {
    Some(CancelReason::parse("customer asked").unwrap())
}

#[test]
fn create_a_new_order() {
    let create = create_order(&[(2, 150), (1, 1000)]);
    given(&[])
        .when(OrderCommand::Create(create))
        .then_expect(&[created()]);
}

#[test]
fn create_an_existing_order_is_refused() {
    let create = create_order(&[(1, 1)]);
    given(&[created()])
        .when(OrderCommand::Create(create))
        .then_expect_error(DomainError::AlreadyExists);
}

#[test]
fn commands_on_a_missing_order_are_refused() {
    for command in [
        OrderCommand::Confirm,
        OrderCommand::Cancel { reason: None },
        OrderCommand::Ship,
    ] {
        given(&[])
            .when(command)
            .then_expect_error(DomainError::NotFound);
    }
}

#[test]
fn confirm_a_pending_order() {
    given(&[created()])
        .when(OrderCommand::Confirm)
        .then_expect(&[OrderConfirmed]);
}

#[test]
fn confirm_a_confirmed_order_is_a_no_op() {
    given(&[created(), OrderConfirmed])
        .when(OrderCommand::Confirm)
        .then_expect(&[]);
}

#[test]
fn confirm_after_the_end_of_the_lifecycle_is_refused() {
    given(&[created(), OrderConfirmed, OrderShipped])
        .when(OrderCommand::Confirm)
        .then_expect_error(DomainError::InvalidTransition {
            command: "confirm",
            status: Shipped,
        });
    given(&[created(), OrderCancelled { reason: None }])
        .when(OrderCommand::Confirm)
        .then_expect_error(DomainError::InvalidTransition {
            command: "confirm",
            status: Cancelled,
        });
}

#[test]
fn cancel_a_pending_or_confirmed_order() {
    let cancel = || OrderCommand::Cancel { reason: reason() };
    given(&[created()])
        .when(cancel())
        .then_expect(&[OrderCancelled { reason: reason() }]);
    given(&[created(), OrderConfirmed])
        .when(cancel())
        .then_expect(&[OrderCancelled { reason: reason() }]);
}

#[test]
fn cancel_a_cancelled_order_is_a_no_op() {
    given(&[created(), OrderCancelled { reason: None }])
        .when(OrderCommand::Cancel { reason: reason() })
        .then_expect(&[]);
}

#[test]
fn cancel_a_shipped_order_is_refused() {
    given(&[created(), OrderConfirmed, OrderShipped])
        .when(OrderCommand::Cancel { reason: None })
        .then_expect_error(DomainError::InvalidTransition {
            command: "cancel",
            status: Shipped,
        });
}

#[test]
fn ship_a_confirmed_order() {
    given(&[created(), OrderConfirmed])
        .when(OrderCommand::Ship)
        .then_expect(&[OrderShipped]);
}

#[test]
fn ship_from_any_other_status_is_refused() {
    let cases: [(&[EventData], OrderStatus); 3] = [
        (&[created()], Pending),
        (&[created(), OrderConfirmed, OrderShipped], Shipped),
        (&[created(), OrderCancelled { reason: None }], Cancelled),
    ];
    for (history, status) in cases {
        given(history)
            .when(OrderCommand::Ship)
            .then_expect_error(DomainError::InvalidTransition {
                command: "ship",
                status,
            });
    }
}

#[test]
fn evolve_builds_the_order_with_timestamps_and_version() {
    let state = given(&[
        created(),
        OrderConfirmed,
        OrderCancelled { reason: reason() },
    ])
    .state();
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
    let before = given(&[created()]).state();
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
