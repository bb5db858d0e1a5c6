//! From raw HTTP to parsed values: the JSON body (size, media type, syntax), the command
//! headers, the order id in the path and the query string. Every rejection is an [`ApiError`],
//! so it renders as problem+json like any other error.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use orders_domain::{
    CancelReason, CreateOrder, Currency, CustomerId, FieldError, Items, LineItem, OrderId,
    Quantity, Sku, UnitPrice,
};
use orders_store::IdempotencyKey;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ApiError;
use super::correlation::CorrelationId;
use crate::app::{CommandContext, Idempotency, Precondition};

/// The largest accepted request body (DESIGN §4: 413 above it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

// ---------------------------------------------------------------------------------------------
// Body

/// A request body that is empty (`None`) or a JSON value. Size is checked from
/// `Content-Length` before reading, and again while reading, because the header may be absent
/// (chunked) or lie.
#[derive(Debug)]
pub struct JsonBody(pub Option<Value>);

impl JsonBody {
    pub fn value(&self) -> Option<&Value> {
        self.0.as_ref()
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let too_large = ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
            return Err(too_large);
        }
        let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => return Err(too_large),
            Err(_) => return Err(ApiError::field("body", "could not be read")),
        };
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        if !is_json(&parts.headers) {
            return Err(ApiError::UnsupportedMediaType);
        }
        serde_json::from_slice(&bytes)
            .map(|value| Self(Some(value)))
            .map_err(|e| {
                ApiError::invalid(
                    "the request body is not valid JSON",
                    vec![FieldError::new("body", format!("malformed JSON: {e}"))],
                )
            })
    }
}

/// `application/json` or any `application/*+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.len() > "+json".len() && subtype.ends_with("+json"))
}

// ---------------------------------------------------------------------------------------------
// Command headers

/// `If-Match`, `Idempotency-Key` and the request's correlation id.
#[derive(Debug, Clone)]
pub struct CommandHeaders {
    pub precondition: Option<Precondition>,
    pub idempotency_key: Option<IdempotencyKey>,
    pub correlation_id: String,
}

impl CommandHeaders {
    /// The service's view of the request. The fingerprint covers the canonical path (built
    /// from the parsed id, so `/orders/{ID}` and `/orders/{id}` agree) and the canonical body.
    pub fn context(self, method: &Method, path: &str, body: Option<&Value>) -> CommandContext {
        CommandContext {
            correlation_id: self.correlation_id,
            precondition: self.precondition,
            idempotency: self.idempotency_key.map(|key| Idempotency {
                key,
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

/// Hex SHA-256 of method, path and canonical body (`""` for no body).
pub fn fingerprint(method: &Method, path: &str, body: Option<&Value>) -> String {
    let mut canonical = String::new();
    if let Some(body) = body {
        write_canonical(body, &mut canonical);
    }
    let mut hasher = Sha256::new();
    for part in [method.as_str(), path, &canonical] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compact JSON with object keys sorted. Sorted explicitly rather than relying on
/// serde_json's default map, which a `preserve_order` feature elsewhere in the build would
/// silently change.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(values) => {
            out.push('[');
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(value, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Path

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

// ---------------------------------------------------------------------------------------------
// Query string

/// The raw query parameters, in order.
#[derive(Debug, Clone)]
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Self(pairs))
            .map_err(|_| ApiError::field("query", "the query string is malformed"))
    }
}

impl QueryParams {
    /// Keeps the `allowed` parameters; unknown and repeated ones are field errors.
    pub fn only(self, allowed: &[&'static str]) -> Params {
        let mut params = Params {
            values: BTreeMap::new(),
            errors: Vec::new(),
        };
        for (name, value) in self.0 {
            match allowed.iter().find(|a| **a == name) {
                None => params.error(&name, "is not a known query parameter"),
                Some(known) => {
                    if params.values.insert(known, value).is_some() {
                        params.error(known, "must be given at most once");
                    }
                }
            }
        }
        params
    }
}

/// Query parameters being parsed; errors accumulate so that all of them are reported.
#[derive(Debug)]
pub struct Params {
    values: BTreeMap<&'static str, String>,
    errors: Vec<FieldError>,
}

impl Params {
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Parses `name` if present; a parse failure is recorded and yields `None`.
    pub fn take<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.values.remove(name)?;
        match parse(&raw) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(name, message);
                None
            }
        }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// `Err(400)` listing every error recorded so far.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid("invalid query parameters", self.errors))
        }
    }
}

/// A positive integer parameter within `range`.
pub fn integer_in(raw: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    let message = || {
        format!(
            "must be an integer from {} to {}",
            range.start(),
            range.end()
        )
    };
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(message());
    }
    raw.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(message)
}

// ---------------------------------------------------------------------------------------------
// Command bodies. Parsed by hand from a `serde_json::Value`, not with a derived Deserialize,
// because serde stops at the first error and the API promises every field error at once.

