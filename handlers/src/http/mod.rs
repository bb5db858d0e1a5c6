//! The HTTP layer (axum): routes, extraction of parsed values, problem+json errors, cursors.
//!
//! The routers take their stores as ports and keep no global state, so one process can serve
//! both APIs (`orders serve`) and each Lambda can serve its half.

pub mod correlation;
pub mod cursor;
pub mod extract;
pub mod openapi;
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

/// Which side of the command/query split a router serves: the HTTP routes, the Lambda
/// function and the `metadata.source` of what it writes all follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// DESIGN §4: the `command-api` Lambda.
    Commands,
    /// DESIGN §5: the `query-api` Lambda.
    Queries,
    /// Both, on one port: `orders serve`.
    Both,
}

impl Api {
    /// The function's name (`orders serve` for both).
    pub fn name(self) -> &'static str {
        match self {
            Api::Commands => "command-api",
            Api::Queries => "query-api",
            Api::Both => "orders serve",
        }
    }

    /// The `metadata.source` of the events written through this API.
    pub fn source(self) -> &'static str {
        match self {
            Api::Commands => "orders.command-api",
            Api::Queries => "orders.query-api",
            Api::Both => "orders.api",
        }
    }

    pub fn serves_commands(self) -> bool {
        matches!(self, Api::Commands | Api::Both)
    }

    /// Whether it lists orders, and so signs cursors.
    pub fn serves_queries(self) -> bool {
        matches!(self, Api::Queries | Api::Both)
    }
}

/// The command and query routes together.
pub fn api_router(stores: Stores, config: ApiConfig) -> Router {
    router(stores, config, Arc::new(SystemClock), Api::Both)
}

pub fn command_router(stores: Stores, config: ApiConfig) -> Router {
    router(stores, config, Arc::new(SystemClock), Api::Commands)
}

pub fn query_router(stores: Stores, config: ApiConfig) -> Router {
    router(stores, config, Arc::new(SystemClock), Api::Queries)
}

/// The general form, with the clock as a parameter (tests pass a controllable one).
pub fn router(stores: Stores, config: ApiConfig, clock: Arc<dyn Clock>, api: Api) -> Router {
    let state = AppState {
        queries: Arc::new(QueryService::new(&stores)),
        commands: Arc::new(CommandService::new(stores, clock, config.source)),
        cursors: Arc::new(CursorCodec::new(config.cursor_key)),
    };
    let (routes, _) = routes::routes(api).split_for_parts();
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
