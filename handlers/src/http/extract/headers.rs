//! The headers of a command: `If-Match`, `Idempotency-Key`, the caller and the correlation id.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, header};
use orders_domain::FieldError;
use orders_store::IdempotencyKey;
use serde_json::Value;
use uuid::Uuid;

use super::fingerprint::fingerprint;
use crate::app::{Caller, CommandContext, Idempotency, Precondition};
use crate::http::ApiError;
use crate::http::correlation::CorrelationId;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// `If-Match`, `Idempotency-Key` and the request's correlation id.
#[derive(Debug, Clone)]
pub struct CommandHeaders {
    pub precondition: Option<Precondition>,
    pub idempotency_key: Option<IdempotencyKey>,
    /// The authenticated caller, which scopes the idempotency key (set by the Lambda layer).
    pub caller: Option<Caller>,
    pub correlation_id: String,
}

impl CommandHeaders {
    /// The service's view of the request. The fingerprint covers the canonical path (built
    /// from the parsed id, so `/orders/{ID}` and `/orders/{id}` agree) and the canonical body
    /// of the parsed command ([`canonical_body`](super::canonical_body)), so equivalent bodies agree too.
    pub fn context(self, method: &Method, path: &str, body: Option<&Value>) -> CommandContext {
        CommandContext {
            correlation_id: self.correlation_id,
            precondition: self.precondition,
            idempotency: self.idempotency_key.map(|key| Idempotency {
                key,
                caller: self.caller,
                fingerprint: fingerprint(method, path, body),
            }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CommandHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let precondition = single_header(&parts.headers, header::IF_MATCH, "If-Match", &mut errors)
            .and_then(|raw| {
                parse_if_match(raw)
                    .map_err(|m| errors.push(FieldError::new("If-Match", m)))
                    .ok()
            });
        let idempotency_key = single_header(
            &parts.headers,
            IDEMPOTENCY_KEY,
            "Idempotency-Key",
            &mut errors,
        )
        .and_then(|raw| {
            IdempotencyKey::parse(raw)
                .map_err(|m| errors.push(FieldError::new("Idempotency-Key", m)))
                .ok()
        });
        if !errors.is_empty() {
            return Err(ApiError::invalid("invalid request headers", errors));
        }
        let correlation_id = parts
            .extensions
            .get::<CorrelationId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        Ok(Self {
            precondition,
            idempotency_key,
            caller: parts.extensions.get::<Caller>().cloned(),
            correlation_id,
        })
    }
}

/// The header's value if it is present once and readable; repeats and non-ASCII are errors.
fn single_header<'a>(
    headers: &'a HeaderMap,
    name: HeaderName,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    let mut values = headers.get_all(&name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        errors.push(FieldError::new(field, "must be given at most once"));
        return None;
    }
    match first.to_str() {
        Ok(value) => Some(value),
        Err(_) => {
            errors.push(FieldError::new(field, "must be printable ASCII"));
            None
        }
    }
}

/// `*` or one strong entity tag holding a version: `"3"`. Weak tags never match under
/// If-Match (RFC 9110 §13.1.1), so they are refused as malformed rather than silently ignored.
fn parse_if_match(raw: &str) -> Result<Precondition, &'static str> {
    const MESSAGE: &str = "must be * or a quoted version, e.g. \"3\"";
    let raw = raw.trim();
    if raw == "*" {
        return Ok(Precondition::Exists);
    }
    let digits = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(MESSAGE)?;
    digits
        .parse::<u64>()
        .map(Precondition::Version)
        .map_err(|_| MESSAGE)
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn if_match_forms() {
        assert_eq!(parse_if_match("\"3\""), Ok(Precondition::Version(3)));
        assert_eq!(parse_if_match(" * "), Ok(Precondition::Exists));
        for bad in [
            "3",
            "W/\"3\"",
            "\"\"",
            "\"x\"",
            "\"1\", \"2\"",
            "\"99999999999999999999\"",
        ] {
            assert!(parse_if_match(bad).is_err(), "{bad}");
        }
    }
}
