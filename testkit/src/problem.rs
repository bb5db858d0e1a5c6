//! Asserting an RFC 9457 problem answer, whatever carried it (the router's response, the
//! Lambda's API Gateway response).

use serde_json::Value;

/// Asserts an `application/problem+json` answer with `expected` status and the problem
/// members, and returns its `errors[].field`s (each error with a message).
#[track_caller]
pub fn assert_problem(
    status: u16,
    content_type: Option<&str>,
    body: &Value,
    expected: u16,
) -> Vec<String> {
    assert_eq!(status, expected, "body: {body}");
    assert_eq!(content_type, Some("application/problem+json"));
    assert_eq!(body["status"], expected);
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "{member} in {body}");
    }
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    assert!(e["message"].is_string(), "message in {e}");
                    e["field"].as_str().unwrap().to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}
