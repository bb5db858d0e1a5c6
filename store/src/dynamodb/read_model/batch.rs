//! The batched forms: `BatchGetItem` reads, and many conditional `PutItem`s at once.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use futures::{StreamExt, TryStreamExt};
use orders_domain::OrderId;

use crate::dynamodb::attributes::Item;
use crate::dynamodb::error::{THROTTLED_RETRY_AFTER, internal, sdk_error};
use crate::retry::RetryPolicy;
use crate::{ConditionalPut, OrderView, PutOutcome, StoreError};

use super::{decode_view, key, put};

/// DynamoDB's limit on the keys of one `BatchGetItem`.
const BATCH_GET_KEYS: usize = 100;
/// Rounds of `BatchGetItem` for one chunk while DynamoDB leaves keys unprocessed (throttling).
const BATCH_GET_ATTEMPTS: u32 = RetryPolicy::BATCH_GET.max_attempts;
/// Orders of one `put_many` whose conditional `PutItem`s are in flight at once.
const ORDERS_IN_FLIGHT: usize = 25;

/// How a `BatchGetItem` reads: strongly consistent (the newest write, at 1 RRU per 4 KB item),
/// or eventually consistent (possibly a second or so behind, at half that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::dynamodb) enum Consistency {
    Strong,
    Eventual,
}

/// `BatchGetItem` in chunks of 100 keys, eventually consistent, retrying unprocessed keys.
///
/// Eventually consistent is safe here, at half a strong read's capacity: whoever acts on these
/// views (the projector's batch, the replay's) writes each on condition of the version read. A
/// stale read returns a view as it was before its newest write (or no view), so the condition
/// fails and the order is settled one at a time from a strongly consistent `get`: a stale read
/// costs a retry, never a wrong view. (A replay's mend at the same version escapes the condition
/// as it would after a strong read, which the mend can follow by a millisecond. A view that a
/// `--verify` finds in sync here was so a moment ago, as the scan's events were.)
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
    batch_get(client, table, keys, None, Consistency::Eventual)
        .await?
        .into_iter()
        .map(|item| decode_view(item).map(|view| (view.order_id, view)))
        .collect()
}

/// The items of `keys` (distinct) that exist: `BatchGetItem` in chunks of 100 keys, read as
/// `consistency` says, with only the `projection` attributes if given; unprocessed keys
/// (throttling) are retried with backoff a bounded number of times.
pub(in crate::dynamodb) async fn batch_get(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<&str>,
    consistency: Consistency,
) -> Result<Vec<Item>, StoreError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(BATCH_GET_KEYS) {
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(chunk.to_vec()))
            .set_projection_expression(projection.map(str::to_owned))
            .consistent_read(consistency == Consistency::Strong)
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

/// Each write a conditional `PutItem`, the writes of up to [`ORDERS_IN_FLIGHT`] orders in flight
/// at once; outcomes in input order.
///
/// Each write carries its own version condition and is judged alone
/// ([`PutOutcome::VersionMismatch`] when it fails), so nothing needs a batch's writes to land
/// together, and a `PutItem` of up to 1 KB costs 1 write unit where a transaction's item costs 2.
/// The SDK retries a throttled `PutItem`. One order's writes are made one after another, in input
/// order (a later one is usually conditional on an earlier one). The first failure ends the
/// batch; the writes already made stand (each is whole, and callers re-judge on retry).
pub(in crate::dynamodb) async fn put_many(
    client: &Client,
    table: &str,
    puts: &[ConditionalPut],
) -> Result<Vec<PutOutcome>, StoreError> {
    let mut outcomes = vec![None; puts.len()];
    let mut orders = futures::stream::iter(by_order(puts))
        .map(|indexes| async move {
            let mut settled = Vec::with_capacity(indexes.len());
            for i in indexes {
                let write = &puts[i];
                settled.push((
                    i,
                    put(client, table, &write.view, write.expected_version).await?,
                ));
            }
            Ok::<_, StoreError>(settled)
        })
        .buffer_unordered(ORDERS_IN_FLIGHT);
    while let Some(settled) = orders.try_next().await? {
        for (i, outcome) in settled {
            outcomes[i] = Some(outcome);
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every write belongs to exactly one order"))
        .collect())
}

/// The indexes of `puts`, one run per order (in order of first appearance), each in input order.
fn by_order(puts: &[ConditionalPut]) -> Vec<Vec<usize>> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut run_of: HashMap<OrderId, usize> = HashMap::new();
    for (i, write) in puts.iter().enumerate() {
        let run = *run_of.entry(write.view.order_id).or_insert_with(|| {
            runs.push(Vec::new());
            runs.len() - 1
        });
        runs[run].push(i);
    }
    runs
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn by_order_keeps_each_orders_writes_in_input_order() {
        let put = |order: OrderId| ConditionalPut {
            view: crate::contract::view(order, "c-1", orders_domain::OrderStatus::Pending, 1, 1, 1),
            expected_version: None,
        };
        let orders: Vec<OrderId> = (0..3)
            .map(|_| OrderId::from_uuid(uuid::Uuid::now_v7()))
            .collect();
        let puts: Vec<ConditionalPut> =
            [0, 1, 0, 2, 0, 1].iter().map(|&o| put(orders[o])).collect();
        assert_eq!(by_order(&puts), [vec![0, 2, 4], vec![1, 5], vec![3]]);
        assert!(by_order(&[]).is_empty());
    }
}
