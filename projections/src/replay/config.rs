//! What a replay is asked to do: rebuild or verify, which orders, and how wide, how big and
//! how fast it reads and writes.

use std::path::PathBuf;

use orders_domain::OrderId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Write the fold's views where they differ (and delete orphans).
    Rebuild,
    /// Write nothing; report the differences.
    Verify,
}

#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub mode: Mode,
    /// One order instead of all.
    pub order: Option<OrderId>,
    /// Parts read in parallel (at least 1).
    pub segments: u32,
    /// Items per scan page. With `batch_size`, this sets the memory a part holds: a page
    /// being folded and up to two batches waiting to be settled.
    pub page_size: usize,
    /// Orders per settled batch: one read of their views and one batched write.
    pub batch_size: usize,
    /// Differences kept in full (counts are kept for all).
    pub max_drifts: usize,
    /// Where the checkpoint is saved, if anywhere.
    pub checkpoint_file: Option<PathBuf>,
    /// A ceiling on events scanned per second over all parts, so that a replay on a live
    /// table leaves its capacity to the service.
    pub max_events_per_second: Option<u32>,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Rebuild,
            order: None,
            segments: 1,
            page_size: 500,
            batch_size: 250,
            max_drifts: 20,
            checkpoint_file: None,
            max_events_per_second: None,
        }
    }
}
