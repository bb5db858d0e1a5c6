//! The event log: append (with its idempotency record), load, the change feed, and the
//! idempotency lookups. Plain synchronous functions over a connection; `mod.rs` decides which
//! connection and thread they run on.

use std::collections::HashSet;

use orders_domain::{OrderId, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::error::{SqlResultExt, from_sql_int, is_unique_violation, store_error, to_sql_int};
use crate::{
    AppendError, AppendRequest, EventKey, EventMetadata, FeedEntry, IdempotencyKey,
    IdempotencyRecord, ScanPage, ScanSegment, StoreError, StoredEvent,
};

const CURRENT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE order_id = ?1";
const INSERT_EVENT: &str = "INSERT INTO events \
     (order_id, version, event_id, event_type, schema_version, occurred_at, data, metadata) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
/// Inserts the record, or takes over the key of an expired one; changes no row while a live
/// record holds the key.
const CLAIM_IDEMPOTENCY_KEY: &str = "INSERT INTO idempotency \
     (key, fingerprint, order_id, version, status, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, \
     order_id = excluded.order_id, version = excluded.version, status = excluded.status, \
     expires_at = excluded.expires_at \
     WHERE idempotency.expires_at <= ?7";
const EVENT_COLUMNS: &str =
    "order_id, version, event_id, event_type, schema_version, occurred_at, data, metadata";

/// Rejects a request whose events do not continue the order's stream one by one. Such a request
/// is a caller bug, so it is refused before it costs the writer anything.
pub(super) fn validate(request: &AppendRequest) -> Result<(), StoreError> {
    to_sql_int(request.expected_version, "expected version")?;
    for (offset, event) in (1u64..).zip(&request.events) {
        if event.order_id != request.order_id {
            return Err(StoreError::Internal(format!(
                "event {} belongs to order {}, not {}",
                event.event_id, event.order_id, request.order_id
            )));
        }
        let expected = request.expected_version.checked_add(offset);
        if Some(event.version) != expected {
            return Err(StoreError::Internal(format!(
                "event versions must follow {} contiguously: found {} at position {offset}",
                request.expected_version, event.version
            )));
        }
        to_sql_int(event.version, "event version")?;
    }
    if let Some(record) = &request.idempotency {
        to_sql_int(record.version, "idempotency record version")?;
    }
    Ok(())
}

/// Appends within the caller's transaction (the writer's savepoint, which it rolls back if this
/// fails). Returns the change-feed position of the last event written (`None` when the request
/// had no events). `request.now` decides whether a stored idempotency record has expired.
pub(super) fn append(tx: &Connection, request: &AppendRequest) -> Result<Option<u64>, AppendError> {
    let order_id = request.order_id.to_string();

    if let Some(record) = &request.idempotency {
        let version = to_sql_int(record.version, "idempotency record version")?;
        let claimed = tx
            .prepare_cached(CLAIM_IDEMPOTENCY_KEY)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    record.key.as_str(),
                    record.fingerprint,
                    record.order_id.to_string(),
                    version,
                    record.status,
                    record.expires_at.millis(),
                    request.now.millis(),
                ])
            })
            .db()?;
        if claimed == 0 {
            return Err(AppendError::IdempotencyKeyInUse);
        }
    }

    let current = current_version(tx, &order_id)?;
    if current != request.expected_version {
        return Err(AppendError::Conflict {
            current_version: current,
        });
    }

    let mut last_position = None;
    {
        let mut insert = tx.prepare_cached(INSERT_EVENT).db()?;
        for event in &request.events {
            let data = encode_json(&event.data, "event data")?;
            let metadata = encode_json(&event.metadata, "event metadata")?;
            let inserted = insert.execute(params![
                order_id,
                to_sql_int(event.version, "version")?,
                event.event_id.to_string(),
                event.event_type,
                event.schema_version,
                event.occurred_at.to_string(),
                data,
                metadata,
            ]);
            match inserted {
                Ok(_) => last_position = Some(from_sql_int(tx.last_insert_rowid(), "position")?),
                // Another process's writer got in between our version check and the insert
                // (within this process the writer is exclusive, so this is the only way).
                Err(err) if is_unique_violation(&err, "events.order_id, events.version") => {
                    return Err(AppendError::Conflict {
                        current_version: current_version(tx, &order_id)?,
                    });
                }
                Err(err) if is_unique_violation(&err, "events.event_id") => {
                    return Err(StoreError::Internal(format!(
                        "event id {} is already stored",
                        event.event_id
                    ))
                    .into());
                }
                Err(err) => return Err(store_error(err).into()),
            }
        }
    }
    Ok(last_position)
}

