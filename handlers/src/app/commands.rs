//! The command side: load → fold → If-Match → decide(now) → append, with the idempotency
//! record committed in the same append as the events.

use std::sync::Arc;

use orders_domain::{
    CreateOrder, DomainError, OrderCommand, OrderId, OrderState, Timestamp, decide, evolve,
};
use orders_lambda::metrics::{self, CommandOutcome as Measured};
use orders_store::{
    AppendError, AppendRequest, EventMetadata, IdempotencyKey, IdempotencyRecord, OrderView,
    StoreError, StoredEvent, fold,
};
use tracing::{Instrument, field, info, info_span, warn};
use uuid::Uuid;

use super::{AppError, Caller, Clock, Stores};

/// How long an idempotency key is remembered (DESIGN §3).
pub const IDEMPOTENCY_TTL_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// A parsed `If-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// `If-Match: *`: the order must exist.
    Exists,
    /// `If-Match: "<version>"`: the order must be at exactly this version.
    Version(u64),
}

/// An `Idempotency-Key` with the fingerprint of the request that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// As the client sent it: logged, and kept in the events' metadata.
    pub key: IdempotencyKey,
    /// Whose key it is; `None` without an authorizer, where keys are global.
    pub caller: Option<Caller>,
    /// Hex SHA-256 of method, path and canonical body.
    pub fingerprint: String,
}

impl Idempotency {
    /// The key the record is stored under: the client's key within its caller's scope, so a
    /// caller only ever meets its own records (see [`Caller`]).
    pub fn record_key(&self) -> IdempotencyKey {
        match &self.caller {
            Some(caller) => self.key.within(&caller.idempotency_scope()),
            None => self.key.clone(),
        }
    }
}

/// Everything about a command request that is not the command itself.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub correlation_id: String,
    pub precondition: Option<Precondition>,
    pub idempotency: Option<Idempotency>,
}

/// Whether the command created the order or changed an existing one; the idempotency record
/// stores it as the HTTP status of the first response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Created,
    Applied,
}

impl Completion {
    pub fn status(self) -> u16 {
        match self {
            Self::Created => 201,
            Self::Applied => 200,
        }
    }

