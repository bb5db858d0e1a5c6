//! The batched forms: `BatchGetItem` reads, and conditional writes in transactions.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem};
use futures::{StreamExt, TryStreamExt};
use orders_domain::OrderId;

use crate::dynamodb::attributes::Item;
use crate::dynamodb::error::{
    CONTENDED_RETRY_AFTER, THROTTLED_RETRY_AFTER, internal, is_throttling, sdk_error,
};
use crate::dynamodb::events::MAX_TRANSACTION_ATTEMPTS;
use crate::retry::RetryPolicy;
use crate::{ConditionalPut, OrderView, PutOutcome, StoreError};

use super::{decode_view, key, put, version_condition, view_item};

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

/// `BatchGetItem` in chunks of 100 keys, consistent reads, retrying unprocessed keys.
pub(in crate::dynamodb) async fn get_many(
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
pub(in crate::dynamodb) async fn batch_get(
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
pub(in crate::dynamodb) async fn put_many(
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

#[cfg(test)]
mod tests {

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
}
