//! Creates the three tables of DESIGN §3, idempotently.

use std::fmt;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableDescription,
    TableStatus as SdkTableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::DynamoTables;
use super::error::{internal, sdk_error};
use super::read_model::{BY_CUSTOMER, BY_STATUS};
use crate::StoreError;

/// The idempotency table's TTL attribute (epoch seconds).
pub(super) const TTL_ATTRIBUTE: &str = "expiresAt";
/// How long to wait for a table (or a new index) to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long to wait for a GSI added to an existing table before reporting it as still CREATING.
const INDEX_WAIT: Duration = Duration::from_secs(30);

/// What [`create_tables`] did with one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStatus {
    pub name: String,
    pub outcome: TableOutcome,
    /// What was missing on a table that already existed and has been added (e.g. "TTL on
    /// expiresAt", "GSI byStatus"). Empty for a table created now.
    pub added: Vec<String>,
    /// What could not be set up but does not stop the service (point-in-time recovery on an
    /// emulator that lacks it, a stream with another view type...). Also logged.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOutcome {
    Created,
    AlreadyExisted,
}

impl fmt::Display for TableStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match self.outcome {
            TableOutcome::Created => "created",
            TableOutcome::AlreadyExisted => "already existed",
        };
        write!(f, "{}: {outcome}", self.name)?;
        if !self.added.is_empty() {
            write!(f, "; added {}", self.added.join(", "))?;
        }
        for warning in &self.warnings {
            write!(f, "; warning: {warning}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Events,
    Orders,
    Idempotency,
}

/// Creates the three tables if missing, all PAY_PER_REQUEST, and waits until they are ACTIVE:
/// - events: key (`orderId` S, `version` N), stream `NEW_IMAGE`, point-in-time recovery
///   (attempted: if it cannot be enabled, e.g. on DynamoDB Local, it is a warning);
/// - orders: key `orderId`, GSIs `byCustomer` (`customerId`, `createdAt`) and `byStatus`
///   (`status`, `updatedAt`), projecting ALL;
/// - idempotency: key `idempotencyKey`, TTL on `expiresAt`.
///
/// Idempotent: an existing table is left alone, except that missing parts (the stream, a GSI,
/// TTL, PITR) are added, which [`TableStatus::added`] reports.
pub async fn create_tables(
    client: &Client,
    tables: &DynamoTables,
) -> Result<Vec<TableStatus>, StoreError> {
    let mut statuses = Vec::with_capacity(3);
    for (name, kind) in [
        (&tables.events, Kind::Events),
        (&tables.orders, Kind::Orders),
        (&tables.idempotency, Kind::Idempotency),
    ] {
        let status = ensure_table(client, name, kind).await?;
        tracing::info!(table = %name, "{status}");
        statuses.push(status);
    }
    Ok(statuses)
}

/// Creates a read-model table (key `orderId`, both GSIs) named `name` if it is missing, e.g. a
/// shadow that `orders replay --into` fills, and waits until it is ACTIVE.
pub async fn create_read_model_table(
    client: &Client,
    name: &str,
) -> Result<TableStatus, StoreError> {
    let status = ensure_table(client, name, Kind::Orders).await?;
    tracing::info!(table = %name, "{status}");
    Ok(status)
}

async fn ensure_table(client: &Client, name: &str, kind: Kind) -> Result<TableStatus, StoreError> {
    let outcome = if describe(client, name).await?.is_some() {
        TableOutcome::AlreadyExisted
    } else {
        create(client, name, kind).await?
    };
    let mut status = TableStatus {
        name: name.to_owned(),
        outcome,
        added: Vec::new(),
        warnings: Vec::new(),
    };
    // Indexes too only for a new table: they are born with it. An index added to an existing
    // table is backfilled in the background (see `ensure_indexes`).
    let table = wait_active(client, name, outcome == TableOutcome::Created).await?;
    match kind {
        Kind::Events => {
            ensure_stream(client, &table, &mut status).await?;
            ensure_pitr(client, name, &mut status).await;
        }
        Kind::Orders => ensure_indexes(client, &table, &mut status).await?,
        Kind::Idempotency => ensure_ttl(client, name, &mut status).await?,
    }
    Ok(status)
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(internal)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(internal)
}

fn stream() -> Result<StreamSpecification, StoreError> {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewImage)
        .build()
        .map_err(internal)
}