    fn from_status(status: u16) -> Option<Self> {
        match status {
            201 => Some(Self::Created),
            200 => Some(Self::Applied),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CommandOutcome {
    /// The order after the command (for a replay: as it was right after the first request).
    pub view: OrderView,
    pub completion: Completion,
    /// The response repeats the first request's, made with the same idempotency key.
    pub replayed: bool,
}

pub struct CommandService {
    stores: Stores,
    clock: Arc<dyn Clock>,
    source: String,
}

impl CommandService {
    /// `source` is stamped into every event's metadata (e.g. `orders.api`).
    pub fn new(stores: Stores, clock: Arc<dyn Clock>, source: impl Into<String>) -> Self {
        Self {
            stores,
            clock,
            source: source.into(),
        }
    }

    /// Creates an order under a fresh UUID v7 id.
    pub async fn create(
        &self,
        create: CreateOrder,
        context: CommandContext,
    ) -> Result<CommandOutcome, AppError> {
        let order_id = OrderId::from_uuid(Uuid::now_v7());
        self.execute(order_id, OrderCommand::Create(create), context)
            .await
    }

    /// Runs one command against one order.
    ///
    /// Idempotency: only successful outcomes are recorded, in the same atomic append as their
    /// events (a no-op stores the record alone). Errors are not recorded, so a retry with the
    /// same key runs the command again — a 409 or 503 may well succeed the second time.
    ///
    /// A lost append race is reported as [`AppError::Conflict`] and never retried here: the
    /// client decided against a state that no longer exists.
    pub async fn execute(
        &self,
        order_id: OrderId,
        command: OrderCommand,
        context: CommandContext,
    ) -> Result<CommandOutcome, AppError> {
        let span = info_span!(
            "command",
            command = command.name(),
            orderId = %order_id,
            correlationId = %context.correlation_id,
            idempotencyKey = field::Empty,
        );
        if let Some(idempotency) = &context.idempotency {
            span.record("idempotencyKey", idempotency.key.as_str());
        }
        let name = command.name();
        let result = self.run(order_id, command, context).instrument(span).await;
        metrics::command(name, measured(&result));
        result.map(|(outcome, _)| outcome)
    }

    /// [`execute`](Self::execute), and whether it appended events (a no-op and a replay did
    /// not), for the command's metric.
    async fn run(
        &self,
        order_id: OrderId,
        command: OrderCommand,
        context: CommandContext,
    ) -> Result<(CommandOutcome, bool), AppError> {
        let now = self.clock.now();
        if let Some(idempotency) = &context.idempotency
            && let Some(record) = self
                .stores
                .idempotency
                .get(&idempotency.record_key(), now)
                .await?
        {
            return self.replay(record, idempotency).await.map(|o| (o, false));
        }

        // A create's id was minted for it (`create`): it has no history to read, and the
        // append's condition refuses an id that has one all the same. That saves a strongly
        // consistent read, billed even when it finds nothing, and a round trip.
        let history = match command {
            OrderCommand::Create(_) => Vec::new(),
            _ => self.stores.events.load(order_id, None).await?,
        };
        let state = fold(OrderState::default(), &history)?;
        check_precondition(&state, &command, context.precondition)?;
        let events = decide(&state, &command, now)?;

        let current_version = state.version;
        let after = events.iter().fold(state, evolve);
        let new_version = after.version;
        // decide only accepts commands that leave an existing order behind.
        let view = OrderView::from_state(order_id, after).ok_or_else(|| {
            AppError::Internal(format!("{} left no order behind", command.name()))
        })?;
        let completion = match command {
            OrderCommand::Create(_) => Completion::Created,
            _ => Completion::Applied,
        };
        let outcome = CommandOutcome {
            view,
            completion,
            replayed: false,
        };
        if events.is_empty() && context.idempotency.is_none() {
            info!(version = current_version, "no-op: nothing to append");
            return Ok((outcome, false));
        }

        let metadata = EventMetadata {
            correlation_id: context.correlation_id.clone(),
            causation_id: Uuid::now_v7().to_string(),
            idempotency_key: context
                .idempotency
                .as_ref()
                .map(|i| i.key.as_str().to_owned()),
            source: self.source.clone(),
        };
        let stored = events
            .iter()
            .zip(current_version + 1..)
            .map(|(event, version)| {
                StoredEvent::new(order_id, version, Uuid::now_v7(), event, metadata.clone())
            })
            .collect::<Vec<_>>();
        let record = context
            .idempotency
            .as_ref()
            .map(|idempotency| IdempotencyRecord {
                key: idempotency.record_key(),
                fingerprint: idempotency.fingerprint.clone(),
                order_id,
                version: new_version,
                status: completion.status(),
                expires_at: Timestamp::from_millis(now.millis() + IDEMPOTENCY_TTL_MILLIS),
            });
        let appended = stored.len();
        let request = AppendRequest {
            order_id,
            expected_version: current_version,
            events: stored,
            idempotency: record,
            now,
        };
        match self.stores.events.append(request).await {
            Ok(()) => {
                info!(events = appended, version = new_version, "command applied");
                Ok((outcome, appended > 0))
            }
            // A create's append lost only if the id had a history after all: the order
            // exists, as the decider would have said had it read that history.
            Err(AppendError::Conflict { .. }) if matches!(command, OrderCommand::Create(_)) => {
                Err(DomainError::AlreadyExists.into())
            }
            Err(AppendError::Conflict {
                current_version: actual,
            }) => {
                warn!(
                    expected = current_version,
                    current_version = actual,
                    "lost an append race"
                );
                Err(AppError::Conflict {
                    current_version: actual,
                })
            }
            Err(AppendError::IdempotencyKeyInUse) => {
                // A concurrent request with the same key committed first: answer as it did.
                let idempotency = context
                    .idempotency
                    .as_ref()
                    .expect("only an append with a record can collide on its key");
                match self
                    .stores
                    .idempotency
                    .get(&idempotency.record_key(), now)
                    .await?
                {
                    Some(record) => self.replay(record, idempotency).await.map(|o| (o, false)),
                    None => Err(AppError::IdempotencyKeyBusy),
                }
            }
            Err(AppendError::Store(error)) => Err(error.into()),
        }
    }

    /// Answers a repeated request from its record: the order as it was right after the first
    /// request, with the first response's status. The body is rebuilt from the events, so
    /// nothing but the record needs storing.
    async fn replay(
        &self,
        record: IdempotencyRecord,
        idempotency: &Idempotency,
    ) -> Result<CommandOutcome, AppError> {
        tracing::Span::current().record("orderId", field::display(record.order_id));
        if record.fingerprint != idempotency.fingerprint {
            warn!("idempotency key reused for a different request");
            return Err(AppError::IdempotencyKeyReused);
        }
        let history = self
            .stores
            .events
            .load(record.order_id, Some(record.version))
            .await?;
        let state = fold(OrderState::default(), &history)?;
        let view = OrderView::from_state(record.order_id, state)
            .filter(|view| view.version == record.version)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "idempotency record points at version {} of order {}, which does not exist",
                    record.version, record.order_id
                ))
            })?;
        let completion = Completion::from_status(record.status).ok_or_else(|| {
            StoreError::Corrupt(format!("idempotency record has status {}", record.status))
        })?;
        info!(version = record.version, "replayed an idempotent request");
        Ok(CommandOutcome {
            view,
            completion,
            replayed: true,
        })
    }
}