fn current_version(conn: &Connection, order_id: &str) -> Result<u64, StoreError> {
    let version: i64 = conn
        .prepare_cached(CURRENT_VERSION)
        .and_then(|mut stmt| stmt.query_row([order_id], |row| row.get(0)))
        .db()?;
    from_sql_int(version, "version")
}

/// Deletes up to `batch` idempotency records that expired before `now_millis`: on AWS the
/// table's TTL does this, here nothing else would.
pub(super) fn purge_expired_keys(
    conn: &Connection,
    now_millis: i64,
    batch: usize,
) -> Result<usize, StoreError> {
    conn.prepare_cached(
        "DELETE FROM idempotency WHERE key IN \
         (SELECT key FROM idempotency WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
    )
    .and_then(|mut stmt| stmt.execute(params![now_millis, batch as i64]))
    .db()
}

pub(super) fn load(
    conn: &Connection,
    order_id: OrderId,
    up_to: Option<u64>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let up_to = up_to.map_or(i64::MAX, |v| i64::try_from(v).unwrap_or(i64::MAX));
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE order_id = ?1 AND version <= ?2 ORDER BY version"
        ))
        .db()?;
    let mut rows = stmt.query(params![order_id.to_string(), up_to]).db()?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().db()? {
        events.push(decode_event(row, 0)?);
    }
    Ok(events)
}

pub(super) fn read_after(
    conn: &Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<FeedEntry>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT position, {EVENT_COLUMNS} FROM events \
             WHERE position > ?1 ORDER BY position LIMIT ?2"
        ))
        .db()?;
    let mut rows = stmt.query(params![after, limit]).db()?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next().db()? {
        entries.push(FeedEntry {
            position: from_sql_int(row.get(0).db()?, "position")?,
            event: decode_event(row, 1)?,
        });
    }
    Ok(entries)
}

/// The last position in the change feed (0 when empty).
pub(super) fn head_position(conn: &Connection) -> Result<u64, StoreError> {
    let head: i64 = conn
        .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |row| {
            row.get(0)
        })
        .db()?;
    from_sql_int(head, "position")
}

pub(super) fn idempotency_record(
    conn: &Connection,
    key: &IdempotencyKey,
    now: Timestamp,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT fingerprint, order_id, version, status, expires_at FROM idempotency \
             WHERE key = ?1 AND expires_at > ?2",
        )
        .db()?;
    let row = stmt
        .query_row(params![key.as_str(), now.millis()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .optional()
        .db()?;
    let Some((fingerprint, order_id, version, status, expires_at)) = row else {
        return Ok(None);
    };
    Ok(Some(IdempotencyRecord {
        key: key.clone(),
        fingerprint,
        order_id: parse_order_id(&order_id)?,
        version: from_sql_int(version, "version")?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("stored HTTP status {status} is invalid")))?,
        expires_at: Timestamp::from_millis(expires_at),
    }))
}

/// Decodes the [`EVENT_COLUMNS`] starting at column `first`.
fn decode_event(row: &Row<'_>, first: usize) -> Result<StoredEvent, StoreError> {
    let text = |i: usize| row.get::<_, String>(first + i).db();
    let order_id = parse_order_id(&text(0)?)?;
    let version = from_sql_int(row.get(first + 1).db()?, "version")?;
    let event_id = Uuid::try_parse(&text(2)?)
        .map_err(|err| StoreError::Corrupt(format!("stored event id is not a UUID: {err}")))?;
    let schema_version: i64 = row.get(first + 4).db()?;
    let schema_version = u32::try_from(schema_version).map_err(|_| {
        StoreError::Corrupt(format!("stored schema version {schema_version} is invalid"))
    })?;
    let occurred_at = Timestamp::parse(&text(5)?)
        .map_err(|err| StoreError::Corrupt(format!("stored occurredAt: {err}")))?;
    Ok(StoredEvent {
        order_id,
        version,
        event_id,
        event_type: text(3)?,
        schema_version,
        occurred_at,
        data: decode_json(&text(6)?, "event data")?,
        metadata: decode_json::<EventMetadata>(&text(7)?, "event metadata")?,
    })
}

