//! The order id in the path of an order route.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use orders_domain::OrderId;

use crate::http::ApiError;

/// The `{id}` of an order route. Anything that is not a UUID cannot name an order: 404.
#[derive(Debug, Clone, Copy)]
pub struct OrderIdPath(pub OrderId);

impl<S: Send + Sync> FromRequestParts<S> for OrderIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let not_found = || ApiError::NotFound("no order has this id: order ids are UUIDs".into());
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        OrderId::parse(&raw).map(Self).map_err(|_| not_found())
    }
}
