//! The read model (`orders` table, or a shadow of it): conditional puts, keyset-paginated
//! listings, and the whole-table scan and conditional delete of rebuilds.

use orders_domain::OrderId;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::error::{SqlResultExt, to_sql_int};
use super::event_log::{decode_json, encode_json};
use crate::{
    ListFilter, ListQuery, OrderView, Page, PageKey, PutOutcome, ScanPage, StoreError, TableName,
};

/// The live read model's table (migration 1 creates it).
pub(super) const LIVE_TABLE: &str = "orders";

/// The statements on one read-model table, written once when the store opens: the live
/// `orders`, or a shadow with the same columns and indexes (see [`create_table`]).
pub(super) struct ReadModelSql {
    pub(super) table: TableName,
    get: String,
    insert_if_absent: String,
    update_at_version: String,
    delete_at_version: String,
    scan: String,
    /// First page and later pages of each listing: by customer, by status.
    by_customer: [String; 2],
    by_status: [String; 2],
}

impl ReadModelSql {
    pub(super) fn new(table: TableName) -> Self {
        // A validated name (letters, digits, `_.-`) in double quotes is a safe identifier.
        let t = format!("\"{table}\"");
        let listing = |key: &str, sort: &str| {
            [
                format!(
                    "SELECT order_id, {sort}, view FROM {t} WHERE {key} = ?1 \
                     ORDER BY {sort} DESC, order_id DESC LIMIT ?2"
                ),
                format!(
                    "SELECT order_id, {sort}, view FROM {t} WHERE {key} = ?1 \
                     AND ({sort}, order_id) < (?3, ?4) \
                     ORDER BY {sort} DESC, order_id DESC LIMIT ?2"
                ),
            ]
        };
        Self {
            get: format!("SELECT view FROM {t} WHERE order_id = ?1"),
            insert_if_absent: format!(
                "INSERT INTO {t} \
                 (order_id, customer_id, status, created_at, updated_at, version, view) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (order_id) DO NOTHING"
            ),
            update_at_version: format!(
                "UPDATE {t} SET customer_id = ?2, status = ?3, created_at = ?4, \
                 updated_at = ?5, version = ?6, view = ?7 WHERE order_id = ?1 AND version = ?8"
            ),
            delete_at_version: format!("DELETE FROM {t} WHERE order_id = ?1 AND version = ?2"),
            scan: format!(
                "SELECT view FROM {t} WHERE order_id > ?1 AND order_id >= ?2 AND order_id < ?3 \
                 ORDER BY order_id LIMIT ?4"
            ),
            by_customer: listing("customer_id", "created_at"),
            by_status: listing("status", "updated_at"),
            table,
        }
    }
}

/// Whether the database has the read-model table `table`.
pub(super) fn table_exists(conn: &Connection, table: &TableName) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table.as_str()],
        |_| Ok(()),
    )
    .optional()
    .db()
    .map(|found| found.is_some())
}

/// Creates a shadow read model with the live table's columns and indexes, if it is missing.
/// (Migration 1 made the live table with the same statement; migrations are frozen history, so
/// this is its second copy.)
pub(super) fn create_table(conn: &Connection, table: &TableName) -> Result<(), StoreError> {
    let t = format!("\"{table}\"");
    let by_customer = format!("\"{table}_by_customer\"");
    let by_status = format!("\"{table}_by_status\"");
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {t} (
            order_id    TEXT    PRIMARY KEY NOT NULL,
            customer_id TEXT    NOT NULL,
            status      TEXT    NOT NULL,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL,
            version     INTEGER NOT NULL,
            view        TEXT    NOT NULL
        );
        CREATE INDEX IF NOT EXISTS {by_customer} ON {t} (customer_id, created_at DESC, order_id DESC);
        CREATE INDEX IF NOT EXISTS {by_status} ON {t} (status, updated_at DESC, order_id DESC);"
    ))
    .db()
}

pub(super) fn get(
    conn: &Connection,
    sql: &ReadModelSql,
    order_id: OrderId,
) -> Result<Option<OrderView>, StoreError> {
    let view: Option<String> = conn
        .prepare_cached(&sql.get)
        .and_then(|mut stmt| {
            stmt.query_row([order_id.to_string()], |row| row.get(0))
                .optional()
        })
        .db()?;
    view.map(|raw| decode_json(&raw, "order view")).transpose()
}

pub(super) fn put(
    conn: &Connection,
    sql: &ReadModelSql,
    view: &OrderView,
    expected_version: Option<u64>,
) -> Result<PutOutcome, StoreError> {
    let json = encode_json(view, "order view")?;
    let order_id = view.order_id.to_string();
    let version = to_sql_int(view.version, "view version")?;
    let order = &view.order;
    let changed = match expected_version {
        None => conn
            .prepare_cached(&sql.insert_if_absent)
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
            conn.prepare_cached(&sql.update_at_version)
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
pub(super) fn list(
    conn: &Connection,
    sql: &ReadModelSql,
    query: &ListQuery,
) -> Result<Page, StoreError> {
    if query.limit == 0 {
        return Err(StoreError::Internal(
            "a listing limit must be at least 1".into(),
        ));
    }
    let (filter_value, [sql_first, sql_after]) = match &query.filter {
        ListFilter::Customer(customer) => (customer.as_str(), &sql.by_customer),
        ListFilter::Status(status) => (status.as_str(), &sql.by_status),
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

/// Up to `limit` views with order ids in `[from, to)` after `after`, in order-id order.
pub(super) fn scan(
    conn: &Connection,
    sql: &ReadModelSql,
    range: (&str, &str),
    after: Option<OrderId>,
    limit: usize,
) -> Result<ScanPage<OrderView, OrderId>, StoreError> {
    let after = after.map_or_else(String::new, |id| id.to_string());
    let mut stmt = conn.prepare_cached(&sql.scan).db()?;
    let mut rows = stmt
        .query(params![after, range.0, range.1, limit as i64])
        .db()?;
    let mut views: Vec<OrderView> = Vec::with_capacity(limit);
    while let Some(row) = rows.next().db()? {
        views.push(decode_json(&row.get::<_, String>(0).db()?, "order view")?);
    }
    let next = (views.len() == limit)
        .then(|| views.last().map(|view| view.order_id))
        .flatten();
    Ok(ScanPage { items: views, next })
}

pub(super) fn delete(
    conn: &Connection,
    sql: &ReadModelSql,
    order_id: OrderId,
    expected_version: u64,
) -> Result<PutOutcome, StoreError> {
    let expected = to_sql_int(expected_version, "expected view version")?;
    let deleted = conn
        .prepare_cached(&sql.delete_at_version)
        .and_then(|mut stmt| stmt.execute(params![order_id.to_string(), expected]))
        .db()?;
    Ok(if deleted == 1 {
        PutOutcome::Written
    } else {
        PutOutcome::VersionMismatch
    })
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
