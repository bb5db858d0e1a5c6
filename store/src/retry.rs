//! The one retry policy: how many attempts, and how long to pause before each retry.
//!
//! Every loop of the service that waits and tries again takes its pauses from a
//! [`RetryPolicy`], and every policy is one of the constants below, so that their numbers can
//! be read side by side:
//!
//! | policy | used for | attempts | pause before retry n |
//! | --- | --- | --- | --- |
//! | [`TRANSACTION`](RetryPolicy::TRANSACTION) | DynamoDB transactions cancelled by a conflict or throttling (the append) | 5 | 40 ms · 2ⁿ⁻¹, up to 1 s |
//! | [`BATCH_GET`](RetryPolicy::BATCH_GET) | `BatchGetItem`'s unprocessed keys | 6 | 40 ms · 2ⁿ⁻¹, up to 1 s |
//! | [`TABLE_ACTIVE`](RetryPolicy::TABLE_ACTIVE) | `orders tables create`: a table (and a new table's GSIs) becoming ACTIVE | until 10 min | 100 ms · 2ⁿ⁻¹, up to 2 s |
//! | [`INDEX_ACTIVE`](RetryPolicy::INDEX_ACTIVE) | `orders tables create`: a GSI added to an existing table | until 30 s | 250 ms |
//! | [`PUBLISH`](RetryPolicy::PUBLISH) | the publisher's failed bus entries | 5 per entry | 50 ms · 2ⁿ⁻¹, up to 2 s |
//! | [`CONSUMER`](RetryPolicy::CONSUMER) | a stream consumer's failed batch or call: the change feed's consumers, the stream poller's shards | until it succeeds | 100 ms · 2ⁿ⁻¹, up to 5 s |
//!
//! Each pause is that figure with "equal jitter" ([`RetryPolicy::delay`]: a random point in its
//! upper half), except the two table waits: one process polling its own table has no one to
//! spread out from, so it pauses the figure itself ([`RetryPolicy::ceiling`]).
//!
//! Only the pauses are shared, not the loop around them. The loops differ in what they carry
//! from one attempt to the next (the adapter's writes or keys still pending), in how they wait
//! (the feed races the pause against shutdown, the poller sets a shard's next poll instead of
//! sleeping, the publisher pauses once per round for all its failed entries) and in what ends
//! them (a count, a deadline, shutdown). A retry combinator, ours or a crate's such as
//! `backon`, would fit one of them (the feed's final checkpoint save) and bend the others to
//! it; a plain type with one `delay` fits all of them.

use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included, where the caller bounds attempts at all
    /// (`u32::MAX`: retried until it succeeds, or until the caller's deadline).
    pub max_attempts: u32,
    /// The ceiling of the first retry's pause; it doubles per retry.
    pub base_delay: Duration,
    /// The ceiling no pause exceeds.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// DynamoDB transactions cancelled by a conflict or throttling: the append, and the
    /// read model's batched conditional writes. The first retry waits 20–40 ms.
    pub const TRANSACTION: Self = Self {
        max_attempts: 5,
        base_delay: Duration::from_millis(40),
        max_delay: Duration::from_secs(1),
    };

    /// The keys `BatchGetItem` leaves unprocessed (throttling).
    pub const BATCH_GET: Self = Self {
        max_attempts: 6,
        ..Self::TRANSACTION
    };

    /// `orders tables create`'s polls of a table that is not ACTIVE yet (with its indexes, for
    /// a new table); the caller's deadline, not a count, ends them.
    pub const TABLE_ACTIVE: Self = Self {
        max_attempts: u32::MAX,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    };

    /// `orders tables create`'s polls of a GSI added to an existing table, for a short grace
    /// (the caller's deadline): a steady pace, as the backfill takes minutes anyway.
    pub const INDEX_ACTIVE: Self = Self {
        max_attempts: u32::MAX,
        base_delay: Duration::from_millis(250),
        max_delay: Duration::from_millis(250),
    };

    /// The publisher's bus entries that failed: each is sent at most 5 times.
    pub const PUBLISH: Self = Self {
        max_attempts: 5,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(2),
    };

    /// A stream consumer's failed batch or call (the change feed's consumers, the stream
    /// poller's shards): retried until it succeeds, as a stream's event source mapping does.
    pub const CONSUMER: Self = Self {
        max_attempts: u32::MAX,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(5),
    };

    /// The pause before retry number `retry` (1 = the first retry): "equal jitter", a random
    /// point in the upper half of [`ceiling`](Self::ceiling), so that concurrent retriers
    /// spread out but none retries at once.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// `min(max_delay, base_delay * 2^(retry-1))`: the pause itself for a lone poller, which
    /// has no one to spread out from (the table waits), and the ceiling of [`delay`](Self::delay).
    pub fn ceiling(&self, retry: u32) -> Duration {
        self.base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stay_in_the_upper_half() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for (retry, ceiling) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let ceiling = Duration::from_millis(ceiling);
            for _ in 0..50 {
                let delay = policy.delay(retry);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "{retry}: {delay:?}"
                );
            }
        }
        // The DynamoDB adapter's own pauses, as they were before the policies were one type:
        // 20-40 ms before the first retry, 500 ms-1 s from the sixth on.
        for (retry, low, high) in [(1, 20, 40), (2, 40, 80), (6, 500, 1000), (9, 500, 1000)] {
            let delay = RetryPolicy::TRANSACTION.delay(retry);
            assert!(
                delay >= Duration::from_millis(low) && delay <= Duration::from_millis(high),
                "{retry}: {delay:?}"
            );
        }
    }
}
