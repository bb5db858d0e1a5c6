//! `GET /orders/{id}`, `GET /orders/{id}/events`, `GET /orders?customerId=..|status=..`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orders_domain::{CustomerId, OrderId, OrderStatus};
use orders_store::{ListFilter, ListQuery, OrderView, StoredEvent};
use serde::Serialize;

use super::etag;
use crate::app::ReadAt;
use crate::http::extract::{OrderIdPath, QueryParams, integer_in};
use crate::http::{ApiError, AppState};

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u64 = 100;

pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list))
        .route("/orders/{id}", get(order))
        .route("/orders/{id}/events", get(events))
}

async fn order(
    State(app): State<AppState>,
    OrderIdPath(id): OrderIdPath,
    params: QueryParams,
) -> Result<Response, ApiError> {
    let mut params = params.only(&["minVersion", "atVersion"]);
    if params.has("minVersion") && params.has("atVersion") {
        params.error("atVersion", "cannot be combined with minVersion");
    }
    let version = |raw: &str| integer_in(raw, 1..=u64::MAX);
    let min = params.take("minVersion", version);
    let at = params.take("atVersion", version);
    params.finish()?;
    let read_at = match (min, at) {
        (Some(min), _) => ReadAt::MinVersion(min),
        (None, Some(at)) => ReadAt::AtVersion(at),
        (None, None) => ReadAt::Projection,
    };
    let view = app.queries.order(id, read_at).await?;
    Ok(([(header::ETAG, etag(view.version))], Json(view)).into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct History {
    order_id: OrderId,
    events: Vec<StoredEvent>,
}

async fn events(
    State(app): State<AppState>,
    OrderIdPath(id): OrderIdPath,
    params: QueryParams,
) -> Result<Json<History>, ApiError> {
    params.only(&[]).finish()?;
    let events = app.queries.history(id).await?;
    Ok(Json(History {
        order_id: id,
        events,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    items: Vec<OrderView>,
    next_cursor: Option<String>,
}

async fn list(State(app): State<AppState>, params: QueryParams) -> Result<Json<Listing>, ApiError> {
    let mut params = params.only(&["customerId", "status", "limit", "cursor"]);
    let neither = !params.has("customerId") && !params.has("status");
    let customer = params.take("customerId", |raw| {
        CustomerId::parse(raw).map_err(|e| e.message)
    });
    let status = params.take("status", |raw| raw.parse::<OrderStatus>());
    let limit = params
        .take("limit", |raw| integer_in(raw, 1..=MAX_LIMIT))
        .map_or(DEFAULT_LIMIT, |n| u32::try_from(n).expect("at most 100"));
    let cursor = params.take("cursor", |raw| Ok::<_, String>(raw.to_owned()));
    let filter = match (customer, status) {
        (Some(customer), None) => Some(ListFilter::Customer(customer)),
        (None, Some(status)) => Some(ListFilter::Status(status)),
        (Some(_), Some(_)) => {
            params.error("status", "cannot be combined with customerId");
            None
        }
        (None, None) => {
            // An invalid one has its own error already.
            if neither {
                params.error("customerId", "give exactly one of customerId or status");
            }
            None
        }
    };
    let after = match (&filter, cursor) {
        (Some(filter), Some(cursor)) => app
            .cursors
            .decode(filter, &cursor)
            .map_err(|e| params.error("cursor", e.to_string()))
            .ok(),
        _ => None,
    };
    params.finish()?;
    let filter = filter.expect("finish fails when no filter was parsed");
    let page = app
        .queries
        .list(&ListQuery {
            filter: filter.clone(),
            limit,
            after,
        })
        .await?;
    Ok(Json(Listing {
        next_cursor: page.next.map(|next| app.cursors.encode(&filter, &next)),
        items: page.items,
    }))
}
