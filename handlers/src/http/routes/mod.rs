//! The routes of DESIGN §4 (commands) and §5 (queries), and the problem+json fallbacks.

mod commands;
mod queries;

use axum::http::HeaderValue;
use utoipa_axum::router::OpenApiRouter;

#[cfg(test)]
pub(super) use queries::{DEFAULT_LIMIT, MAX_LIMIT};

use super::{Api, ApiError, AppState};

/// The routes `api` serves, each with its part of the OpenAPI document: the router and the
/// document come from this one place.
pub(super) fn routes(api: Api) -> OpenApiRouter<AppState> {
    let mut routes = OpenApiRouter::new();
    if api.serves_commands() {
        routes = routes.merge(commands::routes());
    }
    if api.serves_queries() {
        routes = routes.merge(queries::routes());
    }
    routes
}

pub(super) async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// `"<version>"`: a strong entity tag, the same form `If-Match` takes.
fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes are a valid header")
}
