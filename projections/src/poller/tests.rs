//! The poller's shard scheduling against a scripted stream ([`ScriptedStream`], the Streams
//! calls only; the poller on DynamoDB Local is in `tests/stream_e2e.rs`): trimmed and gone
//! parents do not hold their children back, one shard's backoff does not delay another, the
//! shard listing is not repeated for every batch, and an idle shard is read about once a
//! second (counted on tokio's paused clock, so no figure depends on the machine's speed).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use aws_sdk_dynamodbstreams::types::{OperationType, Record, StreamRecord};

use super::reader::{IteratorStart, ListedShard, RecordPage, ShardPage, StreamsApi, StreamsError};
use super::schedule::ShardScheduler;
use super::*;

/// How a scripted call fails, every time it is made.
#[derive(Debug, Clone, Copy)]
enum Fails {
    Trimmed,
    Expired,
    NotFound,
    Internal,
}

impl Fails {
    fn error(self, shard: &str) -> StreamsError {
        match self {
            Self::Trimmed => StreamsError::Trimmed(format!(
                "TrimmedDataAccessException: shard {shard} was trimmed"
            )),
            Self::Expired => StreamsError::ExpiredIterator(format!(
                "ExpiredIteratorException: the iterator of shard {shard} expired"
            )),
            Self::NotFound => StreamsError::NotFound(format!(
                "ResourceNotFoundException: shard {shard} does not exist"
            )),
            Self::Internal => {
                StreamsError::Other(format!("InternalServerError: shard {shard} is unwell"))
            }
        }
    }
}

#[derive(Debug, Default)]
struct ScriptedShard {
    parent: Option<&'static str>,
    closed: bool,
    /// The records' sequence numbers, in order.
    records: Vec<String>,
    get_shard_iterator_fails: Option<Fails>,
    get_records_fails: Option<Fails>,
    /// `GetRecords` calls on this shard (counted from 1) that fail, and how.
    get_records_fails_at: Vec<(usize, Fails)>,
    /// Listed by the first this many listings only (then trimmed away); `None`: always.
    listed_times: Option<usize>,
    /// Listed from this listing on (counted from 1), as a child appears when its parent is
    /// closed; `None`: from the first.
    listed_from: Option<usize>,
}

