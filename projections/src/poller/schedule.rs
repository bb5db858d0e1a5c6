//! The poller's scheduling of one stream's shards: which shards may be read (a child after
//! its parent), when each is polled next, and what one poll of a shard does (the batch to the
//! handler, the partial batch response, the trimmed and closed cases).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;

// Tokio's clock, so the tests can run the poller on a paused one and count its calls per
// simulated second.
use tokio::time::Instant;

use super::convert::lambda_event;
use super::reader::{IteratorStart, ListedShard, StreamsApi, StreamsError};
use super::{BoxError, PollerConfig, StartPosition, StreamHandler};

/// What the poller knows of one shard.
#[derive(Debug)]
struct Shard {
    parent: Option<String>,
    /// Receives no more records: listed with an `EndingSequenceNumber`, or some listed shard
    /// names it as its parent.
    closed: bool,
    /// The iterator for the next `GetRecords`, when one is in hand.
    iterator: Option<String>,
    /// Where to get a new iterator.
    position: Resume,
    /// Done with: read to its end (a closed shard whose iterator ran out), or trimmed away.
    /// Its children may be read.
    finished: bool,
    /// Consecutive failed attempts, for the backoff.
    failures: u32,
    /// Consecutive empty reads, for the idle wait.
    empty_reads: u32,
    /// When to poll it next: later after an empty read or a failure, so a shard that has
    /// records never waits for one that backs off.
    due: Instant,
}

