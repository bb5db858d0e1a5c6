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

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cqrs_es::AggregateError;
use cqrs_es::persist::ViewRepository;
use dynamo_es::DynamoCqrs;
use serde::{Deserialize, Serialize};
use tracing::error;
use uuid::Uuid;

use crate::domain::{LineItem, Order, OrderCommand, OrderError};
use crate::view::{OrderView, OrderViewRepository};

#[derive(Clone)]
pub struct ApplicationState {
    pub cqrs: Arc<DynamoCqrs<Order>>,
    pub order_query: Arc<OrderViewRepository>,
}

pub fn router(state: ApplicationState) -> Router {
    Router::new()
        .route("/orders", post(create))
        .route("/orders/{id}", get(query))
        .route("/orders/{id}/confirm", post(confirm))
        .route("/orders/{id}/ship", post(ship))
        .route("/orders/{id}/cancel", post(cancel))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateOrder {
    customer_id: String,
    currency: String,
    items: Vec<LineItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelOrder {
    reason: Option<String>,
}

async fn create(
    State(state): State<ApplicationState>,
    body: Result<Json<CreateOrder>, JsonRejection>,
) -> Result<Response, Problem> {
    let Json(body) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let total = validate(&body)?;
    let id = Uuid::now_v7().to_string();
    let command = OrderCommand::Create {
        customer_id: body.customer_id,
        currency: body.currency,
        items: body.items,
        total,
        at: now(),
    };
    let view = execute_and_load(&state, &id, command).await?;
    let mut response = order_response(StatusCode::CREATED, view);
    let location = HeaderValue::from_str(&format!("/orders/{id}")).expect("a UUID is a header");
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
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
    let reason = if body.is_empty() {
        None
    } else {
        let body: CancelOrder =
            serde_json::from_slice(&body).map_err(|e| Problem::bad_request(e.to_string()))?;
        body.reason
    };
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(Problem::bad_request(
            "reason: must be at most 500 characters",
        ));
    }
    transition(state, id, OrderCommand::Cancel { reason, at: now() }).await
}

async fn transition(
    State(state): State<ApplicationState>,
    Path(id): Path<String>,
    command: OrderCommand,
) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    let view = execute_and_load(&state, &id, command).await?;
    Ok(order_response(StatusCode::OK, view))
}

async fn query(
    State(state): State<ApplicationState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    match state.order_query.load(&id).await {
        Ok(Some(view)) => Ok(order_response(StatusCode::OK, view)),
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
        Ok(Some(view)) => Ok(view),
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

/// The checks a handler makes before it builds a command; returns the order's total.
fn validate(body: &CreateOrder) -> Result<u64, Problem> {
    if body.customer_id.is_empty() {
        return Err(Problem::bad_request("customerId: must not be empty"));
    }
    if body.currency.len() != 3 || !body.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Problem::bad_request(
            "currency: must be an ISO 4217 code: three upper-case letters",
        ));
    }
    if body.items.is_empty() || body.items.len() > 100 {
        return Err(Problem::bad_request("items: must have from 1 to 100 lines"));
    }
    let mut total: u64 = 0;
    for item in &body.items {
        if item.sku.is_empty() {
            return Err(Problem::bad_request("items[].sku: must not be empty"));
        }
        if item.quantity == 0 {
            return Err(Problem::bad_request("items[].quantity: must be positive"));
        }
        total = u64::from(item.quantity)
            .checked_mul(item.unit_price)
            .and_then(|line| total.checked_add(line))
            .ok_or_else(|| Problem::bad_request("items: the total is too large"))?;
    }
    Ok(total)
}

fn order_id(raw: &str) -> Result<String, Problem> {
    Uuid::parse_str(raw)
        .map(|id| id.to_string())
        .map_err(|_| Problem::order_not_found())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn order_response(status: StatusCode, view: OrderView) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", view.version)).expect("digits");
    let mut response = (status, Json(view)).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// RFC 9457 problem+json, as the Orders service writes it.
#[derive(Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
}

impl Problem {
    fn new(status: StatusCode, slug: &str, title: &'static str, detail: String) -> Self {
        Self {
            kind: format!("urn:orders:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail,
        }
    }

    fn bad_request(detail: impl Into<String>) -> Self {
        let status = StatusCode::BAD_REQUEST;
        Self::new(status, "invalid-request", "Invalid request", detail.into())
    }

    fn order_not_found() -> Self {
        let detail = OrderError::NotFound.to_string();
        Self::new(
            StatusCode::NOT_FOUND,
            "order-not-found",
            "Order not found",
            detail,
        )
    }

    fn internal() -> Self {
        let detail = "The request could not be completed because of an internal error.";
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        Self::new(status, "internal", "Internal error", detail.into())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).expect("a status we built");
        let mut response = (status, Json(self)).into_response();
        let problem_json = HeaderValue::from_static("application/problem+json");
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, problem_json);
        response
    }
}
