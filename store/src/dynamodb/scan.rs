//! Whole-table reads for rebuilds: parallel `Scan`s of the events and orders tables, the
//! "which orders have events" check, and the orphan view's conditional delete.

use std::collections::HashSet;

use aws_sdk_dynamodb::Client;
use orders_domain::OrderId;

use super::attributes::{Item, get_n, get_s, n};
use super::error::{condition_held, internal, sdk_error};
use super::events::{decode_event, event_key};
use super::read_model::{Consistency, batch_get, decode_view, key as view_key};
use crate::{DeleteOutcome, EventKey, OrderView, ScanPage, ScanSegment, StoreError, StoredEvent};

/// One page of a parallel `Scan`: part `segment.index` of `segment.total`, strongly
/// consistent, so that a rebuild never folds an order from a stale read.
async fn scan_page(
    client: &Client,
    table: &str,
    segment: &ScanSegment,
    start: Option<Item>,
    limit: usize,
) -> Result<(Vec<Item>, Option<Item>), StoreError> {
    let total = i32::try_from(segment.total)
        .map_err(|_| internal(format_args!("{} scan segments are too many", segment.total)))?;
    let output = client
        .scan()
        .table_name(table)
        .segment(segment.index as i32)
        .total_segments(total)
        .consistent_read(true)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|err| sdk_error("Scan", err))?;
    let next = output.last_evaluated_key.filter(|key| !key.is_empty());
    Ok((output.items.unwrap_or_default(), next))
}

pub(super) async fn scan_events(
    client: &Client,
    table: &str,
    segment: &ScanSegment,
    after: Option<EventKey>,
    limit: usize,
) -> Result<ScanPage<StoredEvent, EventKey>, StoreError> {
    let start = after.map(|key| event_key(key.order_id, key.version));
    let (items, next) = scan_page(client, table, segment, start, limit).await?;
    let events = items
        .into_iter()
        .map(decode_event)
        .collect::<Result<Vec<_>, _>>()?;
    let next = next
        .map(|key| {
            Ok::<_, StoreError>(EventKey {
                order_id: order_id_of(&key)?,
                version: get_n(&key, "version", "LastEvaluatedKey")?,
            })
        })
        .transpose()?;
    Ok(ScanPage {
        items: events,
        next,
    })
}

pub(super) async fn scan_views(
    client: &Client,
    table: &str,
    segment: &ScanSegment,
    after: Option<OrderId>,
    limit: usize,
) -> Result<ScanPage<OrderView, OrderId>, StoreError> {
    let start = after.map(view_key);
    let (items, next) = scan_page(client, table, segment, start, limit).await?;
    let views = items
        .into_iter()
        .map(decode_view)
        .collect::<Result<Vec<_>, _>>()?;
    let next = next.map(|key| order_id_of(&key)).transpose()?;
    Ok(ScanPage { items: views, next })
}

/// The table's item count, which DynamoDB refreshes about every six hours.
pub(super) async fn item_count(client: &Client, table: &str) -> Result<Option<u64>, StoreError> {
    let output = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|err| sdk_error("DescribeTable", err))?;
    Ok(output
        .table
        .and_then(|table| table.item_count)
        .and_then(|count| u64::try_from(count).ok()))
}

/// Every order's stream starts at version 1, so an order has events exactly when its
/// (orderId, 1) item exists: one keys-only `BatchGetItem` per 100 orders, strongly consistent
/// (a stale read could miss a new order's first event and take its view for an orphan).
pub(super) async fn orders_with_events(
    client: &Client,
    table: &str,
    order_ids: &[OrderId],
) -> Result<HashSet<OrderId>, StoreError> {
    let unique: HashSet<OrderId> = order_ids.iter().copied().collect();
    let keys = unique.into_iter().map(|id| event_key(id, 1)).collect();
    batch_get(client, table, keys, Some("orderId"), Consistency::Strong)
        .await?
        .iter()
        .map(|item| {
            let id = get_s(item, "orderId", "an events key")?;
            OrderId::parse(id).map_err(|_| StoreError::Corrupt(format!("stored order id {id:?}")))
        })
        .collect()
}

/// `DeleteItem` on condition that the view is still at `expected_version`.
pub(super) async fn delete_view(
    client: &Client,
    table: &str,
    order_id: OrderId,
    expected_version: u64,
) -> Result<DeleteOutcome, StoreError> {
    let result = client
        .delete_item()
        .table_name(table)
        .set_key(Some(view_key(order_id)))
        .condition_expression("#v = :expected")
        .expression_attribute_names("#v", "version")
        .expression_attribute_values(":expected", n(expected_version))
        .send()
        .await;
    Ok(if condition_held("DeleteItem", result)? {
        DeleteOutcome::Deleted
    } else {
        DeleteOutcome::VersionMismatch
    })
}

/// The `orderId` of a `LastEvaluatedKey`.
fn order_id_of(key: &Item) -> Result<OrderId, StoreError> {
    let order_id = get_s(key, "orderId", "LastEvaluatedKey")?;
    OrderId::parse(order_id)
        .map_err(|_| internal(format_args!("LastEvaluatedKey orderId {order_id:?}")))
}
