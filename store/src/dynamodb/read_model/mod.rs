//! The read model (`orders` table): one view's item, its get and its conditional put; the
//! batched forms (`batch.rs`) and the GSI listings (`listing.rs`).

use aws_sdk_dynamodb::Client;
use orders_domain::OrderId;

use super::attributes::{Item, consistent_get, n, s};
use super::error::{condition_held, internal};
use crate::{OrderView, PutOutcome, StoreError};

mod batch;
mod listing;

pub(super) use self::batch::{Consistency, batch_get, get_many, put_many};
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

/// A `PutItem` conditional on the stored view's version (`None`: no stored view).
pub(super) async fn put(
    client: &Client,
    table: &str,
    view: &OrderView,
    expected_version: Option<u64>,
) -> Result<PutOutcome, StoreError> {
    let request = client
        .put_item()
        .table_name(table)
        .set_item(Some(view_item(view)?));
    let request = match expected_version {
        None => request.condition_expression("attribute_not_exists(orderId)"),
        Some(expected) => request
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":expected", n(expected)),
    };
    Ok(if condition_held("PutItem", request.send().await)? {
        PutOutcome::Written
    } else {
        PutOutcome::VersionMismatch
    })
}