impl ScriptedShard {
    /// `count` records with sequence numbers that sort by `prefix`, then position.
    fn with_records(prefix: u8, count: usize) -> Self {
        Self {
            records: (1..=count).map(|n| format!("{prefix}{n:020}")).collect(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    /// A `DescribeStream` page; `first` for the first page of a listing.
    ListShards {
        first: bool,
    },
    GetShardIterator {
        shard: String,
        from: String,
    },
    GetRecords {
        shard: String,
        at: Instant,
    },
}

/// A stream of scripted shards. Iterators are `shard#offset`; `DescribeStream` pages hold one
/// shard each, so every listing goes through `LastEvaluatedShardId`.
#[derive(Debug, Default)]
struct ScriptedStream {
    shards: BTreeMap<&'static str, ScriptedShard>,
    /// Records written to a shard while the poller runs ([`ScriptedStream::append`]).
    appended: Mutex<BTreeMap<String, Vec<String>>>,
    /// The first this many `DescribeStream` calls fail (throttled).
    listings_fail: usize,
    calls: Mutex<Vec<Call>>,
}

impl ScriptedStream {
    fn new(shards: impl IntoIterator<Item = (&'static str, ScriptedShard)>) -> Self {
        Self {
            shards: shards.into_iter().collect(),
            appended: Mutex::default(),
            listings_fail: 0,
            calls: Mutex::default(),
        }
    }

    /// Writes `count` more records to an open shard; returns their sequence numbers.
    fn append(&self, shard_id: &str, count: usize) -> Vec<String> {
        let mut records = self.records_of(shard_id);
        let first = records.len() + 1;
        let prefix = records
            .first()
            .map_or_else(|| "9".to_owned(), |r| r[..1].to_owned());
        let new: Vec<String> = (first..first + count)
            .map(|n| format!("{prefix}{n:020}"))
            .collect();
        records.extend(new.iter().cloned());
        self.appended
            .lock()
            .unwrap()
            .entry(shard_id.to_owned())
            .or_default()
            .extend(new.iter().cloned());
        new
    }

    /// A shard's records: the scripted ones, then the appended ones.
    fn records_of(&self, shard_id: &str) -> Vec<String> {
        let scripted = self
            .shards
            .get(shard_id)
            .map(|shard| shard.records.clone())
            .unwrap_or_default();
        let appended = self.appended.lock().unwrap().get(shard_id).cloned();
        [scripted, appended.unwrap_or_default()].concat()
    }

    /// When each `GetRecords` on `shard_id` was made.
    fn reads_of(&self, shard_id: &str) -> Vec<Instant> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::GetRecords { shard, at } if shard == shard_id => Some(at),
                _ => None,
            })
            .collect()
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn count(&self, matches: impl Fn(&Call) -> bool) -> usize {
        self.calls().iter().filter(|call| matches(call)).count()
    }

    fn listings(&self) -> usize {
        self.count(|call| *call == Call::ListShards { first: true })
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    fn shard(&self, id: &str) -> Result<&ScriptedShard, StreamsError> {
        self.shards.get(id).ok_or_else(|| Fails::NotFound.error(id))
    }
}

#[async_trait]
impl StreamsApi for ScriptedStream {
    async fn list_shards(
        &self,
        _stream_arn: &str,
        exclusive_start: Option<String>,
    ) -> Result<ShardPage, StreamsError> {
        self.record(Call::ListShards {
            first: exclusive_start.is_none(),
        });
        let listing = self.listings();
        if listing <= self.listings_fail {
            return Err(StreamsError::Other(
                "LimitExceededException: DescribeStream is throttled".to_owned(),
            ));
        }
        let mut listed = self
            .shards
            .iter()
            .filter(|(_, shard)| shard.listed_times.is_none_or(|times| listing <= times))
            .filter(|(_, shard)| shard.listed_from.is_none_or(|from| listing >= from))
            .filter(|(id, _)| exclusive_start.as_deref().is_none_or(|start| **id > start));
        let Some((id, shard)) = listed.next() else {
            return Ok(ShardPage::default());
        };
        Ok(ShardPage {
            shards: vec![ListedShard {
                id: (*id).to_owned(),
                parent: shard.parent.map(str::to_owned),
                closed: shard.closed,
            }],
            last_evaluated: listed.next().map(|_| (*id).to_owned()),
        })
    }

    async fn shard_iterator(
        &self,
        _stream_arn: &str,
        shard_id: &str,
        from: IteratorStart<'_>,
    ) -> Result<Option<String>, StreamsError> {
        self.record(Call::GetShardIterator {
            shard: shard_id.to_owned(),
            from: format!("{from:?}"),
        });
        let shard = self.shard(shard_id)?;
        if let Some(fails) = shard.get_shard_iterator_fails {
            return Err(fails.error(shard_id));
        }
        let records = self.records_of(shard_id);
        let position = |sequence: &str| records.iter().position(|s| s == sequence);
        let offset = match from {
            IteratorStart::TrimHorizon => 0,
            IteratorStart::Latest => records.len(),
            IteratorStart::After(sequence) => position(sequence).expect("a known record") + 1,
            IteratorStart::At(sequence) => position(sequence).expect("a known record"),
        };
        Ok(Some(format!("{shard_id}#{offset}")))
    }

    async fn records(&self, iterator: String, limit: i32) -> Result<RecordPage, StreamsError> {
        let (shard_id, offset) = iterator.split_once('#').expect("a scripted iterator");
        self.record(Call::GetRecords {
            shard: shard_id.to_owned(),
            at: Instant::now(),
        });
        let shard = self.shard(shard_id)?;
        let call =
            self.count(|call| matches!(call, Call::GetRecords { shard, .. } if shard == shard_id));
        let scripted = shard
            .get_records_fails_at
            .iter()
            .find(|(at, _)| *at == call);
        if let Some(fails) = shard
            .get_records_fails
            .or(scripted.map(|(_, fails)| *fails))
        {
            return Err(fails.error(shard_id));
        }
        let offset: usize = offset.parse().expect("a scripted offset");
        let all = self.records_of(shard_id);
        let end = (offset + usize::try_from(limit).unwrap()).min(all.len());
        let records = all[offset..end]
            .iter()
            .map(|sequence| {
                Record::builder()
                    .event_name(OperationType::Insert)
                    .dynamodb(StreamRecord::builder().sequence_number(sequence).build())
                    .build()
            })
            .collect();
        let next_iterator =
            (!(shard.closed && end == all.len())).then(|| format!("{shard_id}#{end}"));
        Ok(RecordPage {
            records,
            next_iterator,
        })
    }
}

/// A handler that accepts every batch and keeps the sequence numbers it was given.
#[derive(Debug, Default)]
struct Recorder {
    delivered: Mutex<Vec<String>>,
}

impl Recorder {
    fn delivered(&self) -> Vec<String> {
        self.delivered.lock().unwrap().clone()
    }
}

#[async_trait]
impl StreamHandler for Recorder {
    async fn handle(&self, event: DynamoDbEvent) -> Result<DynamoDbEventResponse, BoxError> {
        self.delivered.lock().unwrap().extend(
            event
                .records
                .iter()
                .map(|r| r.change.sequence_number.clone().expect("scripted")),
        );
        Ok(DynamoDbEventResponse::default())
    }
}

fn config(retry_base: Duration, retry_max: Duration) -> PollerConfig {
    let mut config = PollerConfig::new("test");
    config.batch_size = 1;
    config.idle_wait = Duration::from_millis(5);
    config.max_idle_wait = Duration::from_millis(5);
    config.shard_refresh = Duration::from_millis(20);
    config.retry = RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: retry_base,
        max_delay: retry_max,
    };
    config
}

/// Runs the poller on `stream` until `done` holds (checked every few milliseconds) or
/// `limit` has passed; returns how long it ran.
async fn poll_until(
    stream: &ScriptedStream,
    handler: &Recorder,
    config: &PollerConfig,
    limit: Duration,
    done: impl Fn(&ScriptedStream, &Recorder) -> bool,
) -> Duration {
    let started = Instant::now();
    let scheduler = ShardScheduler::new(stream, "arn:stream", "us-east-1", config, handler);
    let done = async {
        while !done(stream, handler) && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    scheduler.run(done).await;
    started.elapsed()
}

const LIMIT: Duration = Duration::from_secs(10);

/// A stream of `parent` ("shard-1-parent") and its child ("shard-2-child", records 2 and 3).
fn parent_and_child(parent: ScriptedShard) -> ScriptedStream {
    ScriptedStream::new([
        ("shard-1-parent", parent),
        (
            "shard-2-child",
            ScriptedShard {
                parent: Some("shard-1-parent"),
                ..ScriptedShard::with_records(2, 3)
            },
        ),
    ])
}

/// Polls `stream` until the child's records are delivered (or [`LIMIT`]); returns them and
/// what was delivered.
async fn read_the_child(stream: &ScriptedStream) -> (Vec<String>, Recorder) {
    let child = stream.shards["shard-2-child"].records.clone();
    let handler = Recorder::default();
    let config = config(Duration::from_millis(20), Duration::from_millis(100));
    poll_until(stream, &handler, &config, LIMIT, |_, handler| {
        handler.delivered().len() >= child.len()
    })
    .await;
    (child, handler)
}

#[tokio::test]
async fn a_closed_parent_whose_records_are_trimmed_lets_its_child_be_read() {
    for parent_fails in [Fails::Trimmed, Fails::NotFound] {
        let stream = parent_and_child(ScriptedShard {
            closed: true,
            get_shard_iterator_fails: Some(parent_fails),
            ..ScriptedShard::with_records(1, 2)
        });
        let (child, handler) = read_the_child(&stream).await;

        assert_eq!(
            handler.delivered(),
            child,
            "{parent_fails:?}: the child is read"
        );
        // Trimmed: from TRIM_HORIZON instead of the start position, then given up; gone: given
        // up at once. Never retried after that.
        let parent_attempts = stream.count(
            |call| matches!(call, Call::GetShardIterator { shard, .. } if shard == "shard-1-parent"),
        );
        assert!(
            (1..=2).contains(&parent_attempts),
            "{parent_fails:?}: the parent was tried {parent_attempts} times"
        );
    }
}

#[tokio::test]
async fn a_closed_parent_that_reads_empty_to_its_end_lets_its_child_be_read() {
    // A parent whose records were all trimmed but that is still listed: its iterator reads
    // nothing and then no next iterator.
    let stream = parent_and_child(ScriptedShard {
        closed: true,
        ..ScriptedShard::default()
    });
    let (child, handler) = read_the_child(&stream).await;

    assert_eq!(handler.delivered(), child);
    let parent_reads = stream
        .count(|call| matches!(call, Call::GetRecords { shard, .. } if shard == "shard-1-parent"));
    assert_eq!(parent_reads, 1, "the parent is read once, to its end");
}

#[tokio::test]
async fn a_parent_that_leaves_the_listing_unread_lets_its_child_be_read() {
    // The parent cannot be read at all, and after the first listing it is trimmed away.
    let stream = parent_and_child(ScriptedShard {
        get_shard_iterator_fails: Some(Fails::Internal),
        listed_times: Some(1),
        ..ScriptedShard::with_records(1, 2)
    });
    let (child, handler) = read_the_child(&stream).await;

    assert_eq!(handler.delivered(), child);
    assert!(
        stream.listings() >= 2,
        "the child waited for a second listing"
    );
}

#[tokio::test]
async fn a_failing_shard_backs_off_alone_while_another_shard_is_read() {
    // Shard A's GetRecords always fails; shard B has five batches. A's first retry is at
    // least half a second away, far more than B's five in-memory batches take.
    let stream = ScriptedStream::new([
        (
            "shard-a",
            ScriptedShard {
                get_records_fails: Some(Fails::Internal),
                ..ScriptedShard::with_records(1, 3)
            },
        ),
        ("shard-b", ScriptedShard::with_records(2, 5)),
    ]);
    let b = stream.shards["shard-b"].records.clone();
    let handler = Recorder::default();
    let retry_base = Duration::from_secs(1);
    let retry_max = Duration::from_secs(2);
    let config = config(retry_base, retry_max);
    let reads_of_a = |stream: &ScriptedStream| -> Vec<Instant> {
        stream
            .calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::GetRecords { shard, at } if shard == "shard-a" => Some(at),
                _ => None,
            })
            .collect()
    };
    poll_until(&stream, &handler, &config, LIMIT, |stream, handler| {
        handler.delivered().len() >= b.len() && reads_of_a(stream).len() >= 4
    })
    .await;

    assert_eq!(handler.delivered(), b, "B's records, in order");
    // B's five batches came between A's first and second attempt: B never waited for A.
    let calls = stream.calls();
    let second_read_of_a = calls
        .iter()
        .enumerate()
        .filter(|(_, call)| matches!(call, Call::GetRecords { shard, .. } if shard == "shard-a"))
        .nth(1)
        .map(|(index, _)| index)
        .expect("A was retried");
    let reads_of_b_before = calls[..second_read_of_a]
        .iter()
        .filter(|call| matches!(call, Call::GetRecords { shard, .. } if shard == "shard-b"))
        .count();
    assert!(
        reads_of_b_before >= b.len(),
        "only {reads_of_b_before} reads of B before A's first retry"
    );
    // A is retried with its own, growing backoff: retry n waits at least half of
    // min(max, base * 2^(n-1)) ("equal jitter"), measured from the end of the failed call.
    let reads = reads_of_a(&stream);
    assert!(reads.len() >= 4, "A was read {} times", reads.len());
    for (retry, pair) in (1u32..).zip(reads.windows(2).take(3)) {
        let ceiling = retry_base.saturating_mul(1 << (retry - 1)).min(retry_max);
        let waited = pair[1] - pair[0];
        assert!(
            waited >= ceiling / 2,
            "retry {retry} of A came after {waited:?}, before {:?}",
            ceiling / 2
        );
    }
}

#[tokio::test]
async fn the_shard_listing_is_not_repeated_for_every_batch() {
    // Fifty batches back to back: the listing is refreshed at most once per `shard_refresh`.
    let stream = ScriptedStream::new([("shard-1", ScriptedShard::with_records(1, 50))]);
    let handler = Recorder::default();
    let mut config = config(Duration::from_millis(20), Duration::from_millis(100));
    config.shard_refresh = Duration::from_secs(1);
    let ran = poll_until(&stream, &handler, &config, LIMIT, |_, handler| {
        handler.delivered().len() >= 50
    })
    .await;

    assert_eq!(handler.delivered().len(), 50);
    let allowed = 1 + ran.as_millis() / config.shard_refresh.as_millis();
    let listings = stream.listings() as u128;
    assert!(
        listings <= allowed,
        "{listings} listings in {ran:?}, at most {allowed} allowed"
    );
}

#[tokio::test]
async fn an_expired_iterator_resumes_at_the_position_and_a_trimmed_one_at_the_oldest_record() {
    // The second read finds its iterator expired, the fourth finds its position trimmed.
    let stream = ScriptedStream::new([(
        "shard-1",
        ScriptedShard {
            get_records_fails_at: vec![(2, Fails::Expired), (4, Fails::Trimmed)],
            ..ScriptedShard::with_records(1, 4)
        },
    )]);
    let records = stream.shards["shard-1"].records.clone();
    let handler = Recorder::default();
    let config = config(Duration::from_millis(20), Duration::from_millis(100));
    poll_until(&stream, &handler, &config, LIMIT, |_, handler| {
        handler.delivered().ends_with(&records[3..])
    })
    .await;

    let iterators: Vec<String> = stream
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::GetShardIterator { from, .. } => Some(from),
            _ => None,
        })
        .collect();
    assert_eq!(
        iterators,
        [
            "TrimHorizon".to_owned(),
            format!("After({:?})", records[0]),
            "TrimHorizon".to_owned(),
        ],
        "a new iterator after the expired one, from the committed position; from the oldest \
         record kept after the trimmed one"
    );
    // Nothing skipped; what the scripted stream still kept after the trim comes again.
    assert_eq!(
        handler.delivered(),
        [&records[..2], &records[..]].concat(),
        "delivered in order, at least once"
    );
}

