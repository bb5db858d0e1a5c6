//! `GET /orders/{id}`, `GET /orders/{id}/events`, `GET /orders?customerId=..|status=..`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use orders_domain::{CustomerId, OrderId, OrderStatus};
use orders_store::{ListFilter, ListQuery, OrderView, StoredEvent};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::etag;
use crate::app::ReadAt;
use crate::http::extract::{OrderIdPath, QueryParams, integer_in};
use crate::http::openapi::{
    ETag, History as HistoryDoc, ListParams, Listing as ListingDoc, Order, OrderIdParam,
    OrderReadParams, Problem,
};
use crate::http::{ApiError, AppState};

pub(in crate::http) const DEFAULT_LIMIT: u32 = 20;
pub(in crate::http) const MAX_LIMIT: u64 = 100;

/// Each route is registered from its `#[utoipa::path]` (see `commands::routes`).
pub(in crate::http) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(order))
        .routes(routes!(events))
}

/// Reads an order.
///
/// From the read model, which may lag behind the last command. `minVersion` gives
/// read-your-writes (the events are folded when the view is behind it); `atVersion` gives the
/// order as it was after that event.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "queries",
    operation_id = "getOrder",
    params(OrderIdParam, OrderReadParams),
    responses(
        (status = 200, description = "The order.", body = Order,
            headers(("etag" = inline(ETag), description = "`\"<version>\"`: the version of the order returned."))),
        (status = 400, description = "`invalid-request`: an unknown, repeated or invalid query parameter, or both `minVersion` and `atVersion`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`order-not-found`: no such order, or not up to `minVersion`/`atVersion`; `not-found`: the id is not a UUID.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the details are logged, never sent.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`: the store is throttling or unavailable; retry after `Retry-After` seconds.", body = Problem, content_type = "application/problem+json"),
    )
)]
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

/// An order's event history, in version order.
#[utoipa::path(
    get,
    path = "/orders/{id}/events",
    tag = "queries",
    operation_id = "getOrderEvents",
    params(OrderIdParam),
    responses(
        (status = 200, description = "Every event of the order.", body = HistoryDoc),
        (status = 400, description = "`invalid-request`: this route takes no query parameters.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`order-not-found`: no such order; `not-found`: the id is not a UUID.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the details are logged, never sent.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`: the store is throttling or unavailable; retry after `Retry-After` seconds.", body = Problem, content_type = "application/problem+json"),
    )
)]
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

/// Lists orders of one customer, or in one status, newest first.
///
/// Give exactly one of `customerId` or `status`. Pages hold up to `limit` orders; pass
/// `nextCursor` back as `cursor` (with the same filter) for the next page. `nextCursor` is
/// `null` on the last page.
#[utoipa::path(
    get,
    path = "/orders",
    tag = "queries",
    operation_id = "listOrders",
    params(ListParams),
    responses(
        (status = 200, description = "A page of orders.", body = ListingDoc),
        (status = 400, description = "`invalid-request`: neither or both of `customerId` and `status`, an invalid value, a `limit` out of range, or a cursor that is not one this service signed for this filter.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the details are logged, never sent.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`: the store is throttling or unavailable; retry after `Retry-After` seconds.", body = Problem, content_type = "application/problem+json"),
    )
)]
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
