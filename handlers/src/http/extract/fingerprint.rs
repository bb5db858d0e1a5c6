//! The idempotency fingerprint: the canonical body of a parsed command, hashed with the method
//! and path.

use axum::http::Method;
use orders_domain::{CreateOrder, OrderCommand};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::http::extract::{cancel_reason, create_order};

    use super::*;

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
}
