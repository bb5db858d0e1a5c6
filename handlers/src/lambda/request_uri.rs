//! Makes an API Gateway event's URL safe for `lambda_http`'s event-to-request conversion.
//!
//! `lambda_http` (1.3) builds the request's URI from the event and `.expect`s the result, so an
//! event it cannot turn into an `http::Uri` panics the invocation (a function error, a 502):
//!
//! - HTTP API (v2): `rawQueryString` is appended verbatim, so a raw `"`, `<`, `>`, space or
//!   control character in it panics (`http` 1.5 lets `{`, `}`, `|`, `^`, backquote, `\`, `[`
//!   and `]` through; older versions refused those too);
//! - both payloads: the scheme and host (`X-Forwarded-Proto`, else `https`; `Host`, else
//!   `requestContext.domainName`) go through `Url::parse(..).unwrap()`, and a URI longer
//!   than `http`'s limit fails the `.expect`;
//! - both: the path (`rawPath`, REST's `path`) goes through `Url::parse`, which does not
//!   panic but reads `#` as a fragment (the rest is dropped), `?` as the query, `\` as `/`,
//!   and drops tabs and newlines: a different path than the one sent.
//!
//! REST's query parameter maps are decoded values that `lambda_http` form-encodes itself, so
//! they are safe to encode; only a parameter listed with no value at all (`"a": []` in
//! `multiValueQueryStringParameters`) is dropped, because `query_map` 0.7 panics iterating it
//! (an index out of bounds), both in our length check and in `lambda_http`'s URI. API Gateway
//! sends at least one value per parameter; the handler must not panic on the event anyway.
//!
//! [`sanitize`] percent-encodes, in the path and the raw query, every byte that may not appear
//! there unescaped (RFC 3986), keeping valid `%XX` escapes as they are; the router then
//! decodes the same values a well-behaved client would have sent escaped. What still cannot
//! form a URI (a path that does not start with `/`, an unusable `Host` or
//! `X-Forwarded-Proto`, a URL over [`MAX_URL_LEN`]) is a [`Refusal`], and the event is
//! neutralised so that it converts to the URI `/` without panicking.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::header::HOST;
use lambda_http::http::{HeaderMap, Uri};
use lambda_http::request::LambdaRequest;
use thiserror::Error;
use url::Url;

/// The longest URL (scheme, host, path and query, once escaped) a request may have: half of
/// what `http::Uri` accepts, which leaves room for the stage `lambda_http` prefixes. API
/// Gateway's own limits are lower; only escaping (up to three bytes per byte) can reach it.
pub const MAX_URL_LEN: usize = 32 * 1024;

/// Why a request's URL cannot be made a URI, even escaped. Each is a 400 for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("the path does not start with '/'")]
    RelativePath,
    #[error("the Host or X-Forwarded-Proto header cannot be part of a URL")]
    Authority,
    #[error("the URL is longer than {MAX_URL_LEN} bytes once escaped")]
    TooLong,
    #[error("the body is marked base64-encoded but is not valid base64")]
    Base64Body,
}

/// Where a string goes in the URI: the query also allows `?` unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Query,
}

/// Escapes what `lambda_http` would fail on, in place; see the module docs. On a refusal the
/// event has been made harmless (path `/`, no query, no host or scheme) and must be answered
/// with a 400 rather than routed.
pub fn sanitize(request: &mut LambdaRequest) -> Result<(), Refusal> {
    let checked = match request {
        LambdaRequest::ApiGatewayV1(event) => {
            escape(&mut event.path, Part::Path);
            drop_valueless(&mut event.query_string_parameters);
            drop_valueless(&mut event.multi_value_query_string_parameters);
            // `lambda_http` prefers the multi-value map and form-encodes it.
            let query = if event.multi_value_query_string_parameters.is_empty() {
                &event.query_string_parameters
            } else {
                &event.multi_value_query_string_parameters
            };
            check(
                &event.headers,
                event.request_context.domain_name.as_deref(),
                event.path.as_deref().unwrap_or_default(),
                query_len(query),
            )
            .and(check_body(event.is_base64_encoded, event.body.as_deref()))
        }
        LambdaRequest::ApiGatewayV2(event) => {
            escape(&mut event.raw_path, Part::Path);
            escape(&mut event.raw_query_string, Part::Query);
            check(
                &event.headers,
                event.request_context.domain_name.as_deref(),
                event.raw_path.as_deref().unwrap_or_default(),
                event.raw_query_string.as_deref().map_or(0, str::len),
            )
            .and(check_body(event.is_base64_encoded, event.body.as_deref()))
        }
        // Only the two API Gateway payloads are compiled in (`apigw_rest`, `apigw_http`).
        _ => Ok(()),
    };
    if checked.is_err() {
        neutralise(request);
    }
    checked
}

