//! Where `now` comes from. The domain never reads a clock and neither do the stores: the
//! application reads its [`Clock`] once per command and passes that instant down (to `decide`,
//! to [`IdempotencyStore::get`](crate::IdempotencyStore::get) and in
//! [`AppendRequest::now`](crate::AppendRequest::now)), so one command is judged at one time
//! and tests fix it by giving the application another clock.

use std::time::{SystemTime, UNIX_EPOCH};

use orders_domain::Timestamp;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time: the one place the process reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_millis(millis)
    }
}
