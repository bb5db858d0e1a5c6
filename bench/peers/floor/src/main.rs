//! `floor`: the Orders routes with no storage, the floor of a benchmark comparison: the
//! fastest a service with our API could answer. It parses and checks bodies as a handler would
//! and answers the same shapes (status codes, ETag and Location, the order JSON), but stores
//! nothing: create answers version 1 PENDING with a new UUIDv7, confirm version 2 CONFIRMED,
//! ship version 3 SHIPPED, cancel version 2 CANCELLED, and GET version 3 SHIPPED, for any
//! order id that is a UUID (404 otherwise). Timestamps are fixed. The parsing, checks and
//! response shapes, and the listen/shutdown around the router, are `peer-shape`'s (../shape),
//! shared with the cqrs-es peer.
//!
//! ```text
//! floor --listen 127.0.0.1:0      # prints `listening on http://ADDR`; stops on SIGTERM/SIGINT
//! ```

use std::error::Error;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::Path;
use axum::response::Response;
use peer_shape::{LineItem, NewOrder, OrderStatus, OrderView, Problem, order_id};
use uuid::Uuid;

const AT: &str = "2026-01-01T00:00:00.000Z";

/// The order every command but create answers with, at `version` and `status`.
fn stock(order_id: Uuid, version: u64, status: OrderStatus) -> OrderView {
    OrderView {
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

async fn create(body: NewOrder) -> Response {
    peer_shape::created(OrderView {
        order_id: Uuid::now_v7().to_string(),
        version: 1,
        customer_id: body.customer_id,
        status: OrderStatus::Pending,
        currency: body.currency,
        items: body.items,
        total: body.total,
        cancel_reason: None,
        created_at: AT.into(),
        updated_at: AT.into(),
    })
}

async fn confirm(Path(id): Path<String>) -> Result<Response, Problem> {
    let view = stock(order_id(&id)?, 2, OrderStatus::Confirmed);
    Ok(peer_shape::ok(view))
}

async fn ship(Path(id): Path<String>) -> Result<Response, Problem> {
    let view = stock(order_id(&id)?, 3, OrderStatus::Shipped);
    Ok(peer_shape::ok(view))
}

async fn cancel(Path(id): Path<String>, body: Bytes) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    let mut view = stock(id, 2, OrderStatus::Cancelled);
    view.cancel_reason = peer_shape::cancel_reason(&body)?;
    Ok(peer_shape::ok(view))
}

async fn query(Path(id): Path<String>) -> Result<Response, Problem> {
    let view = stock(order_id(&id)?, 3, OrderStatus::Shipped);
    Ok(peer_shape::ok(view))
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
    let listening = peer_shape::listen(parse_listen()?).await?;
    let router = peer_shape::routes(create, query, confirm, ship, cancel);
    listening.serve(router, || {}).await?;
    Ok(())
}
