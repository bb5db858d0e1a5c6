//! What a replay has done so far: its counts, the first differences it found, and per segment
//! where its scans stand. Saved to a file every few seconds and when the run stops, so that
//! `--resume` continues where an interrupted run left off.

use std::io;
use std::path::Path;

use orders_domain::OrderId;
use orders_store::{EventKey, ScanSegment};
use serde::{Deserialize, Serialize};

use super::judge::{Drift, DriftKind};

/// Counts over a whole run (carried across resumes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Orders whose events were folded.
    pub orders: u64,
    /// Events folded.
    pub events: u64,
    /// Views read in the orphan pass.
    pub views_checked: u64,
    /// Views written (a rebuild; a verify writes nothing).
    pub written: u64,
    /// Orphan views deleted.
    pub deleted: u64,
    /// Views that already matched their events: skipped.
    pub in_sync: u64,
    /// Orders folded from a per-order load because the scan did not return their events as
    /// one contiguous run (e.g. the order a resumed scan starts in the middle of).
    pub loaded: u64,
    /// Orders that could not be replayed (undecodable events, a view that kept changing).
    pub failed: u64,
    /// Differences found (verify) or mended (rebuild), by kind.
    pub drift: DriftCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct DriftCounts {
    pub missing_view: u64,
    pub stale_version: u64,
    pub different_fields: u64,
    pub orphan_view: u64,
}

impl DriftCounts {
    pub fn get(&self, kind: DriftKind) -> u64 {
        match kind {
            DriftKind::MissingView => self.missing_view,
            DriftKind::StaleVersion => self.stale_version,
            DriftKind::DifferentFields => self.different_fields,
            DriftKind::OrphanView => self.orphan_view,
        }
    }

    fn slot(&mut self, kind: DriftKind) -> &mut u64 {
        match kind {
            DriftKind::MissingView => &mut self.missing_view,
            DriftKind::StaleVersion => &mut self.stale_version,
            DriftKind::DifferentFields => &mut self.different_fields,
            DriftKind::OrphanView => &mut self.orphan_view,
        }
    }

    pub fn total(&self) -> u64 {
        DriftKind::ALL.iter().map(|&kind| self.get(kind)).sum()
    }
}

impl Tally {
    pub(super) fn add(&mut self, other: &Tally) {
        self.orders += other.orders;
        self.events += other.events;
        self.views_checked += other.views_checked;
        self.written += other.written;
        self.deleted += other.deleted;
        self.in_sync += other.in_sync;
        self.loaded += other.loaded;
        self.failed += other.failed;
        for kind in DriftKind::ALL {
            *self.drift.slot(kind) += other.drift.get(kind);
        }
    }

    pub(super) fn count_drift(&mut self, kind: DriftKind) {
        *self.drift.slot(kind) += 1;
    }
}

/// Where one segment's scan stands: resume strictly after `after`; `done` once it is read to
/// the end and everything it held is settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position<K> {
    pub after: Option<K>,
    pub done: bool,
}

impl<K> Default for Position<K> {
    fn default() -> Self {
        Self {
            after: None,
            done: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The run this belongs to, as the caller describes it (backend, tables, scope, mode,
    /// segments): a checkpoint resumes only the same run.
    pub run: String,
    pub segments: Vec<ScanSegment>,
    /// Pass 1, events to views: per segment, the key of the last event of the last order
    /// settled.
    pub events: Vec<Position<EventKey>>,
    /// Pass 2, orphan views: per segment, the last view checked.
    pub views: Vec<Position<OrderId>>,
    pub tally: Tally,
    /// The first differences, up to the run's limit.
    pub drifts: Vec<Drift>,
}

impl Checkpoint {
    pub(super) fn new(run: String, segments: Vec<ScanSegment>) -> Self {
        Self {
            run,
            events: segments.iter().map(|_| Position::default()).collect(),
            views: segments.iter().map(|_| Position::default()).collect(),
            segments,
            tally: Tally::default(),
            drifts: Vec::new(),
        }
    }

    /// The checkpoint saved at `path`, if there is one.
    pub fn load(path: &Path) -> io::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a replay checkpoint: {err}", path.display()),
                )
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Writes a temporary file next to `path` and renames it over `path`, so a crash mid-write
    /// leaves the previous checkpoint whole.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    /// Whether both passes have settled every segment.
    pub fn is_done(&self) -> bool {
        self.events.iter().all(|p| p.done) && self.views.iter().all(|p| p.done)
    }
}
