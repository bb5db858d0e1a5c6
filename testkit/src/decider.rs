//! The order decider as given / when / then, read in that order, as cqrs-es's
//! `TestFramework`:
//!
//! ```
//! # use orders_domain::{EventData, OrderCommand};
//! # use orders_testkit::{decider::given, fixtures::created};
//! given(&[created()])
//!     .when(OrderCommand::Confirm)
//!     .then_expect(&[EventData::OrderConfirmed]);
//! ```

use orders_domain::{DomainError, EventData, OrderCommand, OrderEvent, OrderState, decide, evolve};

use crate::fixtures::at;

/// The instant commands are decided at: after any history a test gives.
const DECIDED_AT_MS: i64 = 1_000;

/// An order with this history: the `i`-th event happened at [`at`]`(i)`.
pub fn given(history: &[EventData]) -> Given {
    let state = history
        .iter()
        .zip(0..)
        .fold(OrderState::default(), |state, (data, i)| {
            evolve(
                state,
                &OrderEvent {
                    occurred_at: at(i),
                    data: data.clone(),
                },
            )
        });
    Given(state)
}

/// The state the given history folds to.
pub struct Given(OrderState);

impl Given {
    /// The folded state, for tests of `evolve`.
    pub fn state(self) -> OrderState {
        self.0
    }

    /// Decides `command` against the given state, at [`at`]`(1000)`.
    pub fn when(self, command: OrderCommand) -> When {
        When(decide(&self.0, &command, at(DECIDED_AT_MS)))
    }
}

/// What the decider answered.
pub struct When(Result<Vec<OrderEvent>, DomainError>);

impl When {
    /// Asserts the command was accepted with exactly these events (none: a no-op).
    #[track_caller]
    pub fn then_expect(self, expected: &[EventData]) {
        let data: Vec<EventData> = self
            .0
            .expect("command should be accepted")
            .into_iter()
            .map(|event| event.data)
            .collect();
        assert_eq!(data, expected);
    }

    /// Asserts the command was refused with `expected`.
    #[track_caller]
    pub fn then_expect_error(self, expected: DomainError) {
        assert_eq!(self.0.expect_err("command should be refused"), expected);
    }
}
