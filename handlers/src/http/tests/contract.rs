//! Every response of the router tests, checked against the OpenAPI document: [`send`]
//! (super::send) passes each one to [`check`]. The operation is found by method and path
//! template; its status must be documented, its media type too, and its body must validate
//! against the documented schema (jsonschema, draft 2020-12, formats checked). The headers the
//! API sets (`ETag`, `Location`, ...) must be documented for that response, and their values
//! must match the header's schema. A path no route serves must be a 404 problem, and a method
//! a route does not serve a 405 problem.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::http::{HeaderMap, Method, StatusCode, header};
use jsonschema::Validator;
use serde_json::{Value, json};

use crate::http::{Api, openapi};

/// The response headers this API sets itself (the rest, like `content-length`, are HTTP's).
const API_HEADERS: [&str; 5] = [
    "etag",
    "location",
    "idempotent-replayed",
    "retry-after",
    "x-correlation-id",
];

struct Contract {
    document: Value,
    /// Compiled validators, by JSON pointer of the schema in the document.
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// The document of each API a test router serves.
static CONTRACTS: LazyLock<[(Api, Contract); 3]> = LazyLock::new(|| {
    [Api::Both, Api::Commands, Api::Queries].map(|api| {
        let contract = Contract {
            document: serde_json::to_value(openapi::document_for(api)).expect("JSON"),
            validators: Mutex::new(HashMap::new()),
        };
        (api, contract)
    })
});

impl Contract {
    /// The validator of the schema at `pointer`, its `$ref`s resolved within the document's
    /// components.
    fn validator(&self, pointer: &str) -> Arc<Validator> {
        if let Some(validator) = self.lock().get(pointer) {
            return validator.clone();
        }
        let mut root = self
            .document
            .pointer(pointer)
            .unwrap_or_else(|| panic!("the document has no schema at {pointer}"))
            .clone();
        root["components"] = self.document["components"].clone();
        let validator = Arc::new(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("the schema at {pointer} compiles: {e}")),
        );
        self.lock().insert(pointer.to_owned(), validator.clone());
        validator
    }

    /// The cache; a test that panicked while holding it left nothing half-done in it.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Validator>>> {
        self.validators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn validate(&self, pointer: &str, instance: &Value, what: &str) {
        let errors: Vec<String> = self
            .validator(pointer)
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what} does not match the OpenAPI document ({pointer}):\n{}\n{instance:#}",
            errors.join("\n")
        );
    }
}

/// The path template of the document that `path` falls under, if any.
fn template_of<'a>(paths: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.split('/').collect();
    paths
        .keys()
        .filter(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(part, segment)| {
                    let is_param = part.starts_with('{') && part.ends_with('}');
                    (is_param && !segment.is_empty()) || part == segment
                })
        })
        // A literal segment beats a parameter.
        .max_by_key(|template| template.matches('{').count() == 0)
        .map(String::as_str)
}

