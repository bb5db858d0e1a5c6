//! The reader connections, checked out by async callers without blocking a thread.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::StoreError;

/// Reader connections. The semaphore has one permit per idle connection, so a permit holder
/// always finds one, and waiting happens in async code rather than in blocking threads.
pub(super) struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// A checked-out reader; goes back to the pool on drop (also when the work panicked).
pub(super) struct PooledReader<'a> {
    pool: &'a ReaderPool,
    /// `Some` until dropped.
    conn: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl ReaderPool {
    pub(super) fn new(conns: Vec<Connection>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(conns.len())),
            idle: Mutex::new(conns),
        }
    }

    pub(super) async fn permit(&self) -> Result<OwnedSemaphorePermit, StoreError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Internal("the reader pool is closed".into()))
    }

    pub(super) fn checkout(
        &self,
        permit: OwnedSemaphorePermit,
    ) -> Result<PooledReader<'_>, StoreError> {
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or_else(|| StoreError::Internal("no idle reader despite a permit".into()))?;
        Ok(PooledReader {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

impl std::ops::Deref for PooledReader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a pooled reader holds its connection until dropped")
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}
