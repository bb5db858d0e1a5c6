//! Application services: the use cases behind the HTTP layer, written against the store ports
//! only, so the same services run on Lambda (DynamoDB) and locally (SQLite).

mod caller;
pub mod commands;
pub mod error;
pub mod queries;

use std::sync::Arc;

/// Where `now` comes from: the services read it once per command; tests give a fixed one.
pub use orders_store::{Clock, SystemClock};
use orders_store::{EventStore, IdempotencyStore, ReadModelStore};

pub use caller::Caller;
pub use commands::{
    CommandContext, CommandOutcome, CommandService, Completion, Idempotency, Precondition,
};
pub use error::AppError;
pub use queries::{QueryService, ReadAt};

/// The ports the services use. Every backend implements all three, usually on one value.
#[derive(Clone)]
pub struct Stores {
    pub events: Arc<dyn EventStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub read_model: Arc<dyn ReadModelStore>,
}

impl Stores {
    /// All three ports served by one store (every adapter implements them all on one value).
    pub fn shared<S>(store: S) -> Self
    where
        S: EventStore + IdempotencyStore + ReadModelStore + Clone + 'static,
    {
        Self {
            events: Arc::new(store.clone()),
            idempotency: Arc::new(store.clone()),
            read_model: Arc::new(store),
        }
    }
}
