//! The HTTP layer (axum): routes, extraction of parsed values, problem+json errors, cursors.
//!
//! The routers take their stores as ports and keep no global state, so one process can serve
//! both APIs (`orders serve`) and each Lambda can serve its half.

pub mod correlation;
pub mod cursor;
pub mod extract;
pub mod problem;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::middleware;

pub use problem::ApiError;

use crate::app::{Clock, CommandService, QueryService, Stores, SystemClock};
use cursor::CursorCodec;

/// Settings of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Stamped into every event's `metadata.source`, e.g. `orders.api`.
    pub source: String,
    /// HMAC key that signs listing cursors. Every instance must use the same key.
    pub cursor_key: Vec<u8>,
}

/// Which routes a router serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// DESIGN §4, for the `command-api` Lambda.
    Commands,
    /// DESIGN §5, for the `query-api` Lambda.
    Queries,
    /// Both, on one port (`orders serve`).
    All,
}

/// The command and query routes together.
pub fn api_router(stores: Stores, config: ApiConfig) -> Router {
    router(stores, config, Arc::new(SystemClock), Surface::All)
}

pub fn command_router(stores: Stores, config: ApiConfig) -> Router {
    router(stores, config, Arc::new(SystemClock), Surface::Commands)
}

pub fn query_router(stores: Stores, config: ApiConfig) -> Router {
    router(stores, config, Arc::new(SystemClock), Surface::Queries)
}

/// The general form, with the clock as a parameter (tests pass a controllable one).
pub fn router(
    stores: Stores,
    config: ApiConfig,
    clock: Arc<dyn Clock>,
    surface: Surface,
) -> Router {
    let state = AppState {
        queries: Arc::new(QueryService::new(&stores)),
        commands: Arc::new(CommandService::new(stores, clock, config.source)),
        cursors: Arc::new(CursorCodec::new(config.cursor_key)),
    };
    let mut routes = Router::new();
    if matches!(surface, Surface::Commands | Surface::All) {
        routes = routes.merge(routes::commands());
    }
    if matches!(surface, Surface::Queries | Surface::All) {
        routes = routes.merge(routes::queries());
    }
    routes
        // Applies to the routes added so far, so it comes after all of them.
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .layer(middleware::from_fn(correlation::correlate))
        .with_state(state)
}

#[derive(Clone)]
struct AppState {
    commands: Arc<CommandService>,
    queries: Arc<QueryService>,
    cursors: Arc<CursorCodec>,
}

#[cfg(test)]
mod tests;