/// The `outcome` label of a command's result (`appended`: it appended events).
fn measured(result: &Result<(CommandOutcome, bool), AppError>) -> Measured {
    match result {
        Ok((outcome, _)) if outcome.replayed => Measured::IdempotentReplay,
        Ok((_, false)) => Measured::Noop,
        Ok((outcome, true)) => match outcome.completion {
            Completion::Created => Measured::Created,
            Completion::Applied => Measured::Applied,
        },
        Err(AppError::Conflict { .. } | AppError::IdempotencyKeyBusy) => Measured::Conflict,
        Err(AppError::PreconditionFailed { .. }) => Measured::PreconditionFailed,
        Err(AppError::Rejected(_) | AppError::NotFound | AppError::IdempotencyKeyReused) => {
            Measured::Rejected
        }
        Err(AppError::Store(_) | AppError::Internal(_) | AppError::Corrupt(_)) => Measured::Error,
    }
}

/// `If-Match` is checked before deciding, so a client holding a stale version never gets a
/// no-op success for a state it has not seen.
fn check_precondition(
    state: &OrderState,
    command: &OrderCommand,
    precondition: Option<Precondition>,
) -> Result<(), AppError> {
    let Some(precondition) = precondition else {
        return Ok(());
    };
    let exists = state.order.is_some();
    if !exists && !matches!(command, OrderCommand::Create(_)) {
        // An unknown order is a 404 whatever the precondition says; decide reports it.
        return Ok(());
    }
    let holds = match precondition {
        Precondition::Exists => exists,
        Precondition::Version(version) => exists && version == state.version,
    };
    if holds {
        Ok(())
    } else {
        Err(AppError::PreconditionFailed {
            current_version: state.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use orders_domain::{CreateOrder, DomainError, OrderCommand};
    use orders_store::EventStore;
    use orders_testkit::{fixtures::create_body, stores};

    use super::*;
    use crate::app::SystemClock;
    use crate::http::extract::create_order;

    fn context() -> CommandContext {
        CommandContext {
            correlation_id: "test".to_owned(),
            precondition: None,
            idempotency: None,
        }
    }

    fn create() -> CreateOrder {
        create_order(Some(&create_body("cust-1"))).expect("a valid body")
    }

    /// A create skips the history read (its id is new); the append's condition is what
    /// refuses an id that has a history, and that is the decider's answer, not a 409.
    #[tokio::test]
    async fn a_create_under_an_id_that_has_a_history_is_already_exists_and_appends_nothing() {
        let (_dir, store) = stores::sqlite();
        let service = CommandService::new(
            Stores::shared(store.clone()),
            Arc::new(SystemClock),
            "orders.test",
        );
        let created = service.create(create(), context()).await.expect("created");
        let order_id = created.view.order_id;

        let again = service
            .execute(order_id, OrderCommand::Create(create()), context())
            .await;
        assert!(
            matches!(again, Err(AppError::Rejected(DomainError::AlreadyExists))),
            "{again:?}"
        );
        let history = store.load(order_id, None).await.expect("loads");
        assert_eq!(history.len(), 1, "still only the first OrderCreated");
    }
}