/// Runs the poller on `stream` for `period` of tokio's clock, with `meanwhile` (what the test
/// does to the stream) alongside.
async fn poll_for(
    stream: &ScriptedStream,
    handler: &Recorder,
    config: &PollerConfig,
    period: Duration,
    meanwhile: impl Future<Output = ()>,
) {
    let scheduler = ShardScheduler::new(stream, "arn:stream", "us-east-1", config, handler);
    tokio::join!(scheduler.run(tokio::time::sleep(period)), meanwhile);
}

/// The paused clock moves to a timer's deadline at millisecond granularity.
const TICK: Duration = Duration::from_millis(2);

#[tokio::test(start_paused = true)]
async fn idle_shards_are_read_about_once_a_second_by_each_poller_and_listed_rarely() {
    // Two empty shards, read by two pollers (the projector's and the publisher's) with the
    // defaults `orders serve` uses, for a minute.
    let stream = ScriptedStream::new([
        ("shard-a", ScriptedShard::default()),
        ("shard-b", ScriptedShard::default()),
    ]);
    let (projector, publisher) = (Recorder::default(), Recorder::default());
    let config = PollerConfig::new("test");
    let minute = Duration::from_secs(60);
    let start = Instant::now();
    let run = |handler| {
        let scheduler = ShardScheduler::new(&stream, "arn:stream", "us-east-1", &config, handler);
        scheduler.run(tokio::time::sleep(minute))
    };
    tokio::join!(run(&projector), run(&publisher));

    // After the ramp (50 ms doubling to 1 s: 1.55 s), about one read per second per poller:
    // both together stay far below anything AWS throttles (two readers per shard).
    let ramp = Duration::from_secs(2);
    for shard in ["shard-a", "shard-b"] {
        let reads = stream.reads_of(shard);
        let after_ramp = reads.iter().filter(|at| **at >= start + ramp).count();
        let seconds = (minute - ramp).as_secs() as usize;
        assert!(
            after_ramp <= 2 * (seconds + 1),
            "{shard}: {after_ramp} GetRecords by two pollers in {seconds} idle seconds"
        );
        assert!(
            after_ramp >= 2 * (seconds - 1),
            "{shard}: still polled, {after_ramp} GetRecords in {seconds} idle seconds"
        );
    }
    // Listed every `shard_refresh` (10 s) by each poller, not for every GetRecords.
    let allowed = 2 * (1 + minute.as_secs() / config.shard_refresh.as_secs()) as usize;
    assert!(
        stream.listings() <= allowed,
        "{} listings in a minute, at most {allowed} allowed",
        stream.listings()
    );
}

