//! `POST /orders`, `POST /orders/{id}/confirm|cancel|ship`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders_domain::OrderCommand;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::etag;
use crate::app::CommandOutcome;
use crate::http::extract::{self, CommandHeaders, JsonBody, OrderIdPath};
use crate::http::openapi::{
    CommandHeaderParams, CreateOrderRequest, CreateResponses, OrderIdParam, TransitionResponses,
};
use crate::http::{ApiError, AppState};

pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Each route is registered from its `#[utoipa::path]`, so the document names exactly the
/// routes served. The responses every route shares (`X-Correlation-Id`, the problem bodies,
/// `Retry-After`) are added by [`openapi::document`](crate::http::openapi::document).
pub(in crate::http) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(confirm))
        .routes(routes!(cancel))
        .routes(routes!(ship))
}

/// Creates an order.
///
/// The new order is `PENDING`; its id is in the body and in `Location`. With an
/// `Idempotency-Key`, a repeat of the same request within 24 h replays this response.
#[utoipa::path(
    post,
    path = "/orders",
    tag = "commands",
    operation_id = "createOrder",
    params(CommandHeaderParams),
    request_body(content = CreateOrderRequest, content_type = "application/json"),
    responses(CreateResponses)
)]
async fn create(
    State(app): State<AppState>,
    headers: CommandHeaders,
    body: JsonBody,
) -> Result<CommandResponse, ApiError> {
    let create = extract::create_order(body.value())?;
    let canonical = extract::canonical_create(&create);
    let context = headers.context(&Method::POST, "/orders", Some(&canonical));
    Ok(CommandResponse(app.commands.create(create, context).await?))
}

/// A change to an existing order, `POST /orders/{id}/{name}`: the command its body makes,
/// whose [`name`](OrderCommand::name) is the path's last segment.
trait Transition {
    fn command(body: Option<&Value>) -> Result<OrderCommand, ApiError>;
}

struct Confirm;
struct Cancel;
struct Ship;

impl Transition for Confirm {
    fn command(body: Option<&Value>) -> Result<OrderCommand, ApiError> {
        extract::no_fields(body)?;
        Ok(OrderCommand::Confirm)
    }
}

impl Transition for Cancel {
    fn command(body: Option<&Value>) -> Result<OrderCommand, ApiError> {
        let reason = extract::cancel_reason(body)?;
        Ok(OrderCommand::Cancel { reason })
    }
}

impl Transition for Ship {
    fn command(body: Option<&Value>) -> Result<OrderCommand, ApiError> {
        extract::no_fields(body)?;
        Ok(OrderCommand::Ship)
    }
}

/// Confirms a `PENDING` order. Takes no body, or `{}`.
#[utoipa::path(
    post,
    path = "/orders/{id}/confirm",
    tag = "commands",
    operation_id = "confirmOrder",
    params(OrderIdParam, CommandHeaderParams),
    request_body(
        content = ref("#/components/schemas/EmptyRequest"),
        content_type = "application/json",
        description = "Optional: no body, or `{}`."
    ),
    responses(TransitionResponses)
)]
async fn confirm(
    app: State<AppState>,
    id: OrderIdPath,
    headers: CommandHeaders,
    body: JsonBody,
) -> Result<CommandResponse, ApiError> {
    transition::<Confirm>(app, id, headers, body).await
}

/// Cancels a `PENDING` or `CONFIRMED` order, with an optional reason.
#[utoipa::path(
    post,
    path = "/orders/{id}/cancel",
    tag = "commands",
    operation_id = "cancelOrder",
    params(OrderIdParam, CommandHeaderParams),
    request_body(
        content = ref("#/components/schemas/CancelRequest"),
        content_type = "application/json",
        description = "Optional: no body, `{}`, or a reason."
    ),
    responses(TransitionResponses)
)]
async fn cancel(
    app: State<AppState>,
    id: OrderIdPath,
    headers: CommandHeaders,
    body: JsonBody,
) -> Result<CommandResponse, ApiError> {
    transition::<Cancel>(app, id, headers, body).await
}

/// Ships a `CONFIRMED` order. Takes no body, or `{}`.
#[utoipa::path(
    post,
    path = "/orders/{id}/ship",
    tag = "commands",
    operation_id = "shipOrder",
    params(OrderIdParam, CommandHeaderParams),
    request_body(
        content = ref("#/components/schemas/EmptyRequest"),
        content_type = "application/json",
        description = "Optional: no body, or `{}`."
    ),
    responses(TransitionResponses)
)]
async fn ship(
    app: State<AppState>,
    id: OrderIdPath,
    headers: CommandHeaders,
    body: JsonBody,
) -> Result<CommandResponse, ApiError> {
    transition::<Ship>(app, id, headers, body).await
}

async fn transition<T: Transition>(
    State(app): State<AppState>,
    OrderIdPath(id): OrderIdPath,
    headers: CommandHeaders,
    body: JsonBody,
) -> Result<CommandResponse, ApiError> {
    let command = T::command(body.value())?;
    let path = format!("/orders/{id}/{}", command.name());
    let context = headers.context(
        &Method::POST,
        &path,
        extract::canonical_body(&command).as_ref(),
    );
    Ok(CommandResponse(
        app.commands.execute(id, command, context).await?,
    ))
}

/// 201 with `Location` for a create, 200 otherwise; `ETag` always; the view as the body.
struct CommandResponse(CommandOutcome);

impl IntoResponse for CommandResponse {
    fn into_response(self) -> Response {
        let CommandOutcome {
            view,
            completion,
            replayed,
        } = self.0;
        let status = StatusCode::from_u16(completion.status()).expect("completions are 200 or 201");
        let mut response = (status, Json(&view)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag(view.version));
        if status == StatusCode::CREATED {
            let location = HeaderValue::from_str(&format!("/orders/{}", view.order_id))
                .expect("a UUID is a valid header value");
            headers.insert(header::LOCATION, location);
        }
        if replayed {
            headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}
