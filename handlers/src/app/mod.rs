//! Application services: the use cases behind the HTTP layer, written against the store ports
//! only, so the same services run on Lambda (DynamoDB) and locally (SQLite).

mod caller;
pub mod commands;
pub mod error;
pub mod queries;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use orders_domain::Timestamp;
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

/// Where `now` comes from. The domain never reads a clock; tests pass a fixed one.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_millis(millis)
    }
}
