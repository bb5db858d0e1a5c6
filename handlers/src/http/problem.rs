//! The one place where errors become HTTP responses: RFC 9457 `application/problem+json`.
//!
//! Problem `type`s are URNs (`urn:orders:problem:<slug>`): stable identifiers a client can
//! match on, which do not pretend to be documentation URLs.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders_domain::FieldError;
use orders_store::StoreError;
use serde::Serialize;
use thiserror::Error;
use tracing::{error, warn};

use crate::app::AppError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything a handler can fail with.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error(transparent)]
    App(#[from] AppError),
    /// Malformed or invalid input; `errors` lists every field that failed.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// An unknown route, or a path id that cannot name an order.
    #[error("{0}")]
    NotFound(String),
    #[error("the method is not allowed on this resource")]
    MethodNotAllowed,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
}

impl ApiError {
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            errors,
        }
    }

    /// A 400 about one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        Self::invalid(error.to_string(), vec![error])
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    /// For 409 and 412: the version to re-read before retrying.
    #[serde(skip_serializing_if = "Option::is_none")]
    current_version: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let mut current_version = None;
        let mut errors = Vec::new();
        let (status, slug, title, detail) = match self {
            ApiError::BadRequest {
                detail,
                errors: fields,
            } => {
                errors = fields;
                (
                    StatusCode::BAD_REQUEST,
                    "invalid-request",
                    "Invalid request",
                    detail,
                )
            }
            ApiError::NotFound(detail) => (StatusCode::NOT_FOUND, "not-found", "Not found", detail),
            e @ ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                e.to_string(),
            ),
            e @ ApiError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                e.to_string(),
            ),
            e @ ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                e.to_string(),
            ),
            ApiError::App(e) => match e {
                AppError::NotFound => (
                    StatusCode::NOT_FOUND,
                    "order-not-found",
                    "Order not found",
                    e.to_string(),
                ),
                AppError::Rejected(_) => (
                    StatusCode::CONFLICT,
                    "invalid-transition",
                    "Command not allowed",
                    e.to_string(),
                ),
                AppError::PreconditionFailed { current_version: v } => {
                    current_version = Some(v);
                    (
                        StatusCode::PRECONDITION_FAILED,
                        "precondition-failed",
                        "Precondition failed",
                        e.to_string(),
                    )
                }
                AppError::Conflict { current_version: v } => {
                    current_version = Some(v);
                    (
                        StatusCode::CONFLICT,
                        "concurrent-modification",
                        "Concurrent modification",
                        e.to_string(),
                    )
                }
                AppError::IdempotencyKeyReused => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    e.to_string(),
                ),
                AppError::IdempotencyKeyBusy => (
                    StatusCode::CONFLICT,
                    "idempotency-key-in-use",
                    "Idempotency key in use",
                    e.to_string(),
                ),
                AppError::Store(StoreError::Unavailable {
                    reason,
                    retry_after: after,
                }) => {
                    warn!(%reason, "store unavailable");
                    retry_after = Some(after);
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "Service unavailable",
                        "The service is temporarily unavailable; retry later.".to_owned(),
                    )
                }
                // Internal details are logged, never sent.
                e @ (AppError::Store(_) | AppError::Corrupt(_) | AppError::Internal(_)) => {
                    error!(error = %e, "internal error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "Internal error",
                        "The request could not be completed because of an internal error."
                            .to_owned(),
                    )
                }
            },
        };
        let problem = Problem {
            kind: format!("urn:orders:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
            current_version,
        };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(after) = retry_after {
            headers.insert(header::RETRY_AFTER, retry_after_seconds(after).into());
        }
        response
    }
}

/// Whole seconds, rounded up and at least 1: `Retry-After: 0` would invite a hot loop.
fn retry_after_seconds(after: Duration) -> u64 {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
    }
}
