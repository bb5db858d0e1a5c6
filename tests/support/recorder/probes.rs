//! What the cost model (`support/capacity.rs`) needs beyond the request itself, gathered by the
//! recorder around each DynamoDB data-plane request.
//!
//! AWS bills a request by things the request does not show: a `PutItem` by the larger of the
//! item it writes and the item it replaces, a read by the whole items it touches even when a
//! `ProjectionExpression` returns one attribute, an index by whether the write changed its key.
//! So the recorder, for each such request:
//! - describes each table it names once (its key and its indexes), → `tables`;
//! - reads, before a write, each item the write will replace, delete or check, → `before`;
//! - asks DynamoDB Local for `ReturnConsumedCapacity: INDEXES`, for the cross-check, and keeps
//!   the response, → `response`;
//! - repeats a read that has a projection without it, → `unprojected`.
//!
//! The extra reads go straight to the emulator, unrecorded, with the caller's own headers
//! (DynamoDB Local ignores the signature). They see the same state as the request because the
//! scenarios that record run one request at a time.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use serde_json::{Map, Value, json};

use super::send;

/// The DynamoDB operations that read or write items, and so are billed in request units.
pub const DATA_PLANE: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
];

/// One table's key and global secondary indexes, as `DescribeTable` gives them.
pub type Schemas = BTreeMap<String, Value>;

/// The emulator a probe talks to, with the headers of the request being probed.
pub struct Emulator<'a> {
    pub http: &'a reqwest::Client,
    pub base: &'a str,
    pub headers: &'a HeaderMap,
}

impl Emulator<'_> {
    /// Sends `operation` with `body` and returns its JSON answer, or `{"probeError": why}` when
    /// it fails: the cost model refuses to price a request whose probe failed.
    async fn call(&self, operation: &str, body: &Value) -> Value {
        let mut headers = self.headers.clone();
        let target = format!("DynamoDB_20120810.{operation}");
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(&target).expect("a header value"),
        );
        let uri: Uri = "/".parse().expect("a path");
        let body = Bytes::from(body.to_string());
        match send(self.http, self.base, &Method::POST, &uri, &headers, &body).await {
            Ok((status, _, bytes)) if status.is_success() => serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| json!({ "probeError": format!("{operation}: {e}") })),
            Ok((status, _, bytes)) => json!({
                "probeError": format!("{operation}: {status}: {}", String::from_utf8_lossy(&bytes)),
            }),
            Err(error) => json!({ "probeError": format!("{operation}: {error}") }),
        }
    }

    /// Each table `request` names, described once per recorder (`cache`).
    pub async fn tables(&self, request: &Value, cache: &mut Schemas) -> Schemas {
        let mut out = Schemas::new();
        for table in table_names(request) {
            if let Some(known) = cache.get(&table) {
                out.insert(table, known.clone());
                continue;
            }
            let described = self
                .call("DescribeTable", &json!({ "TableName": table }))
                .await;
            if described.get("probeError").is_some() {
                // Not cached: the table may exist by the next request.
                out.insert(table, described);
                continue;
            }
            let table_json = &described["Table"];
            let schema = json!({
                "KeySchema": table_json["KeySchema"],
                "GlobalSecondaryIndexes": table_json["GlobalSecondaryIndexes"],
            });
            cache.insert(table.clone(), schema.clone());
            out.insert(table, schema);
        }
        out
    }

    /// The items a write request will replace, delete or check, read before it runs:
    /// `[{"table", "key", "item"}]`, `item` null where there is none.
    pub async fn before(&self, operation: &str, request: &Value, tables: &Schemas) -> Value {
        let mut found = Vec::new();
        for (table, key) in written_keys(operation, request, tables) {
            let got = self
                .call(
                    "GetItem",
                    &json!({ "TableName": table, "Key": key, "ConsistentRead": true }),
                )
                .await;
            let mut entry = json!({ "table": table, "key": key, "item": got["Item"] });
            if let Some(error) = got.get("probeError") {
                entry["probeError"] = error.clone();
            }
            found.push(entry);
        }
        Value::Array(found)
    }

    /// A read that has a projection, repeated without it: what AWS bills it by.
    pub async fn unprojected(&self, operation: &str, request: &Value) -> Option<Value> {
        let mut request = request.clone();
        let mut projected = false;
        let mut strip = |object: &mut Map<String, Value>| {
            for field in ["ProjectionExpression", "AttributesToGet", "Select"] {
                projected |= object.remove(field).is_some();
            }
        };
        match operation {
            "GetItem" | "Query" | "Scan" => strip(request.as_object_mut()?),
            "BatchGetItem" => {
                for keys in request["RequestItems"].as_object_mut()?.values_mut() {
                    strip(keys.as_object_mut()?);
                }
            }
            _ => return None,
        }
        if !projected {
            return None;
        }
        // DynamoDB refuses a name no expression uses: drop those the projection used alone.
        if let Some(object) = request.as_object_mut() {
            drop_unused_names(object);
        }
        for keys in request["RequestItems"]
            .as_object_mut()
            .into_iter()
            .flat_map(|tables| tables.values_mut())
        {
            if let Some(object) = keys.as_object_mut() {
                drop_unused_names(object);
            }
        }
        Some(self.call(operation, &request).await)
    }
}

