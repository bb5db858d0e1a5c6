//! The store's ports on SQLite: writes go through the writer thread, reads to the reader pool.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use orders_domain::{OrderId, Timestamp};
use tokio::sync::watch;

use super::{SqliteStore, checkpoints, event_log, read_model};
use crate::{
    AppendError, AppendRequest, ChangeFeed, CheckpointStore, ConditionalPut, DeleteOutcome,
    EventKey, EventScan, EventStore, FeedEntry, IdempotencyKey, IdempotencyRecord,
    IdempotencyStore, ListQuery, OrderView, Page, PutOutcome, ReadModelScan, ReadModelStore,
    ScanPage, ScanSegment, StoreError, StoredEvent,
};

/// Every this many appends, the writer purges a batch of expired idempotency keys.
const PURGE_EVERY_APPENDS: u64 = 1024;
const PURGE_BATCH: usize = 512;

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, request: AppendRequest) -> Result<(), AppendError> {
        event_log::validate(&request)?;
        let order_id = request.order_id;
        // Every so often the append also clears out expired idempotency keys.
        let purge = self
            .inner
            .appends
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY_APPENDS);
        let result = self
            .inner
            .writer
            .write(move |conn, effects| {
                effects.appended_up_to = event_log::append(conn, &request)?;
                if purge {
                    // A failed purge is retried with a later append; it must not fail this one.
                    match event_log::purge_expired_keys(conn, request.now.millis(), PURGE_BATCH) {
                        Ok(0) => {}
                        Ok(purged) => tracing::debug!(purged, "purged expired idempotency keys"),
                        Err(err) => tracing::warn!(error = %err, "purging idempotency keys failed"),
                    }
                }
                Ok::<_, AppendError>(())
            })
            .await;
        if let Err(AppendError::Store(err)) = &result {
            tracing::warn!(%order_id, error = %err, "append failed");
        }
        result
    }

    async fn load(
        &self,
        order_id: OrderId,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.point_read(|conn| event_log::load(conn, order_id, up_to))
            .await
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn get(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.point_read(|conn| event_log::idempotency_record(conn, key, now))
            .await
    }
}

#[async_trait]
impl ReadModelStore for SqliteStore {
    async fn get(&self, order_id: OrderId) -> Result<Option<OrderView>, StoreError> {
        let sql = &self.inner.read_model;
        self.point_read(|conn| read_model::get(conn, sql, order_id))
            .await
    }

    async fn put(
        &self,
        view: &OrderView,
        expected_version: Option<u64>,
    ) -> Result<PutOutcome, StoreError> {
        let view = view.clone();
        let sql = self.inner.read_model.clone();
        self.inner
            .writer
            .write(move |conn, _| read_model::put(conn, &sql, &view, expected_version))
            .await
    }

    /// One pooled read for the whole batch.
    async fn get_many(
        &self,
        order_ids: &[OrderId],
    ) -> Result<HashMap<OrderId, OrderView>, StoreError> {
        let order_ids = order_ids.to_vec();
        let sql = self.inner.read_model.clone();
        self.read(move |conn| {
            let mut views = HashMap::with_capacity(order_ids.len());
            for order_id in order_ids {
                if let Some(view) = read_model::get(conn, &sql, order_id)? {
                    views.insert(order_id, view);
                }
            }
            Ok(views)
        })
        .await
    }

    /// One write job, so the whole batch shares a group commit instead of waiting for one
    /// commit per view.
    async fn put_many(&self, puts: &[ConditionalPut]) -> Result<Vec<PutOutcome>, StoreError> {
        let puts = puts.to_vec();
        let sql = self.inner.read_model.clone();
        self.inner
            .writer
            .write(move |conn, _| {
                puts.iter()
                    .map(|put| read_model::put(conn, &sql, &put.view, put.expected_version))
                    .collect()
            })
            .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let query = query.clone();
        let sql = self.inner.read_model.clone();
        self.read(move |conn| read_model::list(conn, &sql, &query))
            .await
    }
}

#[async_trait]
impl EventScan for SqliteStore {
    async fn plan_scan(&self, total: u32) -> Result<Vec<ScanSegment>, StoreError> {
        self.read(move |conn| event_log::plan_scan(conn, total))
            .await
    }

    async fn scan_events(
        &self,
        segment: &ScanSegment,
        after: Option<EventKey>,
        limit: usize,
    ) -> Result<ScanPage<StoredEvent, EventKey>, StoreError> {
        let segment = segment.clone();
        self.read(move |conn| event_log::scan_events(conn, &segment, after, limit))
            .await
    }

    /// The change feed's head: the number of events ever appended.
    async fn estimated_events(&self) -> Result<Option<u64>, StoreError> {
        self.read(|conn| event_log::head_position(conn).map(Some))
            .await
    }

    async fn orders_with_events(
        &self,
        order_ids: &[OrderId],
    ) -> Result<std::collections::HashSet<OrderId>, StoreError> {
        let order_ids = order_ids.to_vec();
        self.read(move |conn| event_log::orders_with_events(conn, &order_ids))
            .await
    }
}

#[async_trait]
impl ReadModelScan for SqliteStore {
    async fn scan_views(
        &self,
        segment: &ScanSegment,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<ScanPage<OrderView, OrderId>, StoreError> {
        let range = event_log::key_range(segment);
        let sql = self.inner.read_model.clone();
        self.read(move |conn| read_model::scan(conn, &sql, (&range.0, &range.1), after, limit))
            .await
    }

    async fn delete(
        &self,
        order_id: OrderId,
        expected_version: u64,
    ) -> Result<DeleteOutcome, StoreError> {
        let sql = self.inner.read_model.clone();
        self.inner
            .writer
            .write(move |conn, _| read_model::delete(conn, &sql, order_id, expected_version))
            .await
    }
}

#[async_trait]
impl ChangeFeed for SqliteStore {
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.read(move |conn| event_log::read_after(conn, after, limit))
            .await
    }

    fn watch_appends(&self) -> watch::Receiver<u64> {
        self.inner.appended.subscribe()
    }
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    async fn load_checkpoint(&self, consumer: &str) -> Result<u64, StoreError> {
        self.point_read(|conn| checkpoints::load_checkpoint(conn, consumer))
            .await
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        let consumer = consumer.to_owned();
        self.inner
            .writer
            .write(move |conn, _| checkpoints::save_checkpoint(conn, &consumer, position))
            .await
    }
}
