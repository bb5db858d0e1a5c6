//! `peer-shape`: the one copy of what the benchmark peers must have alike, so a comparison
//! measures storage, not parsing or response building: the request bodies and their checks, the
//! order JSON with its `ETag` (and `Location` on create), the problem+json errors, the route
//! table, and the process around the router (bind, the `listening on http://ADDR` line scripts wait for,
//! graceful shutdown on SIGTERM or SIGINT). Each peer keeps only its handlers' storage.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::handler::Handler;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use uuid::Uuid;

/// The routes, each to its peer's handler: `POST /orders`, `GET /orders/{id}`,
/// `POST /orders/{id}/confirm`, `POST /orders/{id}/ship`, `POST /orders/{id}/cancel`.
pub fn routes<S, Create, Query, Confirm, Ship, Cancel>(
    create: impl Handler<Create, S>,
    query: impl Handler<Query, S>,
    confirm: impl Handler<Confirm, S>,
    ship: impl Handler<Ship, S>,
    cancel: impl Handler<Cancel, S>,
) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Create: 'static,
    Query: 'static,
    Confirm: 'static,
    Ship: 'static,
    Cancel: 'static,
{
    Router::new()
        .route("/orders", post(create))
        .route("/orders/{id}", get(query))
        .route("/orders/{id}/confirm", post(confirm))
        .route("/orders/{id}/ship", post(ship))
        .route("/orders/{id}/cancel", post(cancel))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    #[default]
    Pending,
    Confirmed,
    Shipped,
    Cancelled,
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Shipped => "SHIPPED",
            Self::Cancelled => "CANCELLED",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: u64,
}

/// The order as every command and GET answers it (`{"orderId","version","customerId",…}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub version: u64,
    pub customer_id: String,
    pub status: OrderStatus,
    pub currency: String,
    pub items: Vec<LineItem>,
    pub total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
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

/// A create body that passed the checks a handler makes before it builds a command, with the
/// order's total. As an extractor it answers a body it refuses with a 400 problem.
#[derive(Debug)]
pub struct NewOrder {
    pub customer_id: String,
    pub currency: String,
    pub items: Vec<LineItem>,
    pub total: u64,
}

impl<S: Send + Sync> FromRequest<S> for NewOrder {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let body: Result<Json<CreateOrder>, JsonRejection> =
            Json::from_request(request, state).await;
        let Json(body) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
        Self::validate(body)
    }
}

impl NewOrder {
    fn validate(body: CreateOrder) -> Result<Self, Problem> {
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
        Ok(Self {
            customer_id: body.customer_id,
            currency: body.currency,
            items: body.items,
            total,
        })
    }
}

/// A cancel body's reason: an empty body or `{"reason":null}` is none; at most 500 characters.
/// A plain function rather than an extractor, so each peer keeps its order of checks (the floor
/// checks the order id first, the cqrs-es peer the body).
pub fn cancel_reason(body: &[u8]) -> Result<Option<String>, Problem> {
    let reason = if body.is_empty() {
        None
    } else {
        let body: CancelOrder =
            serde_json::from_slice(body).map_err(|e| Problem::bad_request(e.to_string()))?;
        body.reason
    };
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(Problem::bad_request(
            "reason: must be at most 500 characters",
        ));
    }
    Ok(reason)
}

/// The `{id}` of a route: a UUID, or no such order (404).
pub fn order_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::order_not_found())
}

/// `201 Created` with the order, its `ETag` and `Location: /orders/{orderId}`.
pub fn created(view: OrderView) -> Response {
    let location = HeaderValue::from_str(&format!("/orders/{}", view.order_id))
        .expect("an order id is a header value");
    let mut response = order_response(StatusCode::CREATED, view);
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// `200 OK` with the order and its `ETag`.
pub fn ok(view: OrderView) -> Response {
    order_response(StatusCode::OK, view)
}

fn order_response(status: StatusCode, view: OrderView) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", view.version)).expect("digits");
    let mut response = (status, Json(view)).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// RFC 9457 problem+json, as the Orders service writes it.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
}

impl Problem {
    /// `type` is `urn:orders:problem:{slug}`.
    pub fn new(status: StatusCode, slug: &str, title: &'static str, detail: String) -> Self {
        Self {
            kind: format!("urn:orders:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        let status = StatusCode::BAD_REQUEST;
        Self::new(status, "invalid-request", "Invalid request", detail.into())
    }

    pub fn order_not_found() -> Self {
        let detail = "the order does not exist".into();
        let status = StatusCode::NOT_FOUND;
        Self::new(status, "order-not-found", "Order not found", detail)
    }

    pub fn internal() -> Self {
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

/// A bound listener, before the `listening on` line.
pub struct Listening {
    listener: TcpListener,
    addr: SocketAddr,
}

/// Binds `addr` (port 0 picks a free one).
pub async fn listen(addr: SocketAddr) -> io::Result<Listening> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    Ok(Listening { listener, addr })
}

impl Listening {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Prints `listening on http://ADDR`, the one line on stdout that scripts wait for, then
    /// serves `router` until SIGTERM or SIGINT (`on_signal` runs when one arrives) and the
    /// requests in flight are answered.
    pub async fn serve(
        self,
        router: Router,
        on_signal: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on http://{}", self.addr)?;
        stdout.flush()?;
        drop(stdout);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(async {
                shutdown_signal().await;
                on_signal();
            })
            .await
    }
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
