//! Items and their attributes: reading one item by its key, building `S` and `N` values,
//! reading them back out of stored items (an absent or mistyped attribute is corrupt data).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::error::sdk_error;
use crate::StoreError;

pub(super) type Item = HashMap<String, AttributeValue>;

/// The item of `table` at `key`, if any: one strongly consistent `GetItem`.
pub(super) async fn consistent_get(
    client: &Client,
    table: &str,
    key: Item,
) -> Result<Option<Item>, StoreError> {
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(|err| sdk_error("GetItem", err))?;
    Ok(output.item)
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A string attribute of a stored item; absent or of another type is corrupt data.
pub(super) fn get_s<'a>(item: &'a Item, name: &str, what: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        other => Err(StoreError::Corrupt(format!(
            "{what}: attribute {name} is not a string: {other:?}"
        ))),
    }
}

/// A numeric attribute of a stored item, parsed.
pub(super) fn get_n<T: std::str::FromStr>(
    item: &Item,
    name: &str,
    what: &str,
) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| {
            StoreError::Corrupt(format!("{what}: attribute {name} is out of range: {value}"))
        }),
        other => Err(StoreError::Corrupt(format!(
            "{what}: attribute {name} is not a number: {other:?}"
        ))),
    }
}