impl Shard {
    fn new(listed: &ListedShard, now: Instant) -> Self {
        Self {
            parent: listed.parent.clone(),
            closed: listed.closed,
            iterator: None,
            position: Resume::Start,
            finished: false,
            failures: 0,
            empty_reads: 0,
            due: now,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Resume {
    /// Nothing read yet: where [`PollerConfig::start`] says.
    Start,
    /// The oldest record the shard keeps (`TRIM_HORIZON`): the position was trimmed away.
    OldestKept,
    /// After the last committed record.
    After(String),
    /// At a record that failed.
    At(String),
}

/// What one poll of a shard came to.
#[derive(Debug, PartialEq, Eq)]
enum Polled {
    /// A batch went to the handler and was committed: poll again at once.
    Delivered,
    /// Nothing new: poll again after the idle wait, which grows while the shard stays empty.
    Empty,
    /// The position moved without reading (trimmed, or an expired iterator): poll again at
    /// once from the new position.
    Moved,
    /// The shard is done with: its children may be read.
    Finished,
}

/// The poller's loop over one stream's shards.
///
/// Each shard has its own next-poll instant ([`Shard::due`]): the loop polls the shards that
/// are due, then sleeps until the earliest next one. A shard with records is due again at
/// once, an empty one after [`PollerConfig::idle_wait_after`] its empty reads in a row (up to
/// a second), a failing one after its own backoff, so one shard's failures never delay the
/// others. The shard listing (`DescribeStream`, which AWS allows 10 times a second) is
/// refreshed every [`PollerConfig::shard_refresh`] and in the turn after a shard ends,
/// however busy the shards are: never per `GetRecords`.
pub(super) struct ShardScheduler<'a> {
    api: &'a dyn StreamsApi,
    stream_arn: &'a str,
    region: &'a str,
    config: &'a PollerConfig,
    handler: &'a dyn StreamHandler,
    shards: BTreeMap<String, Shard>,
    next_refresh: Instant,
    /// Consecutive failed listings, for their backoff.
    refresh_failures: u32,
}

impl<'a> ShardScheduler<'a> {
    pub(super) fn new(
        api: &'a dyn StreamsApi,
        stream_arn: &'a str,
        region: &'a str,
        config: &'a PollerConfig,
        handler: &'a dyn StreamHandler,
    ) -> Self {
        Self {
            api,
            stream_arn,
            region,
            config,
            handler,
            shards: BTreeMap::new(),
            next_refresh: Instant::now(),
            refresh_failures: 0,
        }
    }

    pub(super) async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wake = self.turn().await;
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Refreshes the shard listing if it is due and polls every shard that is due; returns
    /// when the next one is.
    async fn turn(&mut self) -> Instant {
        let now = Instant::now();
        if now >= self.next_refresh {
            let wait = match self.refresh_shards(now).await {
                Ok(()) => {
                    self.refresh_failures = 0;
                    self.config.shard_refresh
                }
                // A throttled or failed listing is retried after a backoff rather than a whole
                // `shard_refresh`: it may be the one a shard's end asked for.
                Err(error) => {
                    self.refresh_failures += 1;
                    let delay = self
                        .config
                        .retry
                        .delay(self.refresh_failures)
                        .min(self.config.shard_refresh);
                    tracing::warn!(consumer = %self.config.name, %error, attempts = self.refresh_failures, retry_in_ms = delay.as_millis() as u64, "cannot list the stream's shards; retrying");
                    delay
                }
            };
            self.next_refresh = Instant::now() + wait;
        }
        let due: Vec<String> = self
            .readable()
            .filter(|(_, shard)| shard.due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for shard_id in due {
            let mut shard = self.shards.remove(&shard_id).expect("listed above");
            let polled = self.poll_shard(&shard_id, &mut shard).await;
            // From the end of the poll, so a backoff is never shortened by the poll's length.
            let now = Instant::now();
            match polled {
                Ok(Polled::Delivered) => {
                    shard.failures = 0;
                    shard.empty_reads = 0;
                    shard.due = now;
                }
                Ok(Polled::Moved) => shard.due = now,
                Ok(Polled::Empty) => {
                    shard.failures = 0;
                    shard.empty_reads += 1;
                    shard.due = now + self.config.idle_wait_after(shard.empty_reads);
                }
                // A shard ends when the stream rolls it over or splits it: its children are
                // listed from then on, so the shards are listed again in the next turn.
                Ok(Polled::Finished) => {
                    shard.finished = true;
                    self.next_refresh = now;
                }
                Err(error) => {
                    shard.failures += 1;
                    let delay = self.config.retry.delay(shard.failures);
                    shard.due = now + delay;
                    tracing::warn!(consumer = %self.config.name, shard = %shard_id, %error, attempts = shard.failures, retry_in_ms = delay.as_millis() as u64, "stream read failed");
                }
            }
            self.shards.insert(shard_id, shard);
        }
        // A child whose parent finished in this turn is due already: it is in this minimum.
        self.readable()
            .map(|(_, shard)| shard.due)
            .fold(self.next_refresh, Instant::min)
    }

    /// The shards that may be read now: unfinished, and their parent (if still known)
    /// finished, which keeps each item's records in order across a shard split.
    fn readable(&self) -> impl Iterator<Item = (&String, &Shard)> {
        self.shards.iter().filter(|(_, shard)| {
            !shard.finished
                && shard
                    .parent
                    .as_ref()
                    .and_then(|parent| self.shards.get(parent))
                    .is_none_or(|parent| parent.finished)
        })
    }

    /// Lists the stream's shards: adds the new ones, marks the closed ones, and forgets the
    /// ones no longer listed. A shard leaves the listing once its records are all trimmed
    /// (some time within 24 hours after that), so an unfinished one that left is done with:
    /// its children no longer wait for it.
    async fn refresh_shards(&mut self, now: Instant) -> Result<(), StreamsError> {
        let mut listed: Vec<ListedShard> = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page = self.api.list_shards(self.stream_arn, start.take()).await?;
            listed.extend(page.shards);
            match page.last_evaluated {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        let parents: HashSet<&str> = listed.iter().filter_map(|s| s.parent.as_deref()).collect();
        let ids: HashSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
        self.shards.retain(|id, shard| {
            let kept = ids.contains(id.as_str());
            if !kept && !shard.finished {
                tracing::warn!(consumer = %self.config.name, shard = %id, "the shard is no longer listed before it was read to its end: its remaining records were trimmed (kept 24 hours) and are lost to this consumer; its children are read now");
            }
            kept
        });
        for shard in &listed {
            let closed = shard.closed || parents.contains(shard.id.as_str());
            self.shards
                .entry(shard.id.clone())
                .or_insert_with(|| Shard::new(shard, now))
                .closed |= closed;
        }
        Ok(())
    }

    /// One `GetRecords` on one shard (after a `GetShardIterator` if no iterator is in hand)
    /// and, if it returned records, one handler call.
    async fn poll_shard(&self, shard_id: &str, shard: &mut Shard) -> Result<Polled, BoxError> {
        // An iterator just obtained from the saved position, rather than one held from the
        // last read: a failure of a fresh one is the position's, not the iterator's.
        let fresh = shard.iterator.is_none();
        let iterator = match shard.iterator.take() {
            Some(iterator) => iterator,
            None => {
                let from = match &shard.position {
                    Resume::Start => match self.config.start {
                        StartPosition::TrimHorizon => IteratorStart::TrimHorizon,
                        StartPosition::Latest => IteratorStart::Latest,
                    },
                    Resume::OldestKept => IteratorStart::TrimHorizon,
                    Resume::After(sequence) => IteratorStart::After(sequence),
                    Resume::At(sequence) => IteratorStart::At(sequence),
                };
                match self
                    .api
                    .shard_iterator(self.stream_arn, shard_id, from)
                    .await
                {
                    Ok(Some(iterator)) => iterator,
                    // No iterator on a closed shard: nothing is left to read there.
                    Ok(None) if shard.closed => {
                        tracing::warn!(consumer = %self.config.name, shard = %shard_id, position = ?shard.position, "the closed shard has no iterator: read to its end, or its records were trimmed (kept 24 hours) before they were read; its children are read now");
                        return Ok(Polled::Finished);
                    }
                    Ok(None) => return Err(format!("no iterator for shard {shard_id}").into()),
                    Err(error) => return self.unreadable(shard_id, shard, error, true),
                }
            }
        };
        let page = match self.api.records(iterator, self.config.batch_size).await {
            Ok(page) => page,
            // A new iterator from the saved position continues where this one was.
            Err(StreamsError::ExpiredIterator(_)) if !fresh => return Ok(Polled::Moved),
            Err(error) => return self.unreadable(shard_id, shard, error, fresh),
        };
        if page.records.is_empty() {
            return Ok(match page.next_iterator {
                Some(next) => {
                    shard.iterator = Some(next);
                    Polled::Empty
                }
                None => self.finished(shard_id, shard),
            });
        }
        let event = lambda_event(&page.records, self.stream_arn, self.region);
        let sequence_numbers: Vec<String> = event
            .records
            .iter()
            .map(|r| r.change.sequence_number.clone().unwrap_or_default())
            .collect();
        let failed_at: Option<String> = match self.handler.handle(event).await {
            Ok(response) => response
                .batch_item_failures
                .iter()
                .filter_map(|failure| failure.item_identifier.clone())
                .min_by(|a: &String, b: &String| compare_sequence_numbers(a, b)),
            Err(error) => {
                tracing::warn!(consumer = %self.config.name, shard = %shard_id, %error, "the handler failed the whole batch");
                Some(sequence_numbers[0].clone())
            }
        };
        match failed_at {
            None => {
                shard.position = sequence_numbers
                    .last()
                    .cloned()
                    .map_or(Resume::Start, Resume::After);
                Ok(match page.next_iterator {
                    Some(next) => {
                        shard.iterator = Some(next);
                        Polled::Delivered
                    }
                    None => self.finished(shard_id, shard),
                })
            }
            Some(failed) => {
                let committed = sequence_numbers
                    .iter()
                    .filter(|s| compare_sequence_numbers(s, &failed).is_lt())
                    .count();
                shard.position = Resume::At(failed.clone());
                Err(format!(
                    "batch failed at record {failed} ({committed} of {} records before it committed)",
                    sequence_numbers.len()
                )
                .into())
            }
        }
    }

    /// A shard cannot be read from its position (`fresh`: with an iterator just obtained for
    /// it): a trimmed position moves to the oldest record kept; a closed shard that is trimmed
    /// even there, or gone, is done with, so its children are read; any other failure is
    /// retried after the shard's backoff.
    fn unreadable(
        &self,
        shard_id: &str,
        shard: &mut Shard,
        error: StreamsError,
        fresh: bool,
    ) -> Result<Polled, BoxError> {
        match error {
            StreamsError::Trimmed(_) if !fresh || shard.position != Resume::OldestKept => {
                tracing::warn!(consumer = %self.config.name, shard = %shard_id, %error, "records were trimmed before they were read (kept 24 hours); continuing from the oldest kept");
                shard.position = Resume::OldestKept;
                Ok(Polled::Moved)
            }
            StreamsError::Trimmed(_) | StreamsError::NotFound(_) if shard.closed => {
                tracing::warn!(consumer = %self.config.name, shard = %shard_id, %error, "the closed shard cannot be read any more: its records may have been trimmed (kept 24 hours) before they were read; its children are read now");
                Ok(Polled::Finished)
            }
            error => Err(error.into()),
        }
    }

    fn finished(&self, shard_id: &str, shard: &Shard) -> Polled {
        tracing::debug!(consumer = %self.config.name, shard = %shard_id, position = ?shard.position, "the closed shard is read to its end");
        Polled::Finished
    }
}

/// Stream sequence numbers are decimal strings of varying length: compare them as numbers.
fn compare_sequence_numbers(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}
