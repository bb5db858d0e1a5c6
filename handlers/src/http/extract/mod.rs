//! From raw HTTP to parsed values: the JSON body (size, media type, syntax, unique keys), the
//! command headers, the order id in the path and the query string. Every rejection is an
//! [`ApiError`](super::ApiError), so it renders as problem+json like any other error.
//!
//! - [`body`]: the JSON body (size limit, media type, the duplicate-key-aware parse).
//! - [`command`]: the command bodies parsed into domain values, every field error at once.
//! - [`headers`]: `If-Match`, `Idempotency-Key` and the caller of a command.
//! - [`fingerprint`]: the canonical body of a parsed command and the idempotency fingerprint.
//! - [`path`]: the order id in the path.
//! - [`query`]: the query string.

mod body;
mod command;
mod fingerprint;
mod headers;
mod path;
mod query;

pub use body::{JsonBody, MAX_BODY_BYTES};
pub use command::{cancel_reason, create_order, no_fields};
pub use fingerprint::{canonical_body, canonical_create, fingerprint};
pub use headers::{CommandHeaders, IDEMPOTENCY_KEY};
pub use path::OrderIdPath;
pub use query::{Params, QueryParams, integer_in};