pub(super) fn parse_order_id(raw: &str) -> Result<OrderId, StoreError> {
    OrderId::parse(raw)
        .map_err(|_| StoreError::Corrupt(format!("stored order id {raw:?} is not a UUID")))
}

pub(super) fn encode_json<T: serde::Serialize>(
    value: &T,
    what: &str,
) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|err| StoreError::Internal(format!("cannot encode {what}: {err}")))
}

pub(super) fn decode_json<T: serde::de::DeserializeOwned>(
    raw: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|err| StoreError::Corrupt(format!("stored {what}: {err}")))
}

/// Key bounds that sort before and after every canonical (lowercase, hyphenated) order id.
const FIRST_KEY: &str = "";
const PAST_LAST_KEY: &str = "~";

/// The `[from, to)` order-id range of a planned segment, as SQL text bounds.
pub(super) fn key_range(segment: &ScanSegment) -> (String, String) {
    (
        segment
            .from
            .map_or_else(|| FIRST_KEY.to_owned(), |id| id.to_string()),
        segment
            .to
            .map_or_else(|| PAST_LAST_KEY.to_owned(), |id| id.to_string()),
    )
}

/// Splits the orders into up to `total` ranges of about equal order counts, by the ids of
/// their first events (a walk of the (order_id, version) index). Fewer orders than `total`
/// make fewer ranges: the first range is open below and the last open above, so together they
/// cover every id, including views with no events.
pub(super) fn plan_scan(conn: &Connection, total: u32) -> Result<Vec<ScanSegment>, StoreError> {
    let total = total.max(1);
    let orders: i64 = conn
        .query_row("SELECT COUNT(*) FROM events WHERE version = 1", [], |row| {
            row.get(0)
        })
        .db()?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT order_id FROM events WHERE version = 1 ORDER BY order_id LIMIT 1 OFFSET ?1",
        )
        .db()?;
    let mut bounds: Vec<OrderId> = Vec::new();
    for k in 1..i64::from(total) {
        let offset = orders * k / i64::from(total);
        let id: Option<String> = stmt.query_row([offset], |row| row.get(0)).optional().db()?;
        if let Some(id) = id.as_deref().map(parse_order_id).transpose()?
            && bounds.last() != Some(&id)
            && offset > 0
        {
            bounds.push(id);
        }
    }
    let parts = bounds.len() as u32 + 1;
    let lower = std::iter::once(None).chain(bounds.iter().copied().map(Some));
    let upper = bounds
        .iter()
        .copied()
        .map(Some)
        .chain(std::iter::once(None));
    Ok(lower
        .zip(upper)
        .zip(0..)
        .map(|((from, to), index)| ScanSegment {
            index,
            total: parts,
            from,
            to,
        })
        .collect())
}

/// Up to `limit` events of the segment's order range after `after`, in (order_id, version)
/// order: a range read of the UNIQUE (order_id, version) index.
pub(super) fn scan_events(
    conn: &Connection,
    segment: &ScanSegment,
    after: Option<EventKey>,
    limit: usize,
) -> Result<ScanPage<StoredEvent, EventKey>, StoreError> {
    let (from, to) = key_range(segment);
    let (after_id, after_version) = match after {
        Some(key) => (
            key.order_id.to_string(),
            to_sql_int(key.version, "version")?,
        ),
        None => (FIRST_KEY.to_owned(), 0),
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE (order_id, version) > (?1, ?2) AND order_id >= ?3 AND order_id < ?4 \
             ORDER BY order_id, version LIMIT ?5"
        ))
        .db()?;
    let mut rows = stmt
        .query(params![after_id, after_version, from, to, limit as i64])
        .db()?;
    let mut events = Vec::with_capacity(limit);
    while let Some(row) = rows.next().db()? {
        events.push(decode_event(row, 0)?);
    }
    let next = (events.len() == limit)
        .then(|| events.last().map(EventKey::of))
        .flatten();
    Ok(ScanPage {
        items: events,
        next,
    })
}

pub(super) fn orders_with_events(
    conn: &Connection,
    order_ids: &[OrderId],
) -> Result<HashSet<OrderId>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM events WHERE order_id = ?1 AND version = 1")
        .db()?;
    let mut found = HashSet::new();
    for &order_id in order_ids {
        if stmt.exists([order_id.to_string()]).db()? {
            found.insert(order_id);
        }
    }
    Ok(found)
}
