//! The tables' definitions: keys, the orders table's GSIs, the events stream, the idempotency
//! TTL attribute, and the `CreateTable` request that makes a table whole.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};

use super::TableOutcome;
use crate::StoreError;
use crate::dynamodb::error::{internal, sdk_error};
use crate::dynamodb::read_model::{BY_CUSTOMER, BY_STATUS};

/// The idempotency table's TTL attribute (epoch seconds).
pub(super) const TTL_ATTRIBUTE: &str = "expiresAt";

/// The orders table's GSIs: name, partition key, sort key.
pub(super) const INDEXES: [(&str, &str, &str); 2] = [
    (BY_CUSTOMER, "customerId", "createdAt"),
    (BY_STATUS, "status", "updatedAt"),
];

/// Which of the three tables.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Events,
    Orders,
    Idempotency,
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

/// The events table's stream: the new image of each item.
pub(super) fn stream() -> Result<StreamSpecification, StoreError> {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewImage)
        .build()
        .map_err(internal)
}

/// A GSI's key schema.
pub(super) fn index_keys(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, StoreError> {
    Ok(vec![key(hash, KeyType::Hash)?, key(range, KeyType::Range)?])
}

/// A GSI's projection: every attribute.
pub(super) fn all() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::All)
        .build()
}

/// The orders table's key attributes, its GSIs' included.
pub(super) fn orders_attributes() -> Result<Vec<AttributeDefinition>, StoreError> {
    ["orderId", "customerId", "createdAt", "status", "updatedAt"]
        .into_iter()
        .map(|name| attribute(name, ScalarAttributeType::S))
        .collect()
}

/// `CreateTable` for a whole table of `kind` (PAY_PER_REQUEST; TTL and point-in-time
/// recovery are set by `ensure.rs`, as `CreateTable` does not take them).
pub(super) async fn create(
    client: &Client,
    name: &str,
    kind: Kind,
) -> Result<TableOutcome, StoreError> {
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
