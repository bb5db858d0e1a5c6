//! The routes of DESIGN §4 (commands) and §5 (queries), and the problem+json fallbacks.

mod commands;
mod queries;

use axum::http::HeaderValue;

pub(super) use commands::routes as commands;
pub(super) use queries::routes as queries;

use super::ApiError;

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
