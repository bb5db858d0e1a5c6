//! The read model (`orders` table, or a shadow of it): conditional puts, keyset-paginated
//! listings, and the whole-table scan and conditional delete of rebuilds.
//!
//! A row holds the view twice over: whole, as JSON (`view`), and in part, in the columns the
//! listings filter and sort by and the write conditions test (`customer_id`, `status`,
//! `created_at`, `updated_at`, `version`). Every write sets both from one view, but a hand edit
//! can set one alone. So the columns are authoritative for the attributes they hold: every read
//! (a get, a listing, a scan) returns the JSON with those attributes taken from the columns.
//! What a listing filters on, what it returns, what a write's condition tests and what a
//! rebuild judges against the events are then one and the same view, and a column edited on
//! its own is drift that `orders replay` sees and mends (by rewriting the whole row). A JSON
//! copy that disagrees with its column is never served; it is logged, and the row's next write
//! replaces it.

use orders_domain::{CustomerId, OrderId, OrderStatus, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};
use serde_json::json;

use super::error::{SqlResultExt, from_sql_int, to_sql_int};
use super::event_log::{decode_json, encode_json};
use crate::{
    DeleteOutcome, ListFilter, ListQuery, OrderView, Page, PageKey, PutOutcome, ScanPage,
    StoreError, TableName,
};

/// The live read model's table (migration 1 creates it).
pub(super) const LIVE_TABLE: &str = "orders";

/// What every read selects of a row, in [`RowView::read`]'s order: the JSON and the columns
/// that override it.
const VIEW_COLUMNS: &str = "view, customer_id, status, created_at, updated_at, version";