/// Removes the `ExpressionAttributeNames` that no expression left in `object` mentions.
fn drop_unused_names(object: &mut Map<String, Value>) {
    let expressions: Vec<String> = object
        .iter()
        .filter(|(field, _)| field.ends_with("Expression"))
        .filter_map(|(_, value)| value.as_str().map(str::to_owned))
        .collect();
    // A whole `#name` token: `#v` must not count as used where only `#vs` is.
    let uses = |expression: &str, name: &str| {
        expression.match_indices(name).any(|(at, _)| {
            !expression[at + name.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    };
    if let Some(Value::Object(names)) = object.get_mut("ExpressionAttributeNames") {
        names.retain(|name, _| expressions.iter().any(|e| uses(e, name)));
        if names.is_empty() {
            object.remove("ExpressionAttributeNames");
        }
    }
}

/// Asks for the capacity that DynamoDB Local counts, per table and index, unless the caller
/// already asked for some.
pub fn with_consumed_capacity(request: &Value) -> Option<Value> {
    let mut request = request.clone();
    let object = request.as_object_mut()?;
    if object
        .get("ReturnConsumedCapacity")
        .is_some_and(|asked| asked != "NONE")
    {
        return None;
    }
    object.insert("ReturnConsumedCapacity".into(), json!("INDEXES"));
    Some(request)
}

/// The tables a request names: `TableName`, the keys of `RequestItems`, each transaction member's.
fn table_names(request: &Value) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(name) = request["TableName"].as_str() {
        names.push(name.to_owned());
    }
    if let Some(items) = request["RequestItems"].as_object() {
        names.extend(items.keys().cloned());
    }
    for member in request["TransactItems"].as_array().into_iter().flatten() {
        for (_, action) in member.as_object().into_iter().flatten() {
            if let Some(name) = action["TableName"].as_str() {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The primary key of `item` in `table`, by the table's key schema.
pub fn key_of(item: &Value, schema: &Value) -> Value {
    let mut key = Map::new();
    for part in schema["KeySchema"].as_array().into_iter().flatten() {
        if let Some(name) = part["AttributeName"].as_str() {
            key.insert(name.to_owned(), item[name].clone());
        }
    }
    Value::Object(key)
}

/// `(table, key)` of every item a write request puts, deletes, updates or checks.
fn written_keys(operation: &str, request: &Value, tables: &Schemas) -> Vec<(String, Value)> {
    let schema_of = |table: &str| tables.get(table).cloned().unwrap_or(Value::Null);
    let one = |action: &Value, put: bool| -> Option<(String, Value)> {
        let table = action["TableName"].as_str()?.to_owned();
        let key = if put {
            key_of(&action["Item"], &schema_of(&table))
        } else {
            action["Key"].clone()
        };
        Some((table, key))
    };
    match operation {
        "PutItem" => one(request, true).into_iter().collect(),
        "DeleteItem" | "UpdateItem" => one(request, false).into_iter().collect(),
        "TransactWriteItems" => request["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|member| {
                let (kind, action) = member.as_object()?.iter().next()?;
                one(action, kind == "Put")
            })
            .collect(),
        "BatchWriteItem" => request["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(table, writes)| {
                let schema = schema_of(table);
                writes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(move |write| {
                        let key = match (&write["PutRequest"], &write["DeleteRequest"]) {
                            (Value::Object(put), _) => key_of(&put["Item"], &schema),
                            (_, Value::Object(delete)) => delete["Key"].clone(),
                            _ => return None,
                        };
                        Some((table.clone(), key))
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
        _ => Vec::new(),
    }
}
