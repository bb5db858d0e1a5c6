//! The Order aggregate, decider style.
//!
//! - [`values`]: parsed newtypes; raw strings never enter the domain.
//! - [`text`]: the characters client text may hold (no control or invisible format ones).
//! - [`command`]: what a client asks for.
//! - [`event`]: what happened, and how each event is encoded, versioned and upcast.
//! - [`order`]: the state, [`decide`] and [`evolve`].
//!
//! Everything here is pure and synchronous: the caller passes `now`.

pub mod command;
pub mod event;
pub mod order;
pub mod text;
pub mod values;

pub use command::{CreateOrder, OrderCommand};
pub use event::{DecodeError, EncodedEvent, EventData, OrderEvent, Upcaster};
pub use order::{DomainError, Order, OrderState, OrderStatus, decide, evolve};
pub use values::{
    CancelReason, Currency, CustomerId, FieldError, Items, LineItem, Money, OrderId, Quantity, Sku,
    Timestamp, UnitPrice,
};