/// `{customerId, currency, items: [{sku, quantity, unitPrice}]}`.
pub fn create_order(body: Option<&Value>) -> Result<CreateOrder, ApiError> {
    let mut errors = Vec::new();
    let object = body_object(body, true, &mut errors)
        .ok_or_else(|| ApiError::invalid("invalid order", errors.clone()))?;
    unknown_fields(
        object,
        &["customerId", "currency", "items"],
        None,
        &mut errors,
    );
    let customer_id = required_str(object, "customerId", None, &mut errors)
        .and_then(|raw| collect(CustomerId::parse(raw), None, &mut errors));
    let currency = required_str(object, "currency", None, &mut errors)
        .and_then(|raw| collect(Currency::parse(raw), None, &mut errors));
    let items = match object.get("items") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("items", "is required"));
            None
        }
        Some(Value::Array(lines)) => {
            let parsed: Vec<Option<LineItem>> = lines
                .iter()
                .enumerate()
                .map(|(i, line)| line_item(line, &format!("items[{i}]"), &mut errors))
                .collect();
            if (1..=Items::MAX_LINES).contains(&lines.len()) {
                parsed
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .and_then(|lines| collect(Items::parse(lines), None, &mut errors))
            } else {
                errors.push(FieldError::new(
                    "items",
                    format!("must have from 1 to {} lines", Items::MAX_LINES),
                ));
                None
            }
        }
        Some(_) => {
            errors.push(FieldError::new("items", "must be an array"));
            None
        }
    };
    match (customer_id, currency, items) {
        (Some(customer_id), Some(currency), Some(items)) if errors.is_empty() => {
            CreateOrder::new(customer_id, currency, items)
                .map_err(|e| ApiError::invalid("invalid order", vec![e]))
        }
        _ => Err(ApiError::invalid("invalid order", errors)),
    }
}

/// Cancel's optional body: nothing, or `{reason}` (a string, or null for none).
pub fn cancel_reason(body: Option<&Value>) -> Result<Option<CancelReason>, ApiError> {
    let mut errors = Vec::new();
    let Some(object) = body_object(body, false, &mut errors) else {
        return if errors.is_empty() {
            Ok(None)
        } else {
            Err(ApiError::invalid("invalid cancel request", errors))
        };
    };
    unknown_fields(object, &["reason"], None, &mut errors);
    let reason = match object.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => collect(CancelReason::parse(raw), None, &mut errors),
        Some(_) => {
            errors.push(FieldError::new("reason", "must be a string"));
            None
        }
    };
    if errors.is_empty() {
        Ok(reason)
    } else {
        Err(ApiError::invalid("invalid cancel request", errors))
    }
}

/// Confirm and ship take no fields: no body, or `{}`.
pub fn no_fields(body: Option<&Value>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let Some(object) = body_object(body, false, &mut errors) {
        unknown_fields(object, &[], None, &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("this command takes no fields", errors))
    }
}

/// The body as an object. A missing body is an error only if `required`.
fn body_object<'a>(
    body: Option<&'a Value>,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<&'a Map<String, Value>> {
    match body {
        None if required => {
            errors.push(FieldError::new("body", "is required"));
            None
        }
        None => None,
        Some(Value::Object(object)) => Some(object),
        Some(_) => {
            errors.push(FieldError::new("body", "must be a JSON object"));
            None
        }
    }
}

fn unknown_fields(
    object: &Map<String, Value>,
    known: &[&str],
    parent: Option<&str>,
    errors: &mut Vec<FieldError>,
) {
    for name in object.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(nest(
            FieldError::new(name.clone(), "is not a known field"),
            parent,
        ));
    }
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    parent: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match object.get(name) {
        Some(Value::String(raw)) => Some(raw),
        None | Some(Value::Null) => {
            errors.push(nest(FieldError::new(name, "is required"), parent));
            None
        }
        Some(_) => {
            errors.push(nest(FieldError::new(name, "must be a string"), parent));
            None
        }
    }
}

/// A JSON integer that fits an `i64`; the newtype's `parse` then checks its range. Numbers
/// outside `i64` (2^64, 1e30) are range errors, never a failure of the server.
fn required_integer(
    object: &Map<String, Value>,
    name: &str,
    parent: &str,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let message = match object.get(name) {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => return Some(i),
            (None, Some(_), _) => "is out of range",
            (None, None, Some(f)) if f.fract() != 0.0 || !f.is_finite() => "must be an integer",
            (None, None, Some(f)) if f.abs() < 9.2e18 => {
                "must be written as an integer, without a fraction or exponent"
            }
            _ => "is out of range",
        },
        None | Some(Value::Null) => "is required",
        Some(_) => "must be an integer",
    };
    errors.push(FieldError::new(name, message).under(parent));
    None
}

