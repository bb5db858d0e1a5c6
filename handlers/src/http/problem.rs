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

/// One kind of problem: its status, the slug of its `type` URN and its title. [`ALL`](Self::ALL)
/// is what the OpenAPI document lists, so a kind not in it fails the response validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
}

impl ProblemType {
    const fn new(status: StatusCode, slug: &'static str, title: &'static str) -> Self {
        Self {
            status,
            slug,
            title,
        }
    }

    pub const INVALID_REQUEST: Self = Self::new(
        StatusCode::BAD_REQUEST,
        "invalid-request",
        "Invalid request",
    );
    pub const NOT_FOUND: Self = Self::new(StatusCode::NOT_FOUND, "not-found", "Not found");
    pub const ORDER_NOT_FOUND: Self =
        Self::new(StatusCode::NOT_FOUND, "order-not-found", "Order not found");
    pub const METHOD_NOT_ALLOWED: Self = Self::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
    );
    pub const INVALID_TRANSITION: Self = Self::new(
        StatusCode::CONFLICT,
        "invalid-transition",
        "Command not allowed",
    );
    pub const CONCURRENT_MODIFICATION: Self = Self::new(
        StatusCode::CONFLICT,
        "concurrent-modification",
        "Concurrent modification",
    );
    pub const IDEMPOTENCY_KEY_IN_USE: Self = Self::new(
        StatusCode::CONFLICT,
        "idempotency-key-in-use",
        "Idempotency key in use",
    );
    pub const PRECONDITION_FAILED: Self = Self::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition-failed",
        "Precondition failed",
    );
    pub const PAYLOAD_TOO_LARGE: Self = Self::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
    );
    pub const UNSUPPORTED_MEDIA_TYPE: Self = Self::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
    );
    pub const IDEMPOTENCY_KEY_REUSED: Self = Self::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "Idempotency key reused",
    );
    pub const INTERNAL: Self = Self::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
    );
    pub const UNAVAILABLE: Self = Self::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Service unavailable",
    );

    /// Every kind the API answers with.
    pub const ALL: [Self; 13] = [
        Self::INVALID_REQUEST,
        Self::NOT_FOUND,
        Self::ORDER_NOT_FOUND,
        Self::METHOD_NOT_ALLOWED,
        Self::INVALID_TRANSITION,
        Self::CONCURRENT_MODIFICATION,
        Self::IDEMPOTENCY_KEY_IN_USE,
        Self::PRECONDITION_FAILED,
        Self::PAYLOAD_TOO_LARGE,
        Self::UNSUPPORTED_MEDIA_TYPE,
        Self::IDEMPOTENCY_KEY_REUSED,
        Self::INTERNAL,
        Self::UNAVAILABLE,
    ];

    /// The problem's `type`: `urn:orders:problem:<slug>`.
    pub fn uri(self) -> String {
        format!("urn:orders:problem:{}", self.slug)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let mut current_version = None;
        let mut errors = Vec::new();
        let (kind, detail) = match self {
            ApiError::BadRequest {
                detail,
                errors: fields,
            } => {
                errors = fields;
                (ProblemType::INVALID_REQUEST, detail)
            }
            ApiError::NotFound(detail) => (ProblemType::NOT_FOUND, detail),
            e @ ApiError::MethodNotAllowed => (ProblemType::METHOD_NOT_ALLOWED, e.to_string()),
            e @ ApiError::PayloadTooLarge { .. } => (ProblemType::PAYLOAD_TOO_LARGE, e.to_string()),
            e @ ApiError::UnsupportedMediaType => {
                (ProblemType::UNSUPPORTED_MEDIA_TYPE, e.to_string())
            }
            ApiError::App(e) => match e {
                AppError::NotFound => (ProblemType::ORDER_NOT_FOUND, e.to_string()),
                AppError::Rejected(_) => (ProblemType::INVALID_TRANSITION, e.to_string()),
                AppError::PreconditionFailed { current_version: v } => {
                    current_version = Some(v);
                    (ProblemType::PRECONDITION_FAILED, e.to_string())
                }
                AppError::Conflict { current_version: v } => {
                    current_version = Some(v);
                    (ProblemType::CONCURRENT_MODIFICATION, e.to_string())
                }
                AppError::IdempotencyKeyReused => {
                    (ProblemType::IDEMPOTENCY_KEY_REUSED, e.to_string())
                }
                AppError::IdempotencyKeyBusy => {
                    (ProblemType::IDEMPOTENCY_KEY_IN_USE, e.to_string())
                }
                AppError::Store(StoreError::Unavailable {
                    reason,
                    retry_after: after,
                }) => {
                    warn!(%reason, "store unavailable");
                    retry_after = Some(after);
                    (
                        ProblemType::UNAVAILABLE,
                        "The service is temporarily unavailable; retry later.".to_owned(),
                    )
                }
                // Internal details are logged, never sent.
                e @ (AppError::Store(_) | AppError::Corrupt(_) | AppError::Internal(_)) => {
                    error!(error = %e, "internal error");
                    (
                        ProblemType::INTERNAL,
                        "The request could not be completed because of an internal error."
                            .to_owned(),
                    )
                }
            },
        };
        let problem = Problem {
            kind: kind.uri(),
            title: kind.title,
            status: kind.status.as_u16(),
            detail,
            errors,
            current_version,
        };
        let mut response = (kind.status, Json(problem)).into_response();
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
