//! `POST /orders`, `POST /orders/{id}/confirm|cancel|ship`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use orders_domain::{OrderCommand, OrderId};

use super::etag;
use crate::app::CommandOutcome;
use crate::http::extract::{self, CommandHeaders, JsonBody, OrderIdPath};
use crate::http::{ApiError, AppState};

pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create))
        .route("/orders/{id}/confirm", post(confirm))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/ship", post(ship))
}

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

async fn confirm(
    State(app): State<AppState>,
    OrderIdPath(id): OrderIdPath,
    headers: CommandHeaders,
    body: JsonBody,
) -> Result<CommandResponse, ApiError> {
    extract::no_fields(body.value())?;
    run(app, id, "confirm", OrderCommand::Confirm, headers).await
}

async fn cancel(
    State(app): State<AppState>,
    OrderIdPath(id): OrderIdPath,
    headers: CommandHeaders,
    body: JsonBody,
) -> Result<CommandResponse, ApiError> {
    let reason = extract::cancel_reason(body.value())?;
    run(app, id, "cancel", OrderCommand::Cancel { reason }, headers).await
}

async fn ship(
    State(app): State<AppState>,
    OrderIdPath(id): OrderIdPath,
    headers: CommandHeaders,
    body: JsonBody,
) -> Result<CommandResponse, ApiError> {
    extract::no_fields(body.value())?;
    run(app, id, "ship", OrderCommand::Ship, headers).await
}

async fn run(
    app: AppState,
    id: OrderId,
    action: &str,
    command: OrderCommand,
    headers: CommandHeaders,
) -> Result<CommandResponse, ApiError> {
    let path = format!("/orders/{id}/{action}");
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
