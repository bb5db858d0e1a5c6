//! Events in their stored form: encoding, decoding, and upcasting older schemas.

use orders_domain::event::{ORDER_CREATED, ORDER_SHIPPED};
use orders_domain::{CancelReason, DecodeError, EventData, Upcaster};
use orders_testkit::fixtures::created;
use serde_json::{Value, json};

#[test]
fn every_event_round_trips_through_its_stored_form() {
    let events = [
        created(),
        EventData::OrderConfirmed,
        EventData::OrderCancelled {
            reason: Some(CancelReason::parse("changed mind").unwrap()),
        },
        EventData::OrderCancelled { reason: None },
        EventData::OrderShipped,
    ];
    for event in events {
        let stored = event.encode();
        assert_eq!(stored.schema_version, 1);
        let decoded = Upcaster::current()
            .decode(stored.event_type, stored.schema_version, &stored.data)
            .unwrap();
        assert_eq!(decoded, Some(event));
    }
}

#[test]
fn stored_payload_uses_the_documented_field_names() {
    assert_eq!(
        created().encode().data,
        json!({"customerId": "c-1", "currency": "EUR", "total": 300,
               "items": [{"sku": "SKU-1", "quantity": 2, "unitPrice": 150}]})
    );
}

/// A schema that exists only in this test: an early `OrderCreated` with `customer`,
/// `lines[].qty` / `lines[].price`, and no stored total.
fn order_created_v0_to_v1(v0: Value) -> Result<Value, String> {
    let lines = v0["lines"].as_array().ok_or("lines must be an array")?;
    let items: Vec<Value> = lines
        .iter()
        .map(|l| json!({"sku": l["sku"], "quantity": l["qty"], "unitPrice": l["price"]}))
        .collect();
    let total: u64 = lines
        .iter()
        .map(|l| l["qty"].as_u64().unwrap_or(0) * l["price"].as_u64().unwrap_or(0))
        .sum();
    Ok(
        json!({"customerId": v0["customer"], "currency": v0["currency"], "items": items, "total": total}),
    )
}

#[test]
fn an_older_schema_is_upcast_to_the_current_one() {
    let upcaster = Upcaster::default().with_step(ORDER_CREATED, 0, order_created_v0_to_v1);
    let v0 = json!({"customer": "c-1", "currency": "EUR",
                    "lines": [{"sku": "SKU-1", "qty": 2, "price": 150}]});
    assert_eq!(
        upcaster.decode(ORDER_CREATED, 0, &v0).unwrap(),
        Some(created())
    );
}

/// What the current upcaster refuses this stored event with.
#[track_caller]
fn decode_error(event_type: &str, schema_version: u32, data: Value) -> DecodeError {
    Upcaster::current()
        .decode(event_type, schema_version, &data)
        .unwrap_err()
}

#[test]
fn an_older_schema_without_a_step_fails_clearly() {
    let err = decode_error(ORDER_CREATED, 0, json!({}));
    assert!(
        matches!(
            err,
            DecodeError::NoUpcaster {
                schema_version: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_newer_schema_fails_rather_than_being_misread() {
    let err = decode_error(ORDER_SHIPPED, 2, json!({}));
    assert!(
        matches!(err, DecodeError::FutureSchema { current: 1, .. }),
        "{err}"
    );
}

#[test]
fn an_unknown_event_type_decodes_to_none() {
    assert_eq!(
        Upcaster::current().decode("OrderGiftWrapped", 1, &json!({})),
        Ok(None)
    );
}

#[test]
fn an_invalid_payload_is_an_error() {
    let err = decode_error(
        ORDER_CREATED,
        1,
        json!({"customerId": "c", "currency": "eur"}),
    );
    assert!(matches!(err, DecodeError::InvalidPayload { .. }), "{err}");
}