/// The orders table's GSIs: name, partition key, sort key.
const INDEXES: [(&str, &str, &str); 2] = [
    (BY_CUSTOMER, "customerId", "createdAt"),
    (BY_STATUS, "status", "updatedAt"),
];

fn index_keys(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, StoreError> {
    Ok(vec![key(hash, KeyType::Hash)?, key(range, KeyType::Range)?])
}

fn all() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::All)
        .build()
}

fn orders_attributes() -> Result<Vec<AttributeDefinition>, StoreError> {
    ["orderId", "customerId", "createdAt", "status", "updatedAt"]
        .into_iter()
        .map(|name| attribute(name, ScalarAttributeType::S))
        .collect()
}

/// Whether the table `name` exists (in any status).
pub async fn table_exists(client: &Client, name: &str) -> Result<bool, StoreError> {
    Ok(describe(client, name).await?.is_some())
}

async fn describe(client: &Client, name: &str) -> Result<Option<TableDescription>, StoreError> {
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

async fn create(client: &Client, name: &str, kind: Kind) -> Result<TableOutcome, StoreError> {
    let request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    let request = match kind {
        Kind::Events => request
            .attribute_definitions(attribute("orderId", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("version", ScalarAttributeType::N)?)
            .key_schema(key("orderId", KeyType::Hash)?)
            .key_schema(key("version", KeyType::Range)?)
            .stream_specification(stream()?),
        Kind::Orders => {
            let mut request = request
                .set_attribute_definitions(Some(orders_attributes()?))
                .key_schema(key("orderId", KeyType::Hash)?);
            for (index, hash, range) in INDEXES {
                request = request.global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index)
                        .set_key_schema(Some(index_keys(hash, range)?))
                        .projection(all())
                        .build()
                        .map_err(internal)?,
                );
            }
            request
        }
        Kind::Idempotency => request
            .attribute_definitions(attribute("idempotencyKey", ScalarAttributeType::S)?)
            .key_schema(key("idempotencyKey", KeyType::Hash)?),
    };
    match request.send().await {
        Ok(_) => Ok(TableOutcome::Created),
        // Another process created it between our DescribeTable and CreateTable.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(TableOutcome::AlreadyExisted)
        }
        Err(err) => Err(sdk_error("CreateTable", err)),
    }
}

