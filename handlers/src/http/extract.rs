//! From raw HTTP to parsed values: the JSON body (size, media type, syntax, unique keys), the
//! command headers, the order id in the path and the query string. Every rejection is an
//! [`ApiError`], so it renders as problem+json like any other error.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use orders_domain::{
    CancelReason, CreateOrder, Currency, CustomerId, FieldError, Items, LineItem, OrderCommand,
    OrderId, Quantity, Sku, UnitPrice,
};
use orders_store::IdempotencyKey;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ApiError;
use super::correlation::CorrelationId;
use crate::app::{Caller, CommandContext, Idempotency, Precondition};

/// The largest accepted request body (DESIGN §4: 413 above it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

// ---------------------------------------------------------------------------------------------
// Body

/// A request body that is empty (`None`) or a JSON value. Size is checked from
/// `Content-Length` before reading, and again while reading, because the header may be absent
/// (chunked) or lie. An object that names a key twice, at any depth, is refused (see
/// [`parse_json_body`]).
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
        parse_json_body(&bytes).map(|value| Self(Some(value)))
    }
}

/// Parses a JSON document, refusing any object that names a key twice.
///
/// serde_json, like most parsers, keeps the last of two equal keys silently, so
/// `{"customerId":"a","customerId":"b"}` would be an order for `b` here and possibly for `a`
/// to whatever sat in front of the service (RFC 8259 §4 leaves duplicates to the parser).
/// Keys are compared after unescaping, so `"customer\u0049d"` repeats `customerId`. The
/// error names the repeated key's field path (`customerId`, `items[0].sku`). serde_json's own
/// nesting limit (128) still applies: it is enforced by the deserializer, not the visitor.
fn parse_json_body(bytes: &[u8]) -> Result<Value, ApiError> {
    let duplicate = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = UniqueKeys {
        path: JsonPath::Root,
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    parsed.map_err(|e| match duplicate.take() {
        Some(field) => ApiError::invalid(
            "the request body names a field more than once",
            vec![FieldError::new(field, "is given more than once")],
        ),
        None => ApiError::invalid(
            "the request body is not valid JSON",
            vec![FieldError::new("body", format!("malformed JSON: {e}"))],
        ),
    })
}

/// Where a value sits in the body, built on the stack as the parser descends and written out
/// only for an error, in the field-path form of [`FieldError`].
#[derive(Clone, Copy)]
enum JsonPath<'a> {
    Root,
    Key(&'a JsonPath<'a>, &'a str),
    Index(&'a JsonPath<'a>, usize),
}

impl fmt::Display for JsonPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("body"),
            Self::Key(Self::Root, key) => f.write_str(key),
            Self::Key(parent, key) => write!(f, "{parent}.{key}"),
            Self::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Builds a `serde_json::Value` as serde_json's own visitor does, except that a repeated
/// object key fails the parse and records its path in `duplicate`.
struct UniqueKeys<'a> {
    path: JsonPath<'a>,
    duplicate: &'a Cell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        loop {
            let element = UniqueKeys {
                path: JsonPath::Index(&self.path, values.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(element)? {
                Some(value) => values.push(value),
                None => return Ok(Value::Array(values)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let path = JsonPath::Key(&self.path, &key);
            if object.contains_key(&key) {
                self.duplicate.set(Some(path.to_string()));
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let value = access.next_value_seed(UniqueKeys {
                path,
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
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
    /// The authenticated caller, which scopes the idempotency key (set by the Lambda layer).
    pub caller: Option<Caller>,
    pub correlation_id: String,
}

impl CommandHeaders {
    /// The service's view of the request. The fingerprint covers the canonical path (built
    /// from the parsed id, so `/orders/{ID}` and `/orders/{id}` agree) and the canonical body
    /// of the parsed command ([`canonical_body`]), so equivalent bodies agree too.
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

/// The body a parsed command stands for, as the idempotency fingerprint sees it: built from
/// the parsed values rather than the bytes sent, so every way of writing the same request
/// hashes the same (DESIGN §4: "the same request replays"). A cancel with no body, with `{}`
/// and with `{"reason": null}` is one request; confirm and ship with no body or `{}` too.
///
/// "No fields" is `None`, the form a body-less request always had, and a create or a reason
/// is the sorted compact JSON of its fields, as a valid body always hashed: so the
/// fingerprints recorded before this rule (idempotency records live 24 h) still match the
/// commonest form of each request.
pub fn canonical_body(command: &OrderCommand) -> Option<Value> {
    match command {
        OrderCommand::Create(create) => Some(canonical_create(create)),
        OrderCommand::Cancel {
            reason: Some(reason),
        } => Some(json!({ "reason": reason.as_str() })),
        OrderCommand::Cancel { reason: None } | OrderCommand::Confirm | OrderCommand::Ship => None,
    }
}

/// A create's fields, as [`canonical_body`] sees them.
pub fn canonical_create(create: &CreateOrder) -> Value {
    let lines: Vec<Value> = create
        .items()
        .lines()
        .iter()
        .map(|line| {
            json!({
                "sku": line.sku.as_str(),
                "quantity": line.quantity.get(),
                "unitPrice": line.unit_price.get(),
            })
        })
        .collect();
    json!({
        "customerId": create.customer_id().as_str(),
        "currency": create.currency().as_str(),
        "items": lines,
    })
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

/// Just under `i64::MAX` (about 9.223e18): a whole `f64` smaller in magnitude is a value an
/// `i64` holds, written with a fraction or an exponent (`5.0`, `1e3`); a larger one is reported
/// out of range. Rounded down because an integer just outside `i64` (`-9223372036854775809`)
/// parses to the `f64` -2^63, which must still count as out of range.
const I64_RANGE_AS_F64: f64 = 9.2e18;

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
            (None, None, Some(f)) if f.abs() < I64_RANGE_AS_F64 => {
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

    fn duplicate(body: &str) -> Vec<FieldError> {
        match parse_json_body(body.as_bytes()).unwrap_err() {
            ApiError::BadRequest { errors, .. } => errors,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_key_named_twice_at_any_depth_is_refused_with_its_path() {
        let once = |field: &str| vec![FieldError::new(field, "is given more than once")];
        assert_eq!(
            duplicate(r#"{"customerId":"a","currency":"EUR","customerId":"b"}"#),
            once("customerId")
        );
        assert_eq!(
            duplicate(r#"{"items":[{"sku":"A"},{"sku":"A","quantity":1,"sku":"B"}]}"#),
            once("items[1].sku")
        );
        // Compared after unescaping: \u0049 is "I".
        assert_eq!(
            duplicate(r#"{"customerId":"a","customer\u0049d":"b"}"#),
            once("customerId")
        );
        assert_eq!(duplicate(r#"[[{"x":1,"x":1}]]"#), once("body[0][0].x"));
        assert_eq!(duplicate(r#"{"reason":null,"reason":"x"}"#), once("reason"));
    }

    #[test]
    fn unique_keys_parse_exactly_as_serde_json_does() {
        let body = r#"{"a":{"sku":1},"b":[{"sku":2},{"sku":3}],"n":[-1,18446744073709551615,1.5,1e30],"s":"\u00e9","t":true,"z":null}"#;
        let expected: Value = serde_json::from_str(r#"{"a":{"sku":1},"b":[{"sku":2},{"sku":3}],"n":[-1,18446744073709551615,1.5,1e30],"s":"é","t":true,"z":null}"#).unwrap();
        assert_eq!(parse_json_body(body.as_bytes()).unwrap(), expected);
        // Malformed input is still reported as such, against the whole body.
        for malformed in ["{", r#"{"a":1} x"#, r#"{"a":1,}"#, &"[".repeat(200)] {
            let errors = duplicate(malformed);
            assert_eq!(errors.len(), 1, "{malformed}");
            assert_eq!(errors[0].field, "body", "{malformed}");
            assert!(
                errors[0].message.starts_with("malformed JSON"),
                "{malformed}"
            );
        }
    }

    #[test]
    fn equivalent_commands_have_one_canonical_body_and_different_ones_differ() {
        let cancel = |body: Option<Value>| {
            let reason = cancel_reason(body.as_ref()).unwrap();
            canonical_body(&OrderCommand::Cancel { reason })
        };
        let no_reason = cancel(None);
        assert_eq!(no_reason, None);
        assert_eq!(cancel(Some(json!({}))), no_reason);
        assert_eq!(cancel(Some(json!({"reason": null}))), no_reason);
        assert_eq!(
            cancel(Some(json!({"reason": "x"}))),
            Some(json!({"reason": "x"}))
        );
        assert_ne!(
            cancel(Some(json!({"reason": "x"}))),
            cancel(Some(json!({"reason": "y"})))
        );
        assert_ne!(
            cancel(Some(json!({"reason": ""}))),
            no_reason,
            "an empty reason is a reason"
        );
        assert_eq!(canonical_body(&OrderCommand::Confirm), None);
    }

    #[test]
    fn a_create_fingerprints_as_its_valid_body_always_did() {
        // The canonical form of a parsed create is the canonical form of the body it came
        // from, so fingerprints recorded before canonicalisation moved to the command match.
        let raw: Value = serde_json::from_str(
            r#"{ "items": [{"unitPrice": 150, "sku": "A", "quantity": 2}],
                 "currency": "EUR", "customerId": "c-\u00e9\"" }"#,
        )
        .unwrap();
        let parsed = canonical_create(&create_order(Some(&raw)).unwrap());
        let post = Method::POST;
        assert_eq!(
            fingerprint(&post, "/orders", Some(&parsed)),
            fingerprint(&post, "/orders", Some(&raw))
        );
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
