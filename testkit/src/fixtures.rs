//! Domain events and ids for tests.

use orders_domain::{
    CancelReason, Currency, CustomerId, EventData, Items, LineItem, OrderId, Quantity, Sku,
    Timestamp, UnitPrice,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// A fixed instant `ms` milliseconds after the tests' epoch (late 2026), so stamps compare.
pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_790_000_000_000 + ms)
}

pub fn new_order_id() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

/// `OrderCreated` for customer `c-1`: two of `SKU-1` at 150, a total of 300.
pub fn created() -> EventData {
    created_by("c-1")
}

/// `OrderCreated` for `customer`: two of `SKU-1` at 150, a total of 300.
pub fn created_by(customer: &str) -> EventData {
    let items = Items::parse(vec![LineItem {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: Quantity::parse(2).unwrap(),
        unit_price: UnitPrice::parse(150).unwrap(),
    }])
    .unwrap();
    EventData::OrderCreated {
        customer_id: CustomerId::parse(customer).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        total: items.total().unwrap(),
        items,
    }
}

pub fn cancelled() -> EventData {
    EventData::OrderCancelled {
        reason: Some(CancelReason::parse("changed mind").unwrap()),
    }
}

/// The JSON a client posts to create an order for `customer`: two of `SKU-1` at 1250 and
/// one of `SKU-2` at 999.
pub fn create_body(customer: &str) -> Value {
    json!({
        "customerId": customer,
        "currency": "EUR",
        "items": [
            {"sku": "SKU-1", "quantity": 2, "unitPrice": 1250},
            {"sku": "SKU-2", "quantity": 1, "unitPrice": 999}
        ]
    })
}
