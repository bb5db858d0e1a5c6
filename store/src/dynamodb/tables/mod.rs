//! Creates the three tables of DESIGN §3, idempotently.
//!
//! Its files: this one (what `orders tables create` does with each table, and its report),
//! `schema.rs` (the tables' keys, indexes, stream and TTL, and the `CreateTable` request),
//! `ensure.rs` (what is added to a table that exists but lacks a part) and `wait.rs`
//! (`DescribeTable`, and the waits until a table or an index is ACTIVE).

mod ensure;
mod schema;
mod wait;

use std::fmt;

use aws_sdk_dynamodb::Client;

use super::DynamoTables;
use crate::StoreError;
use schema::Kind;
use wait::{describe, wait_active};

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

impl TableStatus {
    /// Records a part added to a table that already existed (a new table is born whole).
    fn note_added(&mut self, what: String) {
        if self.outcome == TableOutcome::AlreadyExisted {
            self.added.push(what);
        }
    }

    /// Records, and logs, what could not be set up.
    fn warn(&mut self, warning: String) {
        tracing::warn!(table = %self.name, "{warning}");
        self.warnings.push(warning);
    }
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
        statuses.push(ensure_table(client, name, kind).await?);
    }
    Ok(statuses)
}

/// Creates a read-model table (key `orderId`, both GSIs) named `name` if it is missing, e.g. a
/// shadow that `orders replay --into` fills, and waits until it is ACTIVE.
pub async fn create_read_model_table(
    client: &Client,
    name: &str,
) -> Result<TableStatus, StoreError> {
    ensure_table(client, name, Kind::Orders).await
}

/// Whether the table `name` exists (in any status).
pub async fn table_exists(client: &Client, name: &str) -> Result<bool, StoreError> {
    Ok(describe(client, name).await?.is_some())
}

/// Creates the table if it is missing, waits until it is ACTIVE, adds what it lacks, and logs
/// what it did.
async fn ensure_table(client: &Client, name: &str, kind: Kind) -> Result<TableStatus, StoreError> {
    let outcome = if describe(client, name).await?.is_some() {
        TableOutcome::AlreadyExisted
    } else {
        schema::create(client, name, kind).await?
    };
    let mut status = TableStatus {
        name: name.to_owned(),
        outcome,
        added: Vec::new(),
        warnings: Vec::new(),
    };
    // Indexes too only for a new table: they are born with it. An index added to an existing
    // table is backfilled in the background (see `ensure::indexes`).
    let table = wait_active(client, name, outcome == TableOutcome::Created).await?;
    match kind {
        Kind::Events => {
            ensure::stream(client, &table, &mut status).await?;
            ensure::pitr(client, &mut status).await;
        }
        Kind::Orders => ensure::indexes(client, &table, &mut status).await?,
        Kind::Idempotency => ensure::ttl(client, &mut status).await?,
    }
    tracing::info!(table = %name, "{status}");
    Ok(status)
}