/// The statements on one read-model table, written once when the store opens: the live
/// `orders`, or a shadow with the same columns and indexes (see `schema::create_read_model`).
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
                    "SELECT order_id, {sort}, {VIEW_COLUMNS} FROM {t} WHERE {key} = ?1 \
                     ORDER BY {sort} DESC, order_id DESC LIMIT ?2"
                ),
                format!(
                    "SELECT order_id, {sort}, {VIEW_COLUMNS} FROM {t} WHERE {key} = ?1 \
                     AND ({sort}, order_id) < (?3, ?4) \
                     ORDER BY {sort} DESC, order_id DESC LIMIT ?2"
                ),
            ]
        };
        Self {
            get: format!("SELECT {VIEW_COLUMNS} FROM {t} WHERE order_id = ?1"),
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
                "SELECT {VIEW_COLUMNS} FROM {t} \
                 WHERE order_id > ?1 AND order_id >= ?2 AND order_id < ?3 \
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

pub(super) fn get(
    conn: &Connection,
    sql: &ReadModelSql,
    order_id: OrderId,
) -> Result<Option<OrderView>, StoreError> {
    let row = conn
        .prepare_cached(&sql.get)
        .and_then(|mut stmt| {
            stmt.query_row([order_id.to_string()], |row| RowView::read(row, 0))
                .optional()
        })
        .db()?;
    row.map(RowView::into_view).transpose()
}

/// A row's view as stored: the JSON and the columns that override it (see the module docs).
struct RowView {
    json: String,
    customer_id: String,
    status: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

impl RowView {
    /// Reads [`VIEW_COLUMNS`] from the row's columns `first..`.
    fn read(row: &Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            json: row.get(first)?,
            customer_id: row.get(first + 1)?,
            status: row.get(first + 2)?,
            created_at: row.get(first + 3)?,
            updated_at: row.get(first + 4)?,
            version: row.get(first + 5)?,
        })
    }

    /// The view every query sees: the JSON with the columns' attributes.
    fn into_view(self) -> Result<OrderView, StoreError> {
        let mut view: OrderView = decode_json(&self.json, "order view")?;
        let corrupt = |what: &str, value: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!(
                "the {what} column of order {} holds {value}",
                view.order_id
            ))
        };
        let customer_id = CustomerId::parse(&self.customer_id)
            .map_err(|_| corrupt("customer_id", &format_args!("{:?}", self.customer_id)))?;
        let status: OrderStatus = self
            .status
            .parse()
            .map_err(|_| corrupt("status", &format_args!("{:?}", self.status)))?;
        let timestamp = |millis: i64, what: &str| {
            let at = Timestamp::from_millis(millis);
            // `from_millis` falls back to the epoch for an instant it cannot represent.
            (at.millis() == millis)
                .then_some(at)
                .ok_or_else(|| corrupt(what, &millis))
        };
        let created_at = timestamp(self.created_at, "created_at")?;
        let updated_at = timestamp(self.updated_at, "updated_at")?;
        let version = from_sql_int(self.version, "view version")?;

        let order = &view.order;
        let differing: Vec<&str> = [
            ("customerId", order.customer_id != customer_id),
            ("status", order.status != status),
            ("createdAt", order.created_at != created_at),
            ("updatedAt", order.updated_at != updated_at),
            ("version", view.version != version),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect();
        if !differing.is_empty() {
            tracing::warn!(
                orderId = %view.order_id,
                attributes = ?differing,
                "the view's JSON disagrees with its index columns; the columns are served \
                 (a hand edit? `orders replay --verify` compares them with the events)"
            );
        }
        view.order.customer_id = customer_id;
        view.order.status = status;
        view.order.created_at = created_at;
        view.order.updated_at = updated_at;
        view.version = version;
        Ok(view)
    }
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
    let (customer_id, status) = (order.customer_id.as_str(), order.status.as_str());
    let (created_at, updated_at) = (order.created_at.millis(), order.updated_at.millis());
    // Both statements take the row as ?1..?7; the update also takes the expected version, ?8.
    let mut values: Vec<&dyn ToSql> = vec![
        &order_id,
        &customer_id,
        &status,
        &created_at,
        &updated_at,
        &version,
        &json,
    ];
    let expected = expected_version
        .map(|expected| to_sql_int(expected, "expected view version"))
        .transpose()?;
    let statement = match &expected {
        None => &sql.insert_if_absent,
        Some(expected) => {
            values.push(expected);
            &sql.update_at_version
        }
    };
    let changed = conn
        .prepare_cached(statement)
        .and_then(|mut stmt| stmt.execute(values.as_slice()))
        .db()?;
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
    let mut rows_out: Vec<(String, i64, RowView)> = Vec::new();
    let collect = |stmt: &mut rusqlite::CachedStatement<'_>,
                   params: &[&dyn ToSql],
                   out: &mut Vec<(String, i64, RowView)>|
     -> rusqlite::Result<()> {
        let mut rows = stmt.query(params)?;
        while let Some(row) = rows.next()? {
            out.push((row.get(0)?, row.get(1)?, RowView::read(row, 2)?));
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
        .map(|(_, _, view)| view.into_view())
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
        views.push(RowView::read(row, 0).db()?.into_view()?);
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
) -> Result<DeleteOutcome, StoreError> {
    let expected = to_sql_int(expected_version, "expected view version")?;
    let deleted = conn
        .prepare_cached(&sql.delete_at_version)
        .and_then(|mut stmt| stmt.execute(params![order_id.to_string(), expected]))
        .db()?;
    Ok(if deleted == 1 {
        DeleteOutcome::Deleted
    } else {
        DeleteOutcome::VersionMismatch
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

#[cfg(test)]
mod tests {
    //! Hand edits of one index column: every read serves the column, and a write's condition
    //! tests it, so the edit is visible to a rebuild and mended by its write.

    use orders_domain::{OrderId, OrderStatus};
    use rusqlite::Connection;
    use uuid::Uuid;

    use super::super::SqliteStore;
    use crate::contract::view;
    use crate::{
        ListFilter, ListQuery, OrderView, PutOutcome, ReadModelScan, ReadModelStore, ScanSegment,
    };

    /// A store holding one shipped view at version 3, and a raw connection to its file.
    async fn shipped() -> (tempfile::TempDir, SqliteStore, Connection, OrderView) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.db");
        let store = SqliteStore::open(&path).unwrap();
        let order_id = OrderId::from_uuid(Uuid::now_v7());
        let shipped = view(order_id, "c-1", OrderStatus::Shipped, 1_000, 3_000, 3);
        assert_eq!(
            store.put(&shipped, None).await.unwrap(),
            PutOutcome::Written
        );
        let conn = Connection::open(&path).unwrap();
        (dir, store, conn, shipped)
    }

    async fn listed(store: &SqliteStore, status: OrderStatus) -> Vec<OrderView> {
        let query = ListQuery {
            filter: ListFilter::Status(status),
            limit: 10,
            after: None,
        };
        store.list(&query).await.unwrap().items
    }

    async fn scanned(store: &SqliteStore) -> Vec<OrderView> {
        let whole = ScanSegment {
            index: 0,
            total: 1,
            from: None,
            to: None,
        };
        store.scan_views(&whole, None, 10).await.unwrap().items
    }

    fn columns(conn: &Connection, order_id: OrderId) -> (String, i64) {
        conn.query_row(
            "SELECT status, version FROM orders WHERE order_id = ?1",
            [order_id.to_string()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_status_column_edited_alone_is_served_everywhere_until_a_write_mends_the_row() {
        let (_dir, store, conn, shipped) = shipped().await;
        let order_id = shipped.order_id;
        conn.execute(
            "UPDATE orders SET status = 'PENDING' WHERE order_id = ?1",
            [order_id.to_string()],
        )
        .unwrap();

        // The listing by PENDING finds the order; every read says so, not the JSON's SHIPPED.
        let mut as_queried = shipped.clone();
        as_queried.order.status = OrderStatus::Pending;
        assert_eq!(store.get(order_id).await.unwrap(), Some(as_queried.clone()));
        assert_eq!(
            listed(&store, OrderStatus::Pending).await,
            vec![as_queried.clone()]
        );
        assert_eq!(listed(&store, OrderStatus::Shipped).await, vec![]);
        assert_eq!(scanned(&store).await, vec![as_queried.clone()]);
        let many = store.get_many(&[order_id]).await.unwrap();
        assert_eq!(many.get(&order_id), Some(&as_queried));

        // A rebuild's write of the fold rewrites the column with the JSON.
        assert_eq!(
            store.put(&shipped, Some(3)).await.unwrap(),
            PutOutcome::Written
        );
        assert_eq!(columns(&conn, order_id), ("SHIPPED".to_owned(), 3));
        assert_eq!(store.get(order_id).await.unwrap(), Some(shipped.clone()));
        assert_eq!(listed(&store, OrderStatus::Pending).await, vec![]);
        assert_eq!(listed(&store, OrderStatus::Shipped).await, vec![shipped]);
    }

    #[tokio::test]
    async fn a_version_column_edited_alone_is_the_version_reads_report_and_writes_test() {
        let (_dir, store, conn, shipped) = shipped().await;
        let order_id = shipped.order_id;
        conn.execute(
            "UPDATE orders SET version = 2 WHERE order_id = ?1",
            [order_id.to_string()],
        )
        .unwrap();

        let stored = store.get(order_id).await.unwrap().expect("a view");
        assert_eq!(stored.version, 2, "the version the write conditions test");
        assert_eq!(
            listed(&store, OrderStatus::Shipped).await,
            vec![stored.clone()]
        );
        // A write conditioned on the JSON's version would lose forever; on the reported one it
        // goes through and mends the column.
        assert_eq!(
            store.put(&shipped, Some(3)).await.unwrap(),
            PutOutcome::VersionMismatch
        );
        assert_eq!(
            store.put(&shipped, Some(stored.version)).await.unwrap(),
            PutOutcome::Written
        );
        assert_eq!(columns(&conn, order_id), ("SHIPPED".to_owned(), 3));
        assert_eq!(store.get(order_id).await.unwrap(), Some(shipped));
    }

    #[tokio::test]
    async fn a_column_no_view_can_hold_is_corrupt_data_not_a_view() {
        let (_dir, store, conn, shipped) = shipped().await;
        conn.execute(
            "UPDATE orders SET status = 'LOST' WHERE order_id = ?1",
            [shipped.order_id.to_string()],
        )
        .unwrap();
        let err = store.get(shipped.order_id).await.unwrap_err();
        assert!(
            matches!(&err, crate::StoreError::Corrupt(message) if message.contains("status")),
            "{err}"
        );
    }
}
