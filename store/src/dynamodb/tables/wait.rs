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
    let pending = |table: &TableDescription| {
        let mut pending = Vec::new();
        if table.table_status() != Some(&SdkTableStatus::Active) {
            pending.push(format!(
                "table {name} ({})",
                status_text(table.table_status())
            ));
        }
        if with_indexes {
            pending.extend(
                table
                    .global_secondary_indexes()
                    .iter()
                    .filter(|index| index.index_status() != Some(&IndexStatus::Active))
                    .map(|index| index_text(name, index)),
            );
        }
        pending
    };
    poll_until(
        client,
        name,
        RetryPolicy::TABLE_ACTIVE,
        ACTIVE_TIMEOUT,
        pending,
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
    let pending = |table: &TableDescription| {
        let gsi = table
            .global_secondary_indexes()
            .iter()
            .find(|gsi| gsi.index_name() == Some(index));
        match gsi {
            Some(gsi) if gsi.index_status() == Some(&IndexStatus::Active) => Vec::new(),
            Some(gsi) => vec![index_text(name, gsi)],
            None => vec![format!("index {index} of {name} (not listed yet)")],
        }
    };
    let found = poll_until(client, name, RetryPolicy::INDEX_ACTIVE, INDEX_WAIT, pending).await?;
    Ok(found.is_some())
}

/// How often a wait that goes on says so again.
const WAIT_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Describes the table until `pending` (what is not ACTIVE yet, in words) is empty, pausing as
/// `pace` says between tries; `None` once `deadline` has passed without it.
///
/// A wait says what it waits for when it begins, every [`WAIT_REPORT_EVERY`] after, and how
/// long it took when it ends (at info, which `orders tables create` shows): on AWS a new
/// table, and more so an index on a table with data, can take minutes. A table that is ready
/// at the first look (DynamoDB Local, a run that finds everything in place) says nothing.
async fn poll_until(
    client: &Client,
    name: &str,
    pace: RetryPolicy,
    deadline: Duration,
    pending: impl Fn(&TableDescription) -> Vec<String>,
) -> Result<Option<TableDescription>, StoreError> {
    let started = Instant::now();
    let mut reported: Option<Instant> = None;
    let mut retry = 0u32;
    loop {
        let waiting_for = match describe(client, name).await? {
            Some(table) => {
                let waiting_for = pending(&table);
                if waiting_for.is_empty() {
                    if reported.is_some() {
                        tracing::info!(table = %name, waited_s = started.elapsed().as_secs(), "ACTIVE");
                    }
                    return Ok(Some(table));
                }
                waiting_for.join(", ")
            }
            None => format!("table {name} (not found yet)"),
        };
        if reported.is_none_or(|at| at.elapsed() >= WAIT_REPORT_EVERY) {
            tracing::info!(
                table = %name,
                waited_s = started.elapsed().as_secs(),
                "waiting for {waiting_for} to become ACTIVE"
            );
            reported = Some(Instant::now());
        }
        if started.elapsed() >= deadline {
            return Ok(None);
        }
        retry = retry.saturating_add(1);
        // One process polls its own table: no jitter, the pauses as before issue 14.
        tokio::time::sleep(pace.ceiling(retry)).await;
    }
}

fn status_text(status: Option<&SdkTableStatus>) -> String {
    status.map_or_else(
        || "no status".to_owned(),
        |status| status.as_str().to_owned(),
    )
}

/// `index byStatus of orders (CREATING, backfilling)`.
fn index_text(
    table: &str,
    index: &aws_sdk_dynamodb::types::GlobalSecondaryIndexDescription,
) -> String {
    let status = index
        .index_status()
        .map_or("no status", |status| status.as_str());
    let backfilling = if index.backfilling() == Some(true) {
        ", backfilling"
    } else {
        ""
    };
    format!(
        "index {} of {table} ({status}{backfilling})",
        index.index_name().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::GlobalSecondaryIndexDescription;

    use super::*;

    #[test]
    fn an_index_says_its_status_and_whether_it_is_backfilling() {
        let building = GlobalSecondaryIndexDescription::builder()
            .index_name("byStatus")
            .index_status(IndexStatus::Creating)
            .backfilling(true)
            .build();
        assert_eq!(
            index_text("orders", &building),
            "index byStatus of orders (CREATING, backfilling)"
        );
        let updating = GlobalSecondaryIndexDescription::builder()
            .index_name("byCustomer")
            .index_status(IndexStatus::Updating)
            .build();
        assert_eq!(
            index_text("orders", &updating),
            "index byCustomer of orders (UPDATING)"
        );
        assert_eq!(status_text(Some(&SdkTableStatus::Creating)), "CREATING");
    }
}
