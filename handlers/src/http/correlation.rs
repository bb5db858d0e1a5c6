//! Correlation ids: taken from `X-Correlation-Id` when it is sane, otherwise minted, echoed on
//! every response, and carried by the request's tracing span.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, info, info_span};
use uuid::Uuid;

pub const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

const MAX_LEN: usize = 128;

/// The request's correlation id, as a request extension.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

pub async fn correlate(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_CORRELATION_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid(v))
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    let span = info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        correlationId = %id,
    );
    request.extensions_mut().insert(CorrelationId(id.clone()));
    async move {
        let mut response = next.run(request).await;
        info!(status = response.status().as_u16(), "request handled");
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(X_CORRELATION_ID, value);
        }
        response
    }
    .instrument(span)
    .await
}

/// 1..=128 printable ASCII characters: anything else would be unsafe to log or echo.
fn is_valid(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(is_valid("abc-123"));
        assert!(is_valid(&"x".repeat(128)));
        assert!(!is_valid(&"x".repeat(129)));
        assert!(!is_valid(""));
        assert!(!is_valid("a\tb"));
    }
}