/// Polls until the table is ACTIVE, and all its GSIs too if `with_indexes`.
async fn wait_active(
    client: &Client,
    name: &str,
    with_indexes: bool,
) -> Result<TableDescription, StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        if let Some(table) = describe(client, name).await? {
            let table_active = table.table_status() == Some(&SdkTableStatus::Active);
            let indexes_active = !with_indexes
                || table
                    .global_secondary_indexes()
                    .iter()
                    .all(|index| index.index_status() == Some(&IndexStatus::Active));
            if table_active && indexes_active {
                return Ok(table);
            }
            tracing::debug!(
                table = %name,
                status = ?table.table_status(),
                indexes = ?table
                    .global_secondary_indexes()
                    .iter()
                    .map(|index| (index.index_name(), index.index_status(), index.backfilling()))
                    .collect::<Vec<_>>(),
                "waiting for the table to become ACTIVE"
            );
        }
        if started.elapsed() > ACTIVE_TIMEOUT {
            return Err(StoreError::Unavailable {
                reason: format!("table {name} did not become ACTIVE in {ACTIVE_TIMEOUT:?}"),
                retry_after: Duration::from_secs(30),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Whether the GSI becomes ACTIVE within `grace`. An index added to an existing table is
/// backfilled in the background, which takes minutes on AWS (and DynamoDB Local leaves it
/// CREATING for ever), so `create_tables` does not wait for it to the end.
async fn index_active_within(
    client: &Client,
    name: &str,
    index: &str,
    grace: Duration,
) -> Result<bool, StoreError> {
    let started = Instant::now();
    loop {
        let active = describe(client, name).await?.is_some_and(|table| {
            table.global_secondary_indexes().iter().any(|gsi| {
                gsi.index_name() == Some(index) && gsi.index_status() == Some(&IndexStatus::Active)
            })
        });
        if active || started.elapsed() >= grace {
            return Ok(active);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn note_added(status: &mut TableStatus, what: String) {
    if status.outcome == TableOutcome::AlreadyExisted {
        status.added.push(what);
    }
}

fn warn(status: &mut TableStatus, warning: String) {
    tracing::warn!(table = %status.name, "{warning}");
    status.warnings.push(warning);
}

async fn ensure_stream(
    client: &Client,
    table: &TableDescription,
    status: &mut TableStatus,
) -> Result<(), StoreError> {
    let current = table.stream_specification();
    match current {
        Some(spec) if spec.stream_enabled() => {
            if spec.stream_view_type() != Some(&StreamViewType::NewImage) {
                warn(
                    status,
                    format!(
                        "the stream's view type is {:?}, not NEW_IMAGE; the consumers only need \
                         the new image, so it is left as it is",
                        spec.stream_view_type()
                    ),
                );
            }
        }
        _ => {
            client
                .update_table()
                .table_name(&status.name)
                .stream_specification(stream()?)
                .send()
                .await
                .map_err(|err| sdk_error("UpdateTable", err))?;
            wait_active(client, &status.name, false).await?;
            note_added(status, "stream NEW_IMAGE".to_owned());
        }
    }
    Ok(())
}

/// Point-in-time recovery, attempted: a failure (DynamoDB Local does not have it; AWS may
/// refuse for a few minutes after creation) is a warning, not an error.
async fn ensure_pitr(client: &Client, name: &str, status: &mut TableStatus) {
    let enabled = client
        .describe_continuous_backups()
        .table_name(name)
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
        .table_name(name)
        .point_in_time_recovery_specification(spec)
        .send()
        .await
    {
        Ok(_) => note_added(status, "point-in-time recovery".to_owned()),
        Err(err) => warn(
            status,
            format!(
                "point-in-time recovery could not be enabled: {}",
                sdk_error("UpdateContinuousBackups", err)
            ),
        ),
    }
}

async fn ensure_indexes(
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
                warn(
                    status,
                    format!("GSI {index} has the key {keys:?}, not [{hash}, {range}]"),
                );
            }
            if existing.index_status() != Some(&IndexStatus::Active) {
                creating = Some(index);
            }
            continue;
        }
        if let Some(pending) = &creating {
            warn(
                status,
                format!(
                    "GSI {index} is not added yet: DynamoDB builds one index at a time per \
                     table; run this again once {pending} is ACTIVE"
                ),
            );
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
        if index_active_within(client, &status.name, index, INDEX_WAIT).await? {
            note_added(status, format!("GSI {index}"));
        } else {
            note_added(status, format!("GSI {index} (still CREATING)"));
            warn(
                status,
                format!("GSI {index} is still being built; listings on it work once it is ACTIVE"),
            );
            creating = Some(index);
        }
    }
    Ok(())
}

async fn ensure_ttl(
    client: &Client,
    name: &str,
    status: &mut TableStatus,
) -> Result<(), StoreError> {
    let current = client
        .describe_time_to_live()
        .table_name(name)
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
                warn(
                    status,
                    format!(
                        "TTL is on {attribute:?}, not {TTL_ATTRIBUTE}; records will not expire by TTL"
                    ),
                );
            }
            Ok(())
        }
        _ => {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(internal)?;
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|err| sdk_error("UpdateTimeToLive", err))?;
            note_added(status, format!("TTL on {TTL_ATTRIBUTE}"));
            Ok(())
        }
    }
}
