//! Command bodies, parsed into domain values. Parsed by hand from a `serde_json::Value`, not with
//! a derived Deserialize, because serde stops at the first error and the API promises every
//! field error at once.

use orders_domain::{
    CancelReason, CreateOrder, Currency, CustomerId, FieldError, Items, LineItem, Quantity, Sku,
    UnitPrice,
};
use serde_json::{Map, Value};

use crate::http::ApiError;

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
}
