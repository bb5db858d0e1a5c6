//! `GET /openapi.json` and the API reference page of `orders serve` (issue 16).

use axum::Router;

/// The OpenAPI document and its reference page.
pub fn router() -> Router {
    Router::new()
}
