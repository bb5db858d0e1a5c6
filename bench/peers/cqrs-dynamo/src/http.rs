//! The Orders HTTP API over the `CqrsFramework`, in the demo's route-handler style: a command
//! is `cqrs.execute(id, command)`, a query is `view_repository.load(id)`.
//!
//! The demo answers a command with `204 No Content`. The Orders API answers with the order, so
//! after `execute` succeeds the handler loads the view the framework has just written, as a
//! careful cqrs-es user would (`execute` returns `()`; the view is the only read model).
//! What that costs, in DynamoDB requests (dynamo-es 0.5.0, event store without snapshots):
//!
//! | step                                   | request                                        |
//! |----------------------------------------|------------------------------------------------|
//! | `execute`: load the aggregate          | Query on the events table (consistent read)    |
//! | `execute`: commit the new event        | TransactWriteItems, 1 conditional Put          |
//! | `execute`: GenericQuery loads the view | Query on the view table (eventually consistent)|
//! | `execute`: GenericQuery saves the view | TransactWriteItems, 1 conditional Put          |
//! | the response: load the view            | Query on the view table (eventually consistent)|
//!
//! Five requests for a command that records an event; two (the aggregate's Query and the
//! response's Query) for an accepted no-op such as confirming a confirmed order, and one for a
//! refused command (404/409). A GET is one Query on the view table.
//!
//! Parsing, checks, the order JSON and the problem+json errors are `peer-shape`'s (../shape),
//! shared with the floor.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cqrs_es::AggregateError;
use cqrs_es::persist::ViewRepository;
use dynamo_es::DynamoCqrs;
use peer_shape::{NewOrder, OrderView, Problem};
use tracing::error;
use uuid::Uuid;

use crate::domain::{Order, OrderCommand, OrderError};
use crate::view::OrderViewRepository;

#[derive(Clone)]
pub struct ApplicationState {
    pub cqrs: Arc<DynamoCqrs<Order>>,
    pub order_query: Arc<OrderViewRepository>,
}

pub fn router(state: ApplicationState) -> Router {
    peer_shape::routes(create, query, confirm, ship, cancel).with_state(state)
}

async fn create(
    State(state): State<ApplicationState>,
    body: NewOrder,
) -> Result<Response, Problem> {
    let id = Uuid::now_v7().to_string();
    let command = OrderCommand::Create {
        customer_id: body.customer_id,
        currency: body.currency,
        items: body.items,
        total: body.total,
        at: now(),
    };
    let view = execute_and_load(&state, &id, command).await?;
    Ok(peer_shape::created(view))
}

async fn confirm(state: State<ApplicationState>, id: Path<String>) -> Result<Response, Problem> {
    transition(state, id, OrderCommand::Confirm { at: now() }).await
}

async fn ship(state: State<ApplicationState>, id: Path<String>) -> Result<Response, Problem> {
    transition(state, id, OrderCommand::Ship { at: now() }).await
}

async fn cancel(
    state: State<ApplicationState>,
    id: Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let reason = peer_shape::cancel_reason(&body)?;
    transition(state, id, OrderCommand::Cancel { reason, at: now() }).await
}

async fn transition(
    State(state): State<ApplicationState>,
    Path(id): Path<String>,
    command: OrderCommand,
) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    let view = execute_and_load(&state, &id, command).await?;
    Ok(peer_shape::ok(view))
}

async fn query(
    State(state): State<ApplicationState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    match state.order_query.load(&id).await {
        Ok(Some(view)) => Ok(peer_shape::ok(view.0)),
        Ok(None) => Err(Problem::order_not_found()),
        Err(e) => {
            error!(error = %e, "loading the view failed");
            Err(Problem::internal())
        }
    }
}

/// `execute`, then read back the view the framework's GenericQuery has just written.
async fn execute_and_load(
    state: &ApplicationState,
    id: &str,
    command: OrderCommand,
) -> Result<OrderView, Problem> {
    state.cqrs.execute(id, command).await.map_err(|e| match e {
        AggregateError::UserError(OrderError::NotFound) => Problem::order_not_found(),
        AggregateError::UserError(e) => Problem::new(
            StatusCode::CONFLICT,
            "invalid-transition",
            "Command not allowed",
            e.to_string(),
        ),
        AggregateError::AggregateConflict => Problem::new(
            StatusCode::CONFLICT,
            "concurrent-modification",
            "Concurrent modification",
            "a concurrent request changed the order first".into(),
        ),
        e => {
            error!(error = %e, "execute failed");
            Problem::internal()
        }
    })?;
    match state.order_query.load(id).await {
        Ok(Some(view)) => Ok(view.0),
        // The GenericQuery logs its own failures; a view that is missing here is one of them.
        Ok(None) => {
            error!(order_id = id, "the view is missing after a command");
            Err(Problem::internal())
        }
        Err(e) => {
            error!(error = %e, "loading the view failed");
            Err(Problem::internal())
        }
    }
}

/// The id as the event store keys it: the UUID in its hyphenated lower-case form.
fn order_id(raw: &str) -> Result<String, Problem> {
    peer_shape::order_id(raw).map(|id| id.to_string())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
