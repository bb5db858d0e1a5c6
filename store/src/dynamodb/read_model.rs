//! The read model (`orders` table): conditional puts, batched reads and GSI listings.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem};
use futures::{StreamExt, TryStreamExt};
use orders_domain::OrderId;
use serde::{Deserialize, Serialize};

use super::attributes::{Item, get_s, n, s};
use super::error::{
    CONTENDED_RETRY_AFTER, THROTTLED_RETRY_AFTER, conditional, internal, is_throttling, sdk_error,
};
use super::events::MAX_TRANSACTION_ATTEMPTS;
use crate::retry::RetryPolicy;
use crate::{
    ConditionalPut, ListFilter, ListQuery, OrderView, Page, PageKey, PutOutcome, StoreError,
};

/// DynamoDB's limit on the keys of one `BatchGetItem`.
const BATCH_GET_KEYS: usize = 100;
/// Rounds of `BatchGetItem` for one chunk while DynamoDB leaves keys unprocessed (throttling).
const BATCH_GET_ATTEMPTS: u32 = RetryPolicy::BATCH_GET.max_attempts;
/// Conditional writes per `TransactWriteItems` of `put_many`: `BatchWriteItem`'s batch size
/// (DynamoDB allows 100 actions, but a cancelled transaction is all redone, so smaller is
/// cheaper under contention).
const PUTS_PER_TRANSACTION: usize = 25;
/// Transactions of one `put_many` in flight at once.
const TRANSACTIONS_IN_FLIGHT: usize = 4;

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
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(order_id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|err| sdk_error("GetItem", err))?;
    output.item.map(decode_view).transpose()
}

/// `BatchGetItem` in chunks of 100 keys, consistent reads, retrying unprocessed keys.
pub(super) async fn get_many(
    client: &Client,
    table: &str,
    order_ids: &[OrderId],
) -> Result<HashMap<OrderId, OrderView>, StoreError> {
    let mut seen = HashSet::new();
    let keys = order_ids
        .iter()
        .filter(|id| seen.insert(**id))
        .map(|&id| key(id))
        .collect();
    batch_get(client, table, keys, None)
        .await?
        .into_iter()
        .map(|item| decode_view(item).map(|view| (view.order_id, view)))
        .collect()
}

/// The items of `keys` (distinct) that exist: `BatchGetItem` in chunks of 100 keys, strongly
/// consistent, with only the `projection` attributes if given; unprocessed keys (throttling)
/// are retried with backoff a bounded number of times.
pub(super) async fn batch_get(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<&str>,
) -> Result<Vec<Item>, StoreError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(BATCH_GET_KEYS) {
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(chunk.to_vec()))
            .set_projection_expression(projection.map(str::to_owned))
            .consistent_read(true)
            .build()
            .map_err(internal)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let output = client
                .batch_get_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|err| sdk_error("BatchGetItem", err))?;
            found.extend(
                output
                    .responses
                    .and_then(|mut tables| tables.remove(table))
                    .unwrap_or_default(),
            );
            match output
                .unprocessed_keys
                .and_then(|mut tables| tables.remove(table))
                .filter(|rest| !rest.keys().is_empty())
            {
                None => break,
                Some(rest) if attempt >= BATCH_GET_ATTEMPTS => {
                    return Err(StoreError::Unavailable {
                        reason: format!(
                            "BatchGetItem left {} keys unprocessed after {attempt} attempts",
                            rest.keys().len()
                        ),
                        retry_after: THROTTLED_RETRY_AFTER,
                    });
                }
                Some(rest) => {
                    tokio::time::sleep(RetryPolicy::BATCH_GET.delay(attempt)).await;
                    pending = rest;
                }
            }
        }
    }
    Ok(found)
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
    conditional("PutItem", result)
}