/// `lambda_http` decodes a body marked `isBase64Encoded` with an `.expect`. API Gateway only
/// marks bodies it encoded itself, so this guards against a malformed event, not a client.
fn check_body(is_base64_encoded: bool, body: Option<&str>) -> Result<(), Refusal> {
    use base64::Engine as _;
    match body {
        Some(body)
            if is_base64_encoded
                && base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .is_err() =>
        {
            Err(Refusal::Base64Body)
        }
        _ => Ok(()),
    }
}

fn escape(value: &mut Option<String>, part: Part) {
    if let Some(raw) = value
        && let Cow::Owned(escaped) = percent_encode(raw, part)
    {
        *raw = escaped;
    }
}

/// `raw` with every byte that RFC 3986 does not allow unescaped in `part` written as `%XX`:
/// everything but the unreserved characters, the sub-delimiters (`+` included), `:`, `@`,
/// `/`, `?` in a query, and a `%` that starts a valid escape. Valid escapes are kept as they
/// are (never escaped twice), so the result is the same when applied again.
fn percent_encode(raw: &str, part: Part) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    let keep = |i: usize| {
        let byte = bytes[i];
        allowed(byte, part) || (byte == b'%' && starts_escape(&bytes[i + 1..]))
    };
    if (0..bytes.len()).all(keep) {
        return Cow::Borrowed(raw);
    }
    let mut escaped = String::with_capacity(raw.len() + raw.len() / 2);
    for (i, &byte) in bytes.iter().enumerate() {
        if keep(i) {
            // Every kept byte is ASCII.
            escaped.push(char::from(byte));
        } else {
            let _ = write!(escaped, "%{byte:02X}");
        }
    }
    Cow::Owned(escaped)
}

fn allowed(byte: u8, part: Part) -> bool {
    match byte {
        // unreserved
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => true,
        // sub-delims
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => true,
        b':' | b'@' | b'/' => true,
        b'?' => part == Part::Query,
        _ => false,
    }
}

