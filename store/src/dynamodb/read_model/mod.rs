//! The read model (`orders` table): one view's item, its get and its conditional put; the
//! batched forms (`batch.rs`) and the GSI listings (`listing.rs`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use orders_domain::OrderId;

use super::attributes::{Item, consistent_get, n, s};
use super::error::{condition_held, internal};
use crate::{OrderView, PutOutcome, StoreError};

mod batch;
mod listing;

pub(super) use self::batch::{batch_get, get_many, put_many};
pub(super) use self::listing::list;

pub(super) const BY_CUSTOMER: &str = "byCustomer";
pub(super) const BY_STATUS: &str = "byStatus";

pub(super) fn key(order_id: OrderId) -> Item {
    Item::from([("orderId".to_owned(), s(order_id.to_string()))])
}

fn view_item(view: &OrderView) -> Result<Item, StoreError> {
    serde_dynamo::to_item(view).map_err(|err| {
        internal(format_args!(
            "cannot encode the view of {} as an item: {err}",
            view.order_id
        ))
    })
}

pub(super) fn decode_view(item: Item) -> Result<OrderView, StoreError> {
    serde_dynamo::from_item(item)
        .map_err(|err| StoreError::Corrupt(format!("an orders item does not decode: {err}")))
}

pub(super) async fn get(
    client: &Client,
    table: &str,
    order_id: OrderId,
) -> Result<Option<OrderView>, StoreError> {
    consistent_get(client, table, key(order_id))
        .await?
        .map(decode_view)
        .transpose()
}

/// The condition of a view write, for a `PutItem` and a transaction's `Put` alike: the stored
/// view is at `expected_version`, or (`None`) there is none.
struct VersionCondition {
    expression: &'static str,
    names: Option<HashMap<String, String>>,
    values: Option<Item>,
}

fn version_condition(expected_version: Option<u64>) -> VersionCondition {
    match expected_version {
        None => VersionCondition {
            expression: "attribute_not_exists(orderId)",
            names: None,
            values: None,
        },
        Some(expected) => VersionCondition {
            expression: "#v = :expected",
            names: Some(HashMap::from([("#v".to_owned(), "version".to_owned())])),
            values: Some(Item::from([(":expected".to_owned(), n(expected))])),
        },
    }
}

/// A `PutItem` conditional on the stored view's version (`None`: no stored view).
pub(super) async fn put(
    client: &Client,
    table: &str,
    view: &OrderView,
    expected_version: Option<u64>,
) -> Result<PutOutcome, StoreError> {
    let condition = version_condition(expected_version);
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(view_item(view)?))
        .condition_expression(condition.expression)
        .set_expression_attribute_names(condition.names)
        .set_expression_attribute_values(condition.values)
        .send()
        .await;
    Ok(if condition_held("PutItem", result)? {
        PutOutcome::Written
    } else {
        PutOutcome::VersionMismatch
    })
}
