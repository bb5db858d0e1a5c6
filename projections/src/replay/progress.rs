//! What a running replay shows while it runs: its phase and live counts, for a progress bar or
//! log lines.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// Which pass a run is in, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Planning,
    Events,
    Views,
    Done,
}

/// Live counters for a progress display, updated as pages are read.
#[derive(Debug, Default)]
pub struct Progress {
    events: AtomicU64,
    views: AtomicU64,
    /// 0: unknown.
    estimate: AtomicU64,
    phase: AtomicU8,
}

impl Progress {
    /// Events scanned so far (counting those of resumed runs).
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Views read by the orphan pass so far.
    pub fn views(&self) -> u64 {
        self.views.load(Ordering::Relaxed)
    }

    /// The event store's approximate size, if known.
    pub fn estimated_events(&self) -> Option<u64> {
        Some(self.estimate.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Planning,
            1 => Phase::Events,
            2 => Phase::Views,
            _ => Phase::Done,
        }
    }

    pub(super) fn set_phase(&self, phase: Phase) {
        let code = match phase {
            Phase::Planning => 0,
            Phase::Events => 1,
            Phase::Views => 2,
            Phase::Done => 3,
        };
        self.phase.store(code, Ordering::Relaxed);
    }

    pub(super) fn set_estimate(&self, events: Option<u64>) {
        self.estimate.store(events.unwrap_or(0), Ordering::Relaxed);
    }

    pub(super) fn count_events(&self, events: u64) {
        self.events.fetch_add(events, Ordering::Relaxed);
    }

    pub(super) fn count_views(&self, views: u64) {
        self.views.fetch_add(views, Ordering::Relaxed);
    }
}
