//! orders-handlers: the application services of the order service and its HTTP API.
//!
//! - [`app`]: use cases against the store ports — [`CommandService`] (load → fold → If-Match →
//!   decide → append with the idempotency record) and [`QueryService`] (read model, or the
//!   event store for read-your-writes and history).
//! - [`http`]: the axum routers of DESIGN §4 and §5; errors become RFC 9457 problem+json in
//!   one place ([`http::problem`]).
//! - [`lambda`]: the plumbing of the `command-api` and `query-api` Lambda binaries, which serve
//!   the same routers through `lambda_http`.

pub mod app;
pub mod http;
pub mod lambda;

pub use app::{AppError, Clock, CommandService, QueryService, Stores, SystemClock};
pub use http::{Api, ApiConfig, ApiError, api_router, command_router, query_router, router};
