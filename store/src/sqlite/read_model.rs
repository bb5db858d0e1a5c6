//! The read model (`orders` table): conditional puts and keyset-paginated listings.

use orders_domain::OrderId;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::error::{SqlResultExt, to_sql_int};
use super::event_log::{decode_json, encode_json};
use crate::{ListFilter, ListQuery, OrderView, Page, PageKey, PutOutcome, StoreError};

const INSERT_IF_ABSENT: &str = "INSERT INTO orders \
     (order_id, customer_id, status, created_at, updated_at, version, view) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (order_id) DO NOTHING";
const UPDATE_AT_VERSION: &str = "UPDATE orders SET customer_id = ?2, status = ?3, \
     created_at = ?4, updated_at = ?5, version = ?6, view = ?7 \
     WHERE order_id = ?1 AND version = ?8";

pub(super) fn get(conn: &Connection, order_id: OrderId) -> Result<Option<OrderView>, StoreError> {
    let view: Option<String> = conn
        .prepare_cached("SELECT view FROM orders WHERE order_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([order_id.to_string()], |row| row.get(0))
                .optional()
        })
        .db()?;
    view.map(|raw| decode_json(&raw, "order view")).transpose()
}

pub(super) fn put(
    conn: &Connection,
    view: &OrderView,
    expected_version: Option<u64>,
) -> Result<PutOutcome, StoreError> {
    let json = encode_json(view, "order view")?;
    let order_id = view.order_id.to_string();
    let version = to_sql_int(view.version, "view version")?;
    let order = &view.order;
    let changed = match expected_version {
        None => conn
            .prepare_cached(INSERT_IF_ABSENT)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    order_id,
                    order.customer_id.as_str(),
                    order.status.as_str(),
                    order.created_at.millis(),
                    order.updated_at.millis(),
                    version,
                    json,
                ])
            })
            .db()?,
        Some(expected) => {
            let expected = to_sql_int(expected, "expected view version")?;
            conn.prepare_cached(UPDATE_AT_VERSION)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        order_id,
                        order.customer_id.as_str(),
                        order.status.as_str(),
                        order.created_at.millis(),
                        order.updated_at.millis(),
                        version,
                        json,
                        expected,
                    ])
                })
                .db()?
        }
    };
    Ok(if changed == 1 {
        PutOutcome::Written
    } else {
        PutOutcome::VersionMismatch
    })
}

/// Newest first by the filter's sort timestamp, ties broken by order id (descending), resuming
/// strictly after the page key `{"k": <sort millis>, "id": "<orderId>"}` of the previous page's
/// last row. The row-value comparison is a range on the listing's index, so every page costs
/// the same however deep it is.
pub(super) fn list(conn: &Connection, query: &ListQuery) -> Result<Page, StoreError> {
    if query.limit == 0 {
        return Err(StoreError::Internal(
            "a listing limit must be at least 1".into(),
        ));
    }
    let (filter_value, sql_first, sql_after) = match &query.filter {
        ListFilter::Customer(customer) => (
            customer.as_str(),
            "SELECT order_id, created_at, view FROM orders WHERE customer_id = ?1 \
             ORDER BY created_at DESC, order_id DESC LIMIT ?2",
            "SELECT order_id, created_at, view FROM orders WHERE customer_id = ?1 \
             AND (created_at, order_id) < (?3, ?4) \
             ORDER BY created_at DESC, order_id DESC LIMIT ?2",
        ),
        ListFilter::Status(status) => (
            status.as_str(),
            "SELECT order_id, updated_at, view FROM orders WHERE status = ?1 \
             ORDER BY updated_at DESC, order_id DESC LIMIT ?2",
            "SELECT order_id, updated_at, view FROM orders WHERE status = ?1 \
             AND (updated_at, order_id) < (?3, ?4) \
             ORDER BY updated_at DESC, order_id DESC LIMIT ?2",
        ),
    };
    // One extra row tells whether another page follows.
    let fetch = i64::from(query.limit) + 1;
    let mut rows_out: Vec<(String, i64, String)> = Vec::new();
    let collect = |stmt: &mut rusqlite::CachedStatement<'_>,
                   params: &[&dyn rusqlite::ToSql],
                   out: &mut Vec<(String, i64, String)>|
     -> rusqlite::Result<()> {
        let mut rows = stmt.query(params)?;
        while let Some(row) = rows.next()? {
            out.push((row.get(0)?, row.get(1)?, row.get(2)?));
        }
        Ok(())
    };
    match &query.after {
        None => {
            let mut stmt = conn.prepare_cached(sql_first).db()?;
            collect(&mut stmt, &[&filter_value, &fetch], &mut rows_out).db()?;
        }
        Some(key) => {
            let (k, id) = parse_page_key(key)?;
            let mut stmt = conn.prepare_cached(sql_after).db()?;
            collect(&mut stmt, &[&filter_value, &fetch, &k, &id], &mut rows_out).db()?;
        }
    }
    let more = rows_out.len() > query.limit as usize;
    rows_out.truncate(query.limit as usize);
    let next = match rows_out.last() {
        Some((order_id, sort_millis, _)) if more => {
            Some(PageKey(json!({ "k": sort_millis, "id": order_id })))
        }
        _ => None,
    };
    let items = rows_out
        .into_iter()
        .map(|(_, _, view)| decode_json(&view, "order view"))
        .collect::<Result<_, _>>()?;
    Ok(Page { items, next })
}

/// The page key's sort timestamp and order id. Keys come from `list` itself (the HTTP layer
/// signs them), so a malformed one is a bug, not bad input.
fn parse_page_key(key: &PageKey) -> Result<(i64, String), StoreError> {
    let malformed = || StoreError::Internal(format!("malformed page key {}", key.0));
    let k = key
        .0
        .get("k")
        .and_then(|k| k.as_i64())
        .ok_or_else(malformed)?;
    let id = key
        .0
        .get("id")
        .and_then(|id| id.as_str())
        .ok_or_else(malformed)?;
    // Canonical text, so that it compares like the stored ids.
    let id = OrderId::parse(id).map_err(|_| malformed())?.to_string();
    Ok((k, id))
}
