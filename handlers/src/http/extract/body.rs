//! The JSON body of a request: its size limit, its media type, and a parse that refuses an
//! object naming a key twice, reporting the key's field path.

use std::cell::Cell;
use std::fmt;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use orders_domain::FieldError;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::http::ApiError;

/// The largest accepted request body (DESIGN §4: 413 above it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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

#[cfg(test)]
mod tests {

    use super::*;

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
}