/// The conditional writes in `TransactWriteItems` of up to [`PUTS_PER_TRANSACTION`], a few
/// transactions in flight; outcomes in input order.
///
/// A transaction is the only batched write DynamoDB has that takes a condition per item
/// (`BatchWriteItem` takes none, so it could overwrite a view a concurrent writer just advanced).
/// It is all or nothing, so a cancelled one is read item by item, from its cancellation reasons
/// (in action order):
/// - `ConditionalCheckFailed`: that write is [`PutOutcome::VersionMismatch`], as a lone
///   `PutItem`'s would be;
/// - `None`: the item was fine; it goes into the next attempt;
/// - `TransactionConflict` or throttling: it goes into the next attempt, after a backoff, at most
///   [`MAX_TRANSACTION_ATTEMPTS`] contended attempts in all, then [`StoreError::Unavailable`].
///
/// A single write (the usual projector batch of one order) is a plain conditional `PutItem`:
/// a transaction costs two write units per item, a `PutItem` one. A transaction may touch an
/// item only once, so an order that appears again starts a new wave of transactions, sent after
/// the earlier wave's, so that its writes land in input order. The first failure ends the batch;
/// the writes already made stand (each is whole, and callers re-judge on retry).
pub(super) async fn put_many(
    client: &Client,
    table: &str,
    puts: &[ConditionalPut],
) -> Result<Vec<PutOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(puts.len());
    for wave in waves(puts) {
        let writes: Vec<_> = wave
            .chunks(PUTS_PER_TRANSACTION)
            .map(|chunk| put_chunk(client, table, chunk))
            .collect();
        let settled: Vec<Vec<PutOutcome>> = futures::stream::iter(writes)
            .buffered(TRANSACTIONS_IN_FLIGHT)
            .try_collect()
            .await?;
        outcomes.extend(settled.into_iter().flatten());
    }
    Ok(outcomes)
}

/// `puts` cut, in order, into runs in which no order appears twice.
fn waves(puts: &[ConditionalPut]) -> Vec<&[ConditionalPut]> {
    let mut waves = Vec::new();
    let mut start = 0;
    let mut orders = HashSet::new();
    for (i, put) in puts.iter().enumerate() {
        if !orders.insert(put.view.order_id) {
            waves.push(&puts[start..i]);
            start = i;
            orders.clear();
            orders.insert(put.view.order_id);
        }
    }
    if start < puts.len() {
        waves.push(&puts[start..]);
    }
    waves
}

fn transact_put(table: &str, put: &ConditionalPut) -> Result<TransactWriteItem, StoreError> {
    let condition = version_condition(put.expected_version);
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(view_item(&put.view)?))
        .condition_expression(condition.expression)
        .set_expression_attribute_names(condition.names)
        .set_expression_attribute_values(condition.values)
        .build()
        .map_err(internal)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// One transaction's worth of writes (distinct orders), until each has an outcome.
async fn put_chunk(
    client: &Client,
    table: &str,
    chunk: &[ConditionalPut],
) -> Result<Vec<PutOutcome>, StoreError> {
    let mut outcomes = vec![PutOutcome::Written; chunk.len()];
    // Indexes into `chunk` still to be written.
    let mut pending: Vec<usize> = (0..chunk.len()).collect();
    let mut contended = 0;
    while let Some(&first) = pending.first() {
        if pending.len() == 1 {
            let put_one = &chunk[first];
            outcomes[first] = put(client, table, &put_one.view, put_one.expected_version).await?;
            break;
        }
        let items = pending
            .iter()
            .map(|&i| transact_put(table, &chunk[i]))
            .collect::<Result<Vec<_>, _>>()?;
        let err = match client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => break, // every pending write is Written
            Err(err) => err,
        };
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancel))
                if cancel.cancellation_reasons().len() == pending.len() =>
            {
                cancel.cancellation_reasons()
            }
            _ => return Err(sdk_error("TransactWriteItems", err)),
        };
        let mut retry = Vec::with_capacity(pending.len());
        let mut contention = None;
        for (&i, reason) in pending.iter().zip(reasons) {
            match reason.code().unwrap_or("None") {
                "ConditionalCheckFailed" => outcomes[i] = PutOutcome::VersionMismatch,
                "None" => retry.push(i),
                "TransactionConflict" => {
                    retry.push(i);
                    contention.get_or_insert(("transaction conflict", CONTENDED_RETRY_AFTER));
                }
                code if is_throttling(code) => {
                    retry.push(i);
                    contention = Some(("throttled", THROTTLED_RETRY_AFTER));
                }
                code => {
                    return Err(internal(format_args!(
                        "a read-model transaction was cancelled: {code}: {}",
                        reason.message().unwrap_or("no message")
                    )));
                }
            }
        }
        if retry.len() == pending.len() && contention.is_none() {
            // No item says why: retrying the same transaction would loop.
            return Err(internal(
                "a read-model transaction was cancelled with no reason given",
            ));
        }
        if let Some((why, retry_after)) = contention {
            contended += 1;
            if contended >= MAX_TRANSACTION_ATTEMPTS {
                return Err(StoreError::Unavailable {
                    reason: format!(
                        "a read-model transaction was cancelled {contended} times: {why}"
                    ),
                    retry_after,
                });
            }
            tokio::time::sleep(RetryPolicy::TRANSACTION.delay(contended)).await;
        }
        pending = retry;
    }
    Ok(outcomes)
}