fn starts_escape(rest: &[u8]) -> bool {
    matches!(rest, [high, low, ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit())
}

/// `query` without the parameters that have no value, which `QueryMap`'s iterator (and so
/// `to_query_string`) panics on. Its derived `Serialize` writes the inner map without that
/// iterator, so it is the one way to see them.
fn drop_valueless(query: &mut QueryMap) {
    let Ok(serde_json::Value::Object(parameters)) = serde_json::to_value(&*query) else {
        return;
    };
    let values = |value: serde_json::Value| -> Vec<String> {
        serde_json::from_value(value).unwrap_or_default()
    };
    let has_valueless = parameters
        .values()
        .any(|value| value.as_array().is_some_and(Vec::is_empty));
    if has_valueless {
        let kept: HashMap<String, Vec<String>> = parameters
            .into_iter()
            .map(|(name, value)| (name, values(value)))
            .filter(|(_, values)| !values.is_empty())
            .collect();
        *query = QueryMap::from(kept);
    }
}

/// The length of the query `lambda_http` writes for REST's parameter map.
fn query_len(query: &QueryMap) -> usize {
    if query.is_empty() {
        0
    } else {
        query.to_query_string().len()
    }
}

/// Whether `lambda_http` can build the URI of an escaped path and query: it reads the scheme
/// and host as below and parses `{scheme}://{host}{path}` with `Url::parse`, then the whole
/// URI with `http`. An escaped path and query always parse; the scheme, the host and the
/// length may not.
fn check(
    headers: &HeaderMap,
    domain_name: Option<&str>,
    path: &str,
    query_len: usize,
) -> Result<(), Refusal> {
    if !(path.is_empty() || path.starts_with('/')) {
        return Err(Refusal::RelativePath);
    }
    let visible = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let authority_len = match visible(HOST.as_str()).or(domain_name) {
        None => 0,
        Some(host) => {
            let scheme = visible("x-forwarded-proto").unwrap_or("https");
            // Only a host and an optional port: a `/`, `?`, `#` or `@` in the header would
            // move the path somewhere else in the URL.
            let url = Url::parse(&format!("{scheme}://{host}/"))
                .ok()
                .filter(|url| {
                    url.has_host()
                        && url.username().is_empty()
                        && url.password().is_none()
                        && url.path() == "/"
                        && url.query().is_none()
                        && url.fragment().is_none()
                })
                .ok_or(Refusal::Authority)?;
            Uri::try_from(url.as_str()).map_err(|_| Refusal::Authority)?;
            url.as_str().len()
        }
    };
    if authority_len + path.len() + 1 + query_len > MAX_URL_LEN {
        return Err(Refusal::TooLong);
    }
    Ok(())
}

/// The event as a request for `/`, with nothing `lambda_http` could fail on.
fn neutralise(request: &mut LambdaRequest) {
    match request {
        LambdaRequest::ApiGatewayV1(event) => {
            event.path = Some("/".to_owned());
            event.query_string_parameters = QueryMap::default();
            event.multi_value_query_string_parameters = QueryMap::default();
            event.body = None;
            event.is_base64_encoded = false;
            forget_authority(&mut event.headers, &mut event.request_context.domain_name);
        }
        LambdaRequest::ApiGatewayV2(event) => {
            event.raw_path = Some("/".to_owned());
            event.raw_query_string = None;
            event.query_string_parameters = QueryMap::default();
            event.body = None;
            event.is_base64_encoded = false;
            forget_authority(&mut event.headers, &mut event.request_context.domain_name);
        }
        _ => {}
    }
}

fn forget_authority(headers: &mut HeaderMap, domain_name: &mut Option<String>) {
    headers.remove(HOST);
    headers.remove("x-forwarded-proto");
    *domain_name = None;
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use lambda_http::Request;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use url::form_urlencoded;

    use super::*;

    const V2_FIXTURE: &str = include_str!("../../../events/command-api.create-order.apigw-v2.json");
    const V1_FIXTURE: &str = include_str!("../../../events/query-api.get-order.apigw-rest.json");
    /// The REST fixture's stage, which `lambda_http` puts in front of the path.
    const V1_STAGE: &str = "/testStage";

    /// Each character a browser or a hand-written client may send raw, with its escape in a
    /// path and in a query.
    const HOSTILE: &[(&str, &str, &str)] = &[
        ("\"", "%22", "%22"),
        ("<", "%3C", "%3C"),
        (">", "%3E", "%3E"),
        (" ", "%20", "%20"),
        ("{", "%7B", "%7B"),
        ("}", "%7D", "%7D"),
        ("|", "%7C", "%7C"),
        ("^", "%5E", "%5E"),
        ("`", "%60", "%60"),
        ("\\", "%5C", "%5C"),
        ("#", "%23", "%23"),
        ("[", "%5B", "%5B"),
        ("]", "%5D", "%5D"),
        ("%", "%25", "%25"),
        ("é", "%C3%A9", "%C3%A9"),
        ("\u{1}", "%01", "%01"),
        ("\t", "%09", "%09"),
        ("\n", "%0A", "%0A"),
        ("\u{7f}", "%7F", "%7F"),
        // Data in a path, syntax in a query.
        ("?", "%3F", "?"),
    ];

    fn v2_event(path: &str, query: &str, headers: Value) -> Value {
        let mut event: Value = serde_json::from_str(V2_FIXTURE).unwrap();
        event["rawPath"] = json!(path);
        event["rawQueryString"] = json!(query);
        event["queryStringParameters"] = json!({});
        event["headers"] = headers;
        event
    }

    fn v2(path: &str, query: &str) -> LambdaRequest {
        let headers = json!({"host": "id.execute-api.us-east-1.amazonaws.com"});
        serde_json::from_value(v2_event(path, query, headers)).unwrap()
    }

    fn v1_event(path: &str, query: &[(&str, &str)], host: &str) -> Value {
        let mut event: Value = serde_json::from_str(V1_FIXTURE).unwrap();
        event["path"] = json!(path);
        event["headers"]["Host"] = json!(host);
        event["multiValueHeaders"]["Host"] = json!([host]);
        let single: serde_json::Map<String, Value> =
            query.iter().map(|(k, v)| ((*k).into(), json!(v))).collect();
        let multi: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| ((*k).into(), json!([v])))
            .collect();
        event["queryStringParameters"] = Value::Object(single);
        event["multiValueQueryStringParameters"] = Value::Object(multi);
        event
    }

    fn v1(path: &str, query: &[(&str, &str)]) -> LambdaRequest {
        let host = "gy415nuibc.execute-api.us-east-1.amazonaws.com";
        serde_json::from_value(v1_event(path, query, host)).unwrap()
    }

    /// What the router gets: `lambda_http`'s own conversion, after [`sanitize`].
    fn converted(mut event: LambdaRequest) -> Result<Request, Refusal> {
        let sanitized = sanitize(&mut event);
        let request = Request::from(event);
        sanitized.map(|()| request)
    }

    fn path_of(request: &Request) -> &str {
        let path = request.uri().path();
        path.strip_prefix(V1_STAGE).unwrap_or(path)
    }

    fn query_value(request: &Request, name: &str) -> Option<String> {
        let query = request.uri().query()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Path decoding: `%XX` only (`+` is itself in a path).
    fn percent_decode(escaped: &str) -> String {
        let bytes = escaped.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && starts_escape(&bytes[i + 1..]) {
                decoded.push(u8::from_str_radix(&escaped[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(decoded).unwrap()
    }

    #[test]
    fn each_unsafe_character_is_escaped_in_a_path_and_in_a_query() {
        for (raw, in_path, in_query) in HOSTILE {
            assert_eq!(
                percent_encode(&format!("/orders/a{raw}b"), Part::Path),
                format!("/orders/a{in_path}b"),
                "{raw:?} in a path"
            );
            assert_eq!(
                percent_encode(&format!("q=a{raw}b&r=1"), Part::Query),
                format!("q=a{in_query}b&r=1"),
                "{raw:?} in a query"
            );
        }
    }

    #[test]
    fn v2_hostile_paths_and_queries_convert_and_decode_to_what_was_sent() {
        for (raw, in_path, in_query) in HOSTILE {
            let request = converted(v2(&format!("/orders/a{raw}b"), &format!("q=a{raw}b")))
                .unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(path_of(&request), format!("/orders/a{in_path}b"), "{raw:?}");
            assert_eq!(
                request.uri().query(),
                Some(format!("q=a{in_query}b").as_str())
            );
            assert_eq!(
                percent_decode(path_of(&request)),
                format!("/orders/a{raw}b")
            );
            if *raw != "?" {
                // (`?` in a query is a literal `?`, and `#` decodes back too.)
                assert_eq!(
                    query_value(&request, "q"),
                    Some(format!("a{raw}b")),
                    "{raw:?}"
                );
            }
        }
    }

    #[test]
    fn v1_hostile_paths_and_query_values_convert_and_decode_to_what_was_sent() {
        for (raw, in_path, _) in HOSTILE {
            let value = format!("a{raw}b");
            let request = converted(v1(&format!("/orders/a{raw}b"), &[("q", &value)]))
                .unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(path_of(&request), format!("/orders/a{in_path}b"), "{raw:?}");
            assert_eq!(
                percent_decode(path_of(&request)),
                format!("/orders/a{raw}b")
            );
            // REST sends decoded values; `lambda_http` form-encodes them itself.
            assert_eq!(query_value(&request, "q"), Some(value), "{raw:?}");
        }
    }

    #[test]
    fn plus_and_valid_escapes_are_kept_as_sent() {
        for kept in [
            "+",
            "%2B",
            "%2b",
            "%20",
            "%C3%A9",
            "%25",
            "!$&'()*,;=:@~._-",
        ] {
            let path = format!("/orders/a{kept}b");
            assert!(matches!(
                percent_encode(&path, Part::Path),
                Cow::Borrowed(_)
            ));
            let query = format!("q=a{kept}b");
            assert!(matches!(
                percent_encode(&query, Part::Query),
                Cow::Borrowed(_)
            ));
        }
        let served = |query: &str| {
            let request = converted(v2("/orders/a+b%2Bc%20d", query)).unwrap();
            assert_eq!(percent_decode(path_of(&request)), "/orders/a+b+c d");
            query_value(&request, "q").unwrap()
        };
        // A query is form-encoded: `+` is a space, `%2B` a plus.
        assert_eq!(served("q=a+b"), "a b");
        assert_eq!(served("q=a%2Bb"), "a+b");
        assert_eq!(served("q=a%20b"), "a b");
        assert_eq!(served("q=caf%C3%A9"), "café");
        assert_eq!(served("q=caf%c3%a9"), "café");
    }

    #[test]
    fn a_percent_that_starts_no_escape_is_escaped() {
        for (raw, escaped) in [
            ("%", "%25"),
            ("100%", "100%25"),
            ("%2", "%252"),
            ("%zz", "%25zz"),
            ("%%41", "%25%41"),
            ("%é", "%25%C3%A9"),
        ] {
            assert_eq!(percent_encode(raw, Part::Query), escaped, "{raw:?}");
            assert_eq!(
                percent_encode(&format!("/{raw}"), Part::Path),
                format!("/{escaped}")
            );
        }
        let request = converted(v2("/orders/100%", "q=100%&r=%zz")).unwrap();
        assert_eq!(query_value(&request, "q").as_deref(), Some("100%"));
        assert_eq!(query_value(&request, "r").as_deref(), Some("%zz"));
        assert_eq!(percent_decode(path_of(&request)), "/orders/100%");
    }

    #[test]
    fn a_path_that_does_not_start_with_a_slash_is_refused_and_becomes_the_root() {
        for path in ["orders", ":8080/orders", "@evil/orders"] {
            for mut event in [v2(path, "q=1"), v1(path, &[("q", "1")])] {
                assert_eq!(sanitize(&mut event), Err(Refusal::RelativePath), "{path}");
                let request = Request::from(event);
                assert_eq!(path_of(&request), "/", "{path}");
                assert_eq!(request.uri().query(), None);
            }
        }
        // An empty path is what `lambda_http` reads as `/` already.
        assert_eq!(sanitize(&mut v2("", "")), Ok(()));
    }

    #[test]
    fn a_host_or_scheme_that_makes_no_url_is_refused() {
        let v2_with = |headers: Value| -> LambdaRequest {
            serde_json::from_value(v2_event("/orders", "q=1", headers)).unwrap()
        };
        for host in [
            "a b",
            "example.com:99999",
            "example.com:port",
            "example.com/other",
            "example.com?q",
            "example.com#f",
            "user@example.com",
            "[::1",
            "ex ample.com",
            "a.999",
        ] {
            let mut v2 = v2_with(json!({ "host": host }));
            assert_eq!(sanitize(&mut v2), Err(Refusal::Authority), "{host:?}");
            assert_eq!(path_of(&Request::from(v2)), "/");
            let mut v1: LambdaRequest =
                serde_json::from_value(v1_event("/orders", &[], host)).unwrap();
            assert_eq!(sanitize(&mut v1), Err(Refusal::Authority), "{host:?}");
            assert_eq!(path_of(&Request::from(v1)), "/");
        }
        for proto in ["ht tp", "1https", "https:", "h".repeat(100).as_str()] {
            let mut event = v2_with(json!({"host": "example.com", "x-forwarded-proto": proto}));
            assert_eq!(sanitize(&mut event), Err(Refusal::Authority), "{proto:?}");
            assert_eq!(path_of(&Request::from(event)), "/");
        }
        for host in ["example.com:8443", "127.0.0.1", "[::1]:443", "EXAMPLE.com."] {
            let mut event = v2_with(json!({ "host": host }));
            assert_eq!(sanitize(&mut event), Ok(()), "{host:?}");
        }
        // Without a Host header, `lambda_http` reads `requestContext.domainName`.
        let mut event = v2_event("/orders", "", json!({}));
        event["requestContext"]["domainName"] = json!("bad host");
        let mut event: LambdaRequest = serde_json::from_value(event).unwrap();
        assert_eq!(sanitize(&mut event), Err(Refusal::Authority));
    }

    #[test]
    fn a_url_too_long_once_escaped_is_refused() {
        let long = "\"".repeat(MAX_URL_LEN / 3);
        let mut event = v2(&format!("/orders/{long}"), "");
        assert_eq!(sanitize(&mut event), Err(Refusal::TooLong));
        assert_eq!(path_of(&Request::from(event)), "/");
        let mut event = v2("/orders", &format!("q={long}"));
        assert_eq!(sanitize(&mut event), Err(Refusal::TooLong));
        let mut event = v1("/orders", &[("q", &long)]);
        assert_eq!(sanitize(&mut event), Err(Refusal::TooLong));
        assert_eq!(Request::from(event).uri().query(), None);
        // A long URL of safe characters is API Gateway's business, not ours.
        let mut event = v2(&format!("/orders/{}", "a".repeat(10_000)), "");
        assert_eq!(sanitize(&mut event), Ok(()));
    }

    /// Found by fuzzing (`lambda::tests::fuzz`): `"a": []` in a REST event's
    /// `multiValueQueryStringParameters` panicked the handler (`query_map`'s iterator indexes
    /// the first value). The parameter is dropped; the others are served.
    #[test]
    fn a_rest_query_parameter_without_values_is_dropped_not_a_panic() {
        let mut event = v1_event("/orders", &[("q", "1")], "example.com");
        event["multiValueQueryStringParameters"]["empty"] = json!([]);
        let event: LambdaRequest = serde_json::from_value(event).unwrap();
        let request = catch_unwind(AssertUnwindSafe(|| converted(event)))
            .expect("no panic")
            .expect("not refused");
        assert_eq!(request.uri().query(), Some("q=1"));
    }

    /// Why the guard exists: on its own, `lambda_http` 1.3 (with `http` 1.5) panics on a raw
    /// `"`, `<`, `>`, space or control character in an HTTP API query, and silently rewrites
    /// a path with `#`, `?`, `\` or a tab in it. If this fails after an upgrade, see what
    /// `lambda_http` escapes itself now before simplifying the guard.
    #[test]
    fn lambda_http_alone_panics_on_hostile_queries_and_rewrites_hostile_paths() {
        let convert = |event: LambdaRequest| catch_unwind(|| Request::from(event)).ok();
        for raw in ["\"", "<", ">", " ", "\u{1}", "\n", "\u{7f}"] {
            assert!(
                convert(v2("/orders", &format!("q=a{raw}b"))).is_none(),
                "{raw:?}"
            );
        }
        let path = |event| convert(event).map(|r| path_of(&r).to_owned());
        assert_eq!(path(v2("/orders/a#b", "")).as_deref(), Some("/orders/a"));
        assert_eq!(path(v2("/orders/a\\b", "")).as_deref(), Some("/orders/a/b"));
        assert_eq!(path(v1("/orders/a?b", &[])).as_deref(), Some("/orders/a"));
        assert_eq!(path(v1("/orders/a\tb", &[])).as_deref(), Some("/orders/ab"));
    }

    fn host_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("id.execute-api.us-east-1.amazonaws.com".to_owned()),
            "[a-z0-9.:\\[\\]@/?#%-]{0,20}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn escaping_is_idempotent(raw in any::<String>()) {
            for part in [Part::Path, Part::Query] {
                let once = percent_encode(&raw, part).into_owned();
                prop_assert_eq!(percent_encode(&once, part), once.as_str());
                prop_assert!(once.is_ascii());
            }
        }

        #[test]
        fn no_sanitised_event_panics_the_conversion(
            path in any::<String>(),
            query in any::<String>(),
            value in any::<String>(),
            host in host_strategy(),
            proto in prop_oneof![Just("https".to_owned()), any::<String>()],
        ) {
            let headers = json!({"host": host, "x-forwarded-proto": proto});
            let events = [
                serde_json::from_value::<LambdaRequest>(v2_event(&path, &query, headers)),
                serde_json::from_value::<LambdaRequest>(v1_event(&path, &[("q", &value)], &host)),
            ];
            // (A header value with control characters is not an event API Gateway sends.)
            for event in events.into_iter().flatten() {
                let request = catch_unwind(AssertUnwindSafe(|| converted(event)));
                prop_assert!(request.is_ok(), "path {path:?} query {query:?} host {host:?}");
            }
        }
    }
}
