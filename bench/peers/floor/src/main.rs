//! `floor`: the Orders routes with no storage, the floor of a benchmark comparison: the
//! fastest a service with our API could answer. It parses and checks bodies as a handler would
//! and answers the same shapes (status codes, ETag and Location, the order JSON), but stores
//! nothing: create answers version 1 PENDING with a new UUIDv7, confirm version 2 CONFIRMED,
//! ship version 3 SHIPPED, cancel version 2 CANCELLED, and GET version 3 SHIPPED, for any
//! order id that is a UUID (404 otherwise). Timestamps are fixed.
//!
//! ```text
//! floor --listen 127.0.0.1:0      # prints `listening on http://ADDR`; stops on SIGTERM/SIGINT
//! ```

use std::error::Error;
use std::io::Write;
use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const AT: &str = "2026-01-01T00:00:00.000Z";

#[derive(Clone, Copy, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Cancelled,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LineItem {
    sku: String,
    quantity: u32,
    unit_price: u64,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderView {
    order_id: String,
    version: u64,
    customer_id: String,
    status: OrderStatus,
    currency: String,
    items: Vec<LineItem>,
    total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_reason: Option<String>,
    created_at: String,
    updated_at: String,
}

impl OrderView {
    /// The order every command but create answers with, at `version` and `status`.
    fn stock(order_id: Uuid, version: u64, status: OrderStatus) -> Self {
        Self {
            order_id: order_id.to_string(),
            version,
            customer_id: "cust-42".into(),
            status,
            currency: "EUR".into(),
            items: vec![LineItem {
                sku: "BOOK-1".into(),
                quantity: 2,
                unit_price: 1250,
            }],
            total: 2500,
            cancel_reason: None,
            created_at: AT.into(),
            updated_at: AT.into(),
        }
    }
}

fn router() -> Router {
    Router::new()
        .route("/orders", post(create))
        .route("/orders/{id}", get(query))
        .route("/orders/{id}/confirm", post(confirm))
        .route("/orders/{id}/ship", post(ship))
        .route("/orders/{id}/cancel", post(cancel))
}

async fn create(body: Result<Json<CreateOrder>, JsonRejection>) -> Result<Response, Problem> {
    let Json(body) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let total = validate(&body)?;
    let view = OrderView {
        order_id: Uuid::now_v7().to_string(),
        version: 1,
        customer_id: body.customer_id,
        status: OrderStatus::Pending,
        currency: body.currency,
        items: body.items,
        total,
        cancel_reason: None,
        created_at: AT.into(),
        updated_at: AT.into(),
    };
    let location = HeaderValue::from_str(&format!("/orders/{}", view.order_id)).expect("a UUID");
    let mut response = order_response(StatusCode::CREATED, view);
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

async fn confirm(Path(id): Path<String>) -> Result<Response, Problem> {
    let view = OrderView::stock(order_id(&id)?, 2, OrderStatus::Confirmed);
    Ok(order_response(StatusCode::OK, view))
}

async fn ship(Path(id): Path<String>) -> Result<Response, Problem> {
    let view = OrderView::stock(order_id(&id)?, 3, OrderStatus::Shipped);
    Ok(order_response(StatusCode::OK, view))
}

async fn cancel(Path(id): Path<String>, body: Bytes) -> Result<Response, Problem> {
    let id = order_id(&id)?;
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
    let mut view = OrderView::stock(id, 2, OrderStatus::Cancelled);
    view.cancel_reason = reason;
    Ok(order_response(StatusCode::OK, view))
}

async fn query(Path(id): Path<String>) -> Result<Response, Problem> {
    let view = OrderView::stock(order_id(&id)?, 3, OrderStatus::Shipped);
    Ok(order_response(StatusCode::OK, view))
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

fn order_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::order_not_found())
}

fn order_response(status: StatusCode, view: OrderView) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", view.version)).expect("digits");
    let mut response = (status, Json(view)).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// RFC 9457 problem+json, as the Orders service writes it.
#[derive(Serialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
}

impl Problem {
    fn bad_request(detail: impl Into<String>) -> Self {
        Self {
            kind: "urn:orders:problem:invalid-request".into(),
            title: "Invalid request",
            status: 400,
            detail: detail.into(),
        }
    }

    fn order_not_found() -> Self {
        Self {
            kind: "urn:orders:problem:order-not-found".into(),
            title: "Order not found",
            status: 404,
            detail: "the order does not exist".into(),
        }
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

fn parse_listen() -> Result<SocketAddr, Box<dyn Error>> {
    let mut listen: SocketAddr = "127.0.0.1:3000".parse()?;
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        match flag.as_str() {
            "--listen" => listen = argv.next().ok_or("--listen needs a value")?.parse()?,
            _ => return Err(format!("unknown argument {flag}").into()),
        }
    }
    Ok(listen)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind(parse_listen()?).await?;
    // The one line on stdout that scripts wait for.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
    stdout.flush()?;
    drop(stdout);
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