/// The GSI of a listing, its partition key attribute and value, and its sort key attribute.
fn index(filter: &ListFilter) -> (&'static str, &'static str, String, &'static str) {
    match filter {
        ListFilter::Customer(customer) => (
            BY_CUSTOMER,
            "customerId",
            customer.as_str().to_owned(),
            "createdAt",
        ),
        ListFilter::Status(status) => {
            (BY_STATUS, "status", status.as_str().to_owned(), "updatedAt")
        }
    }
}

/// Newest first on the GSI, ties on the sort key broken by `orderId`, descending (as in every
/// adapter).
///
/// A GSI does not promise an order among items with equal index keys (DynamoDB Local returns
/// them in insertion order), so the adapter makes the order itself: it reads the index newest
/// first until the page's last tie group is complete (the item after the `limit`-th has an older
/// sort key, or the index is exhausted), sorts by (sort key, `orderId`) descending and cuts the
/// page. The page key is the last item's key, in `LastEvaluatedKey` form
/// (`{"orderId": {"S": ..}, "customerId": {"S": ..}, "createdAt": {"S": ..}}`); the next page
/// queries `sort key <= k` and skips the tie group's items at or above that `orderId`. Reading
/// one item more than `limit` also means a page that happens to end the listing says so
/// (`next: None`) instead of costing the client an empty last page.
pub(super) async fn list(
    client: &Client,
    table: &str,
    query: &ListQuery,
) -> Result<Page, StoreError> {
    if query.limit == 0 {
        return Err(internal("a listing's limit must be at least 1"));
    }
    let limit = query.limit as usize;
    let (index_name, hash, hash_value, range) = index(&query.filter);
    let resume = query
        .after
        .as_ref()
        .map(|after| resume_after(after, hash, &hash_value, range))
        .transpose()?;
    let what = "an orders item in a GSI";
    // (sort key, orderId, item), in the index's order: sort key descending.
    let mut rows: Vec<(String, String, Item)> = Vec::new();
    let mut start_key: Option<Item> = None;
    loop {
        let request = client
            .query()
            .table_name(table)
            .index_name(index_name)
            .expression_attribute_names("#h", hash)
            .expression_attribute_values(":h", s(&hash_value))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start_key.take());
        let request = match &resume {
            Some((sort, _)) => request
                .key_condition_expression("#h = :h AND #r <= :k")
                .expression_attribute_names("#r", range)
                .expression_attribute_values(":k", s(sort)),
            None => request.key_condition_expression("#h = :h"),
        };
        let output = request
            .send()
            .await
            .map_err(|err| sdk_error("Query", err))?;
        for item in output.items.unwrap_or_default() {
            let sort = get_s(&item, range, what)?.to_owned();
            let id = get_s(&item, "orderId", what)?.to_owned();
            if resume
                .as_ref()
                .is_some_and(|(after_sort, after_id)| sort == *after_sort && id >= *after_id)
            {
                continue; // on an earlier page
            }
            rows.push((sort, id, item));
        }
        start_key = output.last_evaluated_key.filter(|key| !key.is_empty());
        let page_settled = rows.len() > limit && rows[limit].0 != rows[limit - 1].0;
        if start_key.is_none() || page_settled {
            break;
        }
    }
    rows.sort_by(|a, b| (&b.0, &b.1).cmp(&(&a.0, &a.1)));
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = match rows.last() {
        Some((sort, id, _)) if more => Some(page_key(hash, &hash_value, range, sort, id)?),
        _ => None,
    };
    let items = rows
        .into_iter()
        .map(|(_, _, item)| decode_view(item))
        .collect::<Result<_, _>>()?;
    Ok(Page { items, next })
}

/// A listing's page key: the last item's table key and its index key, in `LastEvaluatedKey` form
/// (`{"orderId": {"S": ..}, "customerId": {"S": ..}, "createdAt": {"S": ..}}`).
#[derive(Debug, Serialize, Deserialize)]
struct ListingKey {
    #[serde(rename = "orderId")]
    order_id: StringValue,
    /// The index's partition and sort key attributes, by name.
    #[serde(flatten)]
    index: BTreeMap<String, StringValue>,
}

/// A string attribute as DynamoDB's JSON types it: `{"S": ".."}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StringValue {
    #[serde(rename = "S")]
    s: String,
}

