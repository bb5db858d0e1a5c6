//! Change-feed consumers' positions (`checkpoints` table).

use rusqlite::{Connection, OptionalExtension, params};

use super::error::{SqlResultExt, from_sql_int, to_sql_int};
use crate::StoreError;

pub(super) fn load_checkpoint(conn: &Connection, consumer: &str) -> Result<u64, StoreError> {
    let position: Option<i64> = conn
        .prepare_cached("SELECT position FROM checkpoints WHERE consumer = ?1")
        .and_then(|mut stmt| stmt.query_row([consumer], |row| row.get(0)).optional())
        .db()?;
    from_sql_int(position.unwrap_or(0), "checkpoint")
}

pub(super) fn save_checkpoint(
    conn: &Connection,
    consumer: &str,
    position: u64,
) -> Result<(), StoreError> {
    let position = to_sql_int(position, "checkpoint")?;
    conn.prepare_cached(
        "INSERT INTO checkpoints (consumer, position) VALUES (?1, ?2) \
         ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
    )
    .and_then(|mut stmt| stmt.execute(params![consumer, position]))
    .db()?;
    Ok(())
}