fn line_item(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<LineItem> {
    let Some(object) = value.as_object() else {
        errors.push(FieldError::new(path, "must be an object"));
        return None;
    };
    unknown_fields(
        object,
        &["sku", "quantity", "unitPrice"],
        Some(path),
        errors,
    );
    let sku = required_str(object, "sku", Some(path), errors)
        .and_then(|raw| collect(Sku::parse(raw), Some(path), errors));
    let quantity = required_integer(object, "quantity", path, errors)
        .and_then(|raw| collect(Quantity::parse(raw), Some(path), errors));
    let unit_price = required_integer(object, "unitPrice", path, errors)
        .and_then(|raw| collect(UnitPrice::parse(raw), Some(path), errors));
    Some(LineItem {
        sku: sku?,
        quantity: quantity?,
        unit_price: unit_price?,
    })
}

fn collect<T>(
    parsed: Result<T, FieldError>,
    parent: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    parsed.map_err(|e| errors.push(nest(e, parent))).ok()
}

fn nest(error: FieldError, parent: Option<&str>) -> FieldError {
    match parent {
        Some(parent) => error.under(parent),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(result: Result<impl std::fmt::Debug, ApiError>) -> Vec<String> {
        match result.unwrap_err() {
            ApiError::BadRequest { errors, .. } => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn every_field_error_of_a_create_is_listed() {
        let body = json!({
            "customerId": "",
            "currency": "eur",
            "extra": 1,
            "items": [
                {"sku": "ok", "quantity": 1, "unitPrice": 1},
                {"sku": "bad sku", "quantity": 0, "unitPrice": -1},
                {"sku": 5, "quantity": 1.5, "unitPrice": 18446744073709551616u128 as f64},
                {"quantity": "1", "colour": "red"},
                "nope"
            ]
        });
        let mut got = fields(create_order(Some(&body)));
        got.sort();
        let mut want = vec![
            "customerId",
            "currency",
            "extra",
            "items[1].sku",
            "items[1].quantity",
            "items[1].unitPrice",
            "items[2].sku",
            "items[2].quantity",
            "items[2].unitPrice",
            "items[3].colour",
            "items[3].sku",
            "items[3].quantity",
            "items[3].unitPrice",
            "items[4]",
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn a_valid_create_parses_with_its_total() {
        let body = json!({"customerId": "c-1", "currency": "EUR",
            "items": [{"sku": "A", "quantity": 2, "unitPrice": 150}, {"sku": "B", "quantity": 1, "unitPrice": 10}]});
        let create = create_order(Some(&body)).unwrap();
        assert_eq!(create.total().0, 310);
        assert_eq!(create.items().lines().len(), 2);
    }

    #[test]
    fn numbers_written_with_an_exponent_or_fraction_are_refused() {
        for (n, message) in [
            (
                json!(2.0),
                "must be written as an integer, without a fraction or exponent",
            ),
            (json!(1.5), "must be an integer"),
            (json!(1e30), "is out of range"),
            (json!(u64::MAX), "is out of range"),
        ] {
            let body = json!({"customerId": "c", "currency": "EUR",
                "items": [{"sku": "A", "quantity": n, "unitPrice": 1}]});
            match create_order(Some(&body)).unwrap_err() {
                ApiError::BadRequest { errors, .. } => {
                    assert_eq!(errors, vec![FieldError::new("items[0].quantity", message)]);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn cancel_and_no_field_bodies() {
        assert_eq!(cancel_reason(None).unwrap(), None);
        assert_eq!(cancel_reason(Some(&json!({"reason": null}))).unwrap(), None);
        assert_eq!(
            cancel_reason(Some(&json!({"reason": "late"})))
                .unwrap()
                .unwrap()
                .as_str(),
            "late"
        );
        assert_eq!(
            fields(cancel_reason(Some(&json!({"reason": 1, "x": 2})))),
            ["x", "reason"]
        );
        assert_eq!(fields(cancel_reason(Some(&json!([])))), ["body"]);
        assert!(no_fields(None).is_ok());
        assert!(no_fields(Some(&json!({}))).is_ok());
        assert_eq!(fields(no_fields(Some(&json!({"force": true})))), ["force"]);
    }

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

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace_but_not_content() {
        let a = json!({"b": 1, "a": [1, {"y": 2, "x": 3}]});
        let b: Value = serde_json::from_str(r#"{ "a" : [1, {"x":3,"y":2}], "b":1 }"#).unwrap();
        let post = Method::POST;
        assert_eq!(
            fingerprint(&post, "/orders", Some(&a)),
            fingerprint(&post, "/orders", Some(&b))
        );
        assert_ne!(
            fingerprint(&post, "/orders", Some(&a)),
            fingerprint(&post, "/orders/x", Some(&a))
        );
        assert_ne!(
            fingerprint(&post, "/orders", None),
            fingerprint(&post, "/orders", Some(&json!({})))
        );
        assert_eq!(fingerprint(&post, "/orders", None).len(), 64);
    }

    #[test]
    fn json_media_types() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("application/+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn integer_parameters() {
        assert_eq!(integer_in("20", 1..=100), Ok(20));
        for bad in ["0", "101", "", "-1", "+1", "1.0", "99999999999999999999999"] {
            assert!(integer_in(bad, 1..=100).is_err(), "{bad}");
        }
    }
}