/// The page key after the item (`sort`, `order_id`) of the listing on index (`hash` =
/// `hash_value`, `range`).
fn page_key(
    hash: &str,
    hash_value: &str,
    range: &str,
    sort: &str,
    order_id: &str,
) -> Result<PageKey, StoreError> {
    let string = |value: &str| StringValue {
        s: value.to_owned(),
    };
    let key = ListingKey {
        order_id: string(order_id),
        index: BTreeMap::from([
            (hash.to_owned(), string(hash_value)),
            (range.to_owned(), string(sort)),
        ]),
    };
    serde_json::to_value(key).map(PageKey).map_err(internal)
}

/// The inverse of [`page_key`], for this listing only: the (sort key, `orderId`) to resume
/// after. The key must hold exactly the attributes of the index's key and the table's key, all
/// strings, with the listing's own partition value. Anything else is a bug (the HTTP layer
/// signs cursors, so clients cannot make one up): Internal.
fn resume_after(
    key: &PageKey,
    hash: &str,
    hash_value: &str,
    range: &str,
) -> Result<(String, String), StoreError> {
    let malformed = |why: &dyn std::fmt::Display| {
        internal(format_args!("malformed page key ({why}): {}", key.0))
    };
    let ListingKey {
        order_id,
        mut index,
    } = ListingKey::deserialize(&key.0).map_err(|err| malformed(&err))?;
    let (Some(partition), Some(sort), true) =
        (index.remove(hash), index.remove(range), index.is_empty())
    else {
        return Err(malformed(&"not this listing's key attributes"));
    };
    if partition.s != hash_value {
        return Err(malformed(&"it belongs to another listing"));
    }
    Ok((sort.s, order_id.s))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn waves_hold_each_order_once_in_input_order() {
        let put = |order: OrderId| ConditionalPut {
            view: crate::contract::view(order, "c-1", orders_domain::OrderStatus::Pending, 1, 1, 1),
            expected_version: None,
        };
        let orders: Vec<OrderId> = (0..60)
            .map(|_| OrderId::from_uuid(uuid::Uuid::now_v7()))
            .collect();
        let mut puts: Vec<ConditionalPut> = orders.iter().map(|&o| put(o)).collect();
        puts.insert(10, put(orders[3])); // the same order again
        puts.push(put(orders[40])); // and another, in the second wave
        let cut = waves(&puts);
        let sizes: Vec<usize> = cut.iter().map(|w| w.len()).collect();
        assert_eq!(sizes, [10, 51, 1]);
        let flat: Vec<OrderId> = cut
            .iter()
            .flat_map(|w| w.iter().map(|p| p.view.order_id))
            .collect();
        let input: Vec<OrderId> = puts.iter().map(|p| p.view.order_id).collect();
        assert_eq!(flat, input);
        assert_eq!(waves(&puts[..60]).len(), 2);
        assert!(waves(&[]).is_empty());
    }

    #[test]
    fn page_keys_round_trip_and_malformed_ones_are_internal() {
        let created = "2026-01-01T00:00:00.000Z";
        let key = page_key("customerId", "c-1", "createdAt", created, "0190").unwrap();
        assert_eq!(key.0["customerId"], json!({"S": "c-1"}));
        assert_eq!(
            key.0,
            json!({"orderId": {"S": "0190"}, "customerId": {"S": "c-1"}, "createdAt": {"S": created}}),
            "the page key is in LastEvaluatedKey form"
        );
        assert_eq!(
            resume_after(&key, "customerId", "c-1", "createdAt").unwrap(),
            (created.to_owned(), "0190".to_owned())
        );
        let bad = [
            json!("nope"),
            json!({"orderId": {"S": "0190"}}),
            json!({"orderId": {"S": "0190"}, "customerId": {"S": "c-1"}, "createdAt": {"B": "AA=="}}),
            json!({"orderId": {"S": "0190"}, "customerId": {"S": "c-1"}, "createdAt": "plain"}),
            json!({"orderId": {"S": "0190"}, "customerId": {"S": "c-1"}, "createdAt": {"S": "x", "N": "1"}}),
            json!({"orderId": {"S": "0190"}, "customerId": {"S": "c-1"}, "updatedAt": {"S": "x"}}),
        ];
        for bad in bad {
            let result = resume_after(&PageKey(bad.clone()), "customerId", "c-1", "createdAt");
            assert!(
                matches!(result, Err(StoreError::Internal(_))),
                "{bad}: {result:?}"
            );
        }
        let other_customer = resume_after(&key, "customerId", "c-2", "createdAt");
        assert!(matches!(other_customer, Err(StoreError::Internal(_))));
    }
}
