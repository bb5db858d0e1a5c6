//! The GSI listings, newest first, and their page keys in `LastEvaluatedKey` form.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use crate::dynamodb::attributes::{Item, get_s, s};
use crate::dynamodb::error::{internal, sdk_error};
use crate::{ListFilter, ListQuery, Page, PageKey, StoreError};

use super::{BY_CUSTOMER, BY_STATUS, decode_view};

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
pub(in crate::dynamodb) async fn list(
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
