//! What is added to a table that exists but lacks a part: the events stream, point-in-time
//! recovery, an orders GSI, the idempotency TTL. Each is checked first, so a complete table
//! is left alone.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, IndexStatus,
    PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, StreamViewType, TableDescription,
    TimeToLiveSpecification, TimeToLiveStatus,
};

use super::TableStatus;
use super::schema::{self, INDEXES, TTL_ATTRIBUTE, all, index_keys, orders_attributes};
use super::wait::{index_active_soon, wait_active};
use crate::StoreError;
use crate::dynamodb::error::{internal, sdk_error};

/// The events table's stream, `NEW_IMAGE`: enabled if it is off; another view type is a
/// warning.
pub(super) async fn stream(
    client: &Client,
    table: &TableDescription,
    status: &mut TableStatus,
) -> Result<(), StoreError> {
    match table.stream_specification() {
        Some(spec) if spec.stream_enabled() => {
            if spec.stream_view_type() != Some(&StreamViewType::NewImage) {
                status.warn(format!(
                    "the stream's view type is {:?}, not NEW_IMAGE; the consumers only need \
                     the new image, so it is left as it is",
                    spec.stream_view_type()
                ));
            }
        }
        _ => {
            client
                .update_table()
                .table_name(&status.name)
                .stream_specification(schema::stream()?)
                .send()
                .await
                .map_err(|err| sdk_error("UpdateTable", err))?;
            wait_active(client, &status.name, false).await?;
            status.note_added("stream NEW_IMAGE".to_owned());
        }
    }
    Ok(())
}

/// Point-in-time recovery, attempted: a failure (DynamoDB Local does not have it; AWS may
/// refuse for a few minutes after creation) is a warning, not an error.
pub(super) async fn pitr(client: &Client, status: &mut TableStatus) {
    let enabled = client
        .describe_continuous_backups()
        .table_name(&status.name)
        .send()
        .await
        .ok()
        .and_then(|output| output.continuous_backups_description)
        .and_then(|backups| backups.point_in_time_recovery_description)
        .and_then(|pitr| pitr.point_in_time_recovery_status)
        == Some(PointInTimeRecoveryStatus::Enabled);
    if enabled {
        return;
    }
    let spec = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .expect("the flag is set");
    match client
        .update_continuous_backups()
        .table_name(&status.name)
        .point_in_time_recovery_specification(spec)
        .send()
        .await
    {
        Ok(_) => status.note_added("point-in-time recovery".to_owned()),
        Err(err) => status.warn(format!(
            "point-in-time recovery could not be enabled: {}",
            sdk_error("UpdateContinuousBackups", err)
        )),
    }
}

/// The orders table's GSIs: each missing one is added, one at a time (DynamoDB builds one
/// added index at a time per table); one with other keys is a warning.
pub(super) async fn indexes(
    client: &Client,
    table: &TableDescription,
    status: &mut TableStatus,
) -> Result<(), StoreError> {
    // An index still being built: DynamoDB refuses to start another on the same table.
    let mut creating = None;
    for (index, hash, range) in INDEXES {
        let existing = table
            .global_secondary_indexes()
            .iter()
            .find(|gsi| gsi.index_name() == Some(index));
        if let Some(existing) = existing {
            let keys: Vec<_> = existing
                .key_schema()
                .iter()
                .map(|k| k.attribute_name())
                .collect();
            if keys != [hash, range] {
                status.warn(format!(
                    "GSI {index} has the key {keys:?}, not [{hash}, {range}]"
                ));
            }
            if existing.index_status() != Some(&IndexStatus::Active) {
                creating = Some(index);
            }
            continue;
        }
        if let Some(pending) = &creating {
            status.warn(format!(
                "GSI {index} is not added yet: DynamoDB builds one index at a time per table; \
                 run this again once {pending} is ACTIVE"
            ));
            continue;
        }
        // One GSI per UpdateTable, and DynamoDB builds one at a time per table.
        client
            .update_table()
            .table_name(&status.name)
            .set_attribute_definitions(Some(orders_attributes()?))
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder()
                    .create(
                        CreateGlobalSecondaryIndexAction::builder()
                            .index_name(index)
                            .set_key_schema(Some(index_keys(hash, range)?))
                            .projection(all())
                            .build()
                            .map_err(internal)?,
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|err| sdk_error("UpdateTable", err))?;
        wait_active(client, &status.name, false).await?;
        if index_active_soon(client, &status.name, index).await? {
            status.note_added(format!("GSI {index}"));
        } else {
            status.note_added(format!("GSI {index} (still CREATING)"));
            status.warn(format!(
                "GSI {index} is still being built; listings on it work once it is ACTIVE"
            ));
            creating = Some(index);
        }
    }
    Ok(())
}

/// The idempotency table's TTL on [`TTL_ATTRIBUTE`]: enabled if it is off; TTL on another
/// attribute is a warning.
pub(super) async fn ttl(client: &Client, status: &mut TableStatus) -> Result<(), StoreError> {
    let current = client
        .describe_time_to_live()
        .table_name(&status.name)
        .send()
        .await
        .map_err(|err| sdk_error("DescribeTimeToLive", err))?
        .time_to_live_description;
    let (ttl_status, attribute) = current
        .map(|ttl| (ttl.time_to_live_status, ttl.attribute_name))
        .unwrap_or_default();
    match ttl_status {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
            if attribute.as_deref() != Some(TTL_ATTRIBUTE) {
                status.warn(format!(
                    "TTL is on {attribute:?}, not {TTL_ATTRIBUTE}; records will not expire by TTL"
                ));
            }
        }
        _ => {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(internal)?;
            client
                .update_time_to_live()
                .table_name(&status.name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|err| sdk_error("UpdateTimeToLive", err))?;
            status.note_added(format!("TTL on {TTL_ATTRIBUTE}"));
        }
    }
    Ok(())
}