/// JSON pointer escaping (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Checks one response of `method path` from a router serving `api` against that API's
/// document; panics with what differs. A HEAD is checked as the GET it is, without a body.
pub fn check(
    api: Api,
    method: &Method,
    path: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
) {
    let contract = &CONTRACTS
        .iter()
        .find(|(a, _)| *a == api)
        .expect("every API")
        .1;
    let head = *method == Method::HEAD;
    let method = if head { &Method::GET } else { method };
    let paths = contract.document["paths"]
        .as_object()
        .expect("the document has paths");
    let Some(template) = template_of(paths, path) else {
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {path}: no route, so the answer must be a 404 problem: {body}"
        );
        return check_problem_fallback(contract, headers, body, head, "not-found");
    };
    let method_key = method.as_str().to_ascii_lowercase();
    let Some(operation) = paths[template].get(&method_key) else {
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {template} does not serve {method}, so the answer must be a 405 \
             problem: {body}"
        );
        return check_problem_fallback(contract, headers, body, head, "method-not-allowed");
    };
    let what = format!("{method} {template} -> {}", status.as_u16());
    let code = status.as_u16().to_string();
    let Some(response) = operation["responses"].get(&code) else {
        panic!("{what}: the status is not documented. The body was {body}");
    };
    let response_pointer = format!("/paths/{}/{method_key}/responses/{code}", escape(template));

    // The body, in a documented media type.
    let content = response.get("content").and_then(Value::as_object);
    match (content, body) {
        (_, Value::Null) if head => {}
        (None, Value::Null) => {}
        (None, _) => panic!("{what}: documented without a body, but got {body}"),
        (Some(_), Value::Null) => panic!("{what}: documented with a body, but none came"),
        (Some(content), body) => {
            let media_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(|v| v.trim().to_ascii_lowercase())
                .unwrap_or_default();
            assert!(
                content.contains_key(&media_type),
                "{what}: Content-Type {media_type:?} is not documented (documented: {:?})",
                content.keys().collect::<Vec<_>>()
            );
            contract.validate(
                &format!("{response_pointer}/content/{}/schema", escape(&media_type)),
                body,
                &format!("{what}: the body"),
            );
        }
    }

    // The API's own headers: documented, with a value of the documented schema.
    let documented = response.get("headers").and_then(Value::as_object);
    for name in API_HEADERS {
        let Some(value) = headers.get(name) else {
            continue;
        };
        let key = documented
            .and_then(|h| h.keys().find(|k| k.eq_ignore_ascii_case(name)))
            .unwrap_or_else(|| panic!("{what}: the header {name} is not documented"));
        let value = value.to_str().expect("an ASCII header");
        let schema_pointer = format!("{response_pointer}/headers/{}/schema", escape(key));
        // A header is text; an integer schema (Retry-After) is checked on the number.
        let instance = match contract
            .document
            .pointer(&schema_pointer)
            .and_then(|s| s.get("type"))
        {
            Some(t) if t == "integer" => json!(
                value
                    .parse::<i64>()
                    .unwrap_or_else(|_| panic!("{what}: {name}: {value:?} is not an integer"))
            ),
            _ => json!(value),
        };
        contract.validate(
            &schema_pointer,
            &instance,
            &format!("{what}: the header {name}"),
        );
    }
}

/// A 404 or 405 from the router's fallbacks: a problem of that kind.
fn check_problem_fallback(
    contract: &Contract,
    headers: &HeaderMap,
    body: &Value,
    head: bool,
    slug: &str,
) {
    assert_eq!(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some(crate::http::problem::PROBLEM_JSON)
    );
    if head {
        assert_eq!(*body, Value::Null, "a HEAD response has no body");
        return;
    }
    contract.validate("/components/schemas/Problem", body, "a fallback's problem");
    assert_eq!(body["type"], format!("urn:orders:problem:{slug}"));
}

#[test]
#[should_panic(expected = "the status is not documented")]
fn an_undocumented_status_fails_the_check() {
    let body = json!({"items": [], "nextCursor": null});
    check(
        Api::Both,
        &Method::GET,
        "/orders",
        StatusCode::IM_A_TEAPOT,
        &HeaderMap::new(),
        &body,
    );
}

#[test]
#[should_panic(expected = "the body does not match the OpenAPI document")]
fn a_body_off_the_schema_fails_the_check() {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    let body = json!({"items": [], "nextCursor": null, "total": 0});
    check(
        Api::Both,
        &Method::GET,
        "/orders",
        StatusCode::OK,
        &headers,
        &body,
    );
}

#[test]
#[should_panic(expected = "the header etag is not documented")]
fn an_undocumented_header_fails_the_check() {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    headers.insert(header::ETAG, "\"1\"".parse().unwrap());
    let body = json!({"items": [], "nextCursor": null});
    check(
        Api::Both,
        &Method::GET,
        "/orders",
        StatusCode::OK,
        &headers,
        &body,
    );
}