#[tokio::test(start_paused = true)]
async fn a_shard_with_records_is_read_again_at_once_and_its_idle_wait_grows_only_while_empty() {
    let stream = ScriptedStream::new([("shard-1", ScriptedShard::with_records(1, 50))]);
    let scripted = stream.shards["shard-1"].records.clone();
    let handler = Recorder::default();
    let mut config = PollerConfig::new("test");
    config.batch_size = 1;
    let start = Instant::now();
    // After a long idle spell, in the middle of an idle wait.
    let appended_at = start + Duration::from_millis(20_300);
    let appended = Mutex::new(Vec::new());
    poll_for(&stream, &handler, &config, Duration::from_secs(30), async {
        tokio::time::sleep_until(appended_at).await;
        *appended.lock().unwrap() = stream.append("shard-1", 3);
    })
    .await;
    let appended = appended.into_inner().unwrap();
    assert_eq!(handler.delivered(), [scripted, appended.clone()].concat());

    let reads = stream.reads_of("shard-1");
    // The fifty one-record batches and the empty read after them, back to back.
    assert!(
        reads[..51].iter().all(|at| *at - start < TICK),
        "a shard that returned records is read again at once: {:?}",
        reads[..51].iter().map(|at| *at - start).collect::<Vec<_>>()
    );
    // Empty, it waits 50 ms, then twice as long each time, up to a second.
    let before_append: Vec<Instant> = reads
        .iter()
        .copied()
        .filter(|at| *at < appended_at)
        .collect();
    for (empty_reads, pair) in (1u32..).zip(before_append[50..].windows(2)) {
        let waited = pair[1] - pair[0];
        let expected = config.idle_wait_after(empty_reads);
        assert!(
            waited >= expected && waited - expected < TICK,
            "after {empty_reads} empty reads it waited {waited:?}, not {expected:?}"
        );
    }
    assert_eq!(config.idle_wait_after(6), config.max_idle_wait);
    // The records written during the idle spell are read within the longest idle wait.
    let after: Vec<Instant> = reads
        .iter()
        .copied()
        .filter(|at| *at >= appended_at)
        .collect();
    assert!(
        after[0] - appended_at <= config.max_idle_wait,
        "the first read after the append came {:?} later",
        after[0] - appended_at
    );
    // Three batches at once and an empty read, then the idle wait starts over from 50 ms.
    assert!(after[..4].iter().all(|at| *at - after[0] < TICK));
    let waited = after[4] - after[3];
    assert!(
        waited >= config.idle_wait && waited - config.idle_wait < TICK,
        "after records, the idle wait starts over: waited {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shard_that_ends_lists_the_shards_at_once_and_its_child_is_read() {
    // The child is listed only once its parent is closed; the schedule alone would list the
    // shards again an hour later.
    let stream = ScriptedStream::new([
        (
            "shard-1-parent",
            ScriptedShard {
                closed: true,
                ..ScriptedShard::with_records(1, 2)
            },
        ),
        (
            "shard-2-child",
            ScriptedShard {
                parent: Some("shard-1-parent"),
                listed_from: Some(2),
                ..ScriptedShard::with_records(2, 2)
            },
        ),
    ]);
    let expected = [
        stream.shards["shard-1-parent"].records.clone(),
        stream.shards["shard-2-child"].records.clone(),
    ]
    .concat();
    let handler = Recorder::default();
    let mut config = PollerConfig::new("test");
    config.shard_refresh = Duration::from_secs(3600);
    let start = Instant::now();
    poll_for(&stream, &handler, &config, Duration::from_secs(5), async {}).await;

    assert_eq!(handler.delivered(), expected);
    assert_eq!(
        stream.listings(),
        2,
        "at the start, and when the parent ended"
    );
    let child = stream.reads_of("shard-2-child");
    assert!(
        child[0] - start < TICK,
        "the child is read as soon as its parent ends, {:?} later",
        child[0] - start
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_listing_is_retried_after_the_backoff_not_after_a_whole_shard_refresh() {
    // The first two listings are throttled; the schedule alone would list again an hour later.
    let stream = ScriptedStream {
        listings_fail: 2,
        ..ScriptedStream::new([("shard-1", ScriptedShard::with_records(1, 3))])
    };
    let records = stream.shards["shard-1"].records.clone();
    let handler = Recorder::default();
    let mut config = PollerConfig::new("test");
    config.shard_refresh = Duration::from_secs(3600);
    let start = Instant::now();
    poll_for(&stream, &handler, &config, Duration::from_secs(60), async {
    })
    .await;

    assert_eq!(handler.delivered(), records);
    assert_eq!(
        stream.listings(),
        3,
        "two throttled, then one that lists the shard"
    );
    // After the poller's backoff: retries 1 and 2 wait at most their ceilings (100, 200 ms).
    let first_read = stream.reads_of("shard-1")[0];
    assert!(
        first_read - start <= config.retry.ceiling(1) + config.retry.ceiling(2) + TICK,
        "read {:?} after the start",
        first_read - start
    );
}
