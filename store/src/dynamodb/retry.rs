//! The backoff of the adapter's own retries (transaction conflicts, unprocessed batch keys).

use std::time::Duration;

/// Jittered exponential backoff, "equal jitter": half the step fixed, half random.
pub(super) fn backoff(attempt: u32) -> Duration {
    const BASE_MICROS: u64 = 20_000;
    const MAX_MICROS: u64 = 1_000_000;
    let step = BASE_MICROS
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_MICROS);
    Duration::from_micros(step / 2 + rand::random_range(0..=step / 2))
}
