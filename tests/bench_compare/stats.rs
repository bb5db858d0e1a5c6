//! Latency samples and their percentiles.

use serde_json::{Value, json};

/// Latencies in microseconds.
#[derive(Default)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn push(&mut self, d: std::time::Duration) {
        self.0
            .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The nearest-rank percentile `p` (0..=1) in milliseconds; NaN when empty.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let rank = (p * self.0.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.0.len()) - 1;
        f64::from(self.0[i]) / 1e3
    }

    /// `{"p50_ms":…,"p99_ms":…,"samples":…}`.
    pub fn summary(&mut self) -> Value {
        json!({
            "p50_ms": finite(self.percentile_ms(0.5)),
            "p99_ms": finite(self.percentile_ms(0.99)),
            "samples": self.len(),
        })
    }
}

/// A number for JSON: NaN and infinities become null.
pub fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 1e3).round() / 1e3)
    } else {
        Value::Null
    }
}

/// The median of the numbers (the mean of the middle two for an even count); None if empty.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some((values[(n - 1) / 2] + values[n / 2]) / 2.0)
}
