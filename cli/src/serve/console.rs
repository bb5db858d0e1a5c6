//! `GET /`: the local console of `orders serve` (issue 16).

use axum::Router;

/// The console page.
pub fn router() -> Router {
    Router::new()
}
