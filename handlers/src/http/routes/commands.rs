//! `POST /orders`, `POST /orders/{id}/confirm|cancel|ship`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use orders_domain::OrderCommand;
use serde_json::Value;

use super::etag;
use crate::app::CommandOutcome;
use crate::http::extract::{self, CommandHeaders, JsonBody, OrderIdPath};
use crate::http::{ApiError, AppState};

pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create))
        .route("/orders/{id}/confirm", post(transition::<Confirm>))
        .route("/orders/{id}/cancel", post(transition::<Cancel>))
        .route("/orders/{id}/ship", post(transition::<Ship>))
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
