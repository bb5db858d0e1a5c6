//! What DynamoDB says of a table (`DescribeTable`), and the waits until a table, or an index,
//! is ACTIVE: one poll loop, paced by [`RetryPolicy::TABLE_ACTIVE`] or
//! [`RetryPolicy::INDEX_ACTIVE`] and ended by a deadline.
//!
//! Not the SDK's `wait_until_table_exists` waiter: its pace is fixed in the generated code at
//! 20 s to 120 s between polls, where a new table on AWS is ACTIVE within seconds (at once on
//! DynamoDB Local), so each table, stream or index that `orders tables create` waits for would
//! take 20 s or more; and it matches `Table.TableStatus` only, while a new table's wait also
//! needs its GSIs' `IndexStatus`. The SDK has no waiter for a GSI or for TTL; TTL is not waited
//! for (ENABLING is enough: it can take an hour on AWS, and nothing here needs it done).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{IndexStatus, TableDescription, TableStatus as SdkTableStatus};

use crate::StoreError;
use crate::dynamodb::error::sdk_error;
use crate::retry::RetryPolicy;

/// How long to wait for a table (or a new table's indexes) to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long to wait for a GSI added to an existing table before reporting it as still CREATING.
const INDEX_WAIT: Duration = Duration::from_secs(30);

/// The table's description, or `None` if there is no such table.
pub(super) async fn describe(
    client: &Client,
    name: &str,
) -> Result<Option<TableDescription>, StoreError> {
    match client.describe_table().table_name(name).send().await {
        Ok(output) => Ok(output.table),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(err) => Err(sdk_error("DescribeTable", err)),
    }
}

/// Waits until the table is ACTIVE, and all its GSIs too if `with_indexes`.
pub(super) async fn wait_active(
    client: &Client,
    name: &str,
    with_indexes: bool,
) -> Result<TableDescription, StoreError> {
    let active = |table: &TableDescription| {
        table.table_status() == Some(&SdkTableStatus::Active)
            && (!with_indexes
                || table
                    .global_secondary_indexes()
                    .iter()
                    .all(|index| index.index_status() == Some(&IndexStatus::Active)))
    };
    poll_until(
        client,
        name,
        RetryPolicy::TABLE_ACTIVE,
        ACTIVE_TIMEOUT,
        active,
    )
    .await?
    .ok_or_else(|| StoreError::Unavailable {
        reason: format!("table {name} did not become ACTIVE in {ACTIVE_TIMEOUT:?}"),
        retry_after: Duration::from_secs(30),
    })
}

/// Whether the GSI `index` becomes ACTIVE within [`INDEX_WAIT`]. An index added to an
/// existing table is backfilled in the background, which takes minutes on AWS (and DynamoDB
/// Local leaves it CREATING for ever), so `orders tables create` does not wait for it to the
/// end.
pub(super) async fn index_active_soon(
    client: &Client,
    name: &str,
    index: &str,
) -> Result<bool, StoreError> {
    let active = |table: &TableDescription| {
        table.global_secondary_indexes().iter().any(|gsi| {
            gsi.index_name() == Some(index) && gsi.index_status() == Some(&IndexStatus::Active)
        })
    };
    let found = poll_until(client, name, RetryPolicy::INDEX_ACTIVE, INDEX_WAIT, active).await?;
    Ok(found.is_some())
}

/// Describes the table until `ready` holds of it, pausing as `pace` says between tries;
/// `None` once `deadline` has passed without it.
async fn poll_until(
    client: &Client,
    name: &str,
    pace: RetryPolicy,
    deadline: Duration,
    ready: impl Fn(&TableDescription) -> bool,
) -> Result<Option<TableDescription>, StoreError> {
    let started = Instant::now();
    let mut retry = 0u32;
    loop {
        if let Some(table) = describe(client, name).await? {
            if ready(&table) {
                return Ok(Some(table));
            }
            tracing::debug!(
                table = %name,
                status = ?table.table_status(),
                indexes = ?table
                    .global_secondary_indexes()
                    .iter()
                    .map(|index| (index.index_name(), index.index_status(), index.backfilling()))
                    .collect::<Vec<_>>(),
                "waiting for the table or an index to become ACTIVE"
            );
        }
        if started.elapsed() >= deadline {
            return Ok(None);
        }
        retry = retry.saturating_add(1);
        // One process polls its own table: no jitter, the pauses as before issue 14.
        tokio::time::sleep(pace.ceiling(retry)).await;
    }
}
