//! The service's metrics (issue 16), declared once: their names, units and help, and one
//! function per thing measured, called from where that thing happens. They go through the
//! [`metrics`] facade to whichever recorder the process installed:
//!
//! - **On Lambda**, CloudWatch Embedded Metric Format log lines ([`install_emf`], at INIT
//!   through [`crate::init`]; [`flushed`] writes them at the end of each invocation). Namespace
//!   [`NAMESPACE`]; each label set is one line whose labels are its dimensions; a histogram's
//!   samples of the invocation are one array of values, so CloudWatch computes percentiles.
//! - **In `orders serve`**, Prometheus text at `GET /metrics` (the CLI's exporter, which calls
//!   [`describe`] and uses [`LAG_BUCKETS`]).
//! - With no recorder (tests, tools) every call is a no-op.
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | `orders_commands_total` | counter | `command`, `outcome` |
//! | `orders_projection_lag_seconds` | histogram | |
//! | `orders_publish_lag_seconds` | histogram | |
//! | `orders_projection_lag_last_seconds` | gauge | |
//! | `orders_publish_lag_last_seconds` | gauge | |
//! | `orders_projection_gap_heals_total` | counter | |
//! | `orders_decode_failures_total` | counter | `consumer` |
//! | `orders_publish_failed_entries_total` | counter | `code` |

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::Unit;
use metrics_cloudwatch_embedded::Collector;

/// The CloudWatch namespace of the EMF metrics (the CDK dashboard and alarms read it).
pub const NAMESPACE: &str = "Orders";

/// Commands by `command` (create, confirm, cancel, ship) and `outcome` ([`CommandOutcome`]).
pub const COMMANDS_TOTAL: &str = "orders_commands_total";
/// Event `occurredAt` → its view written by the projector, in seconds.
pub const PROJECTION_LAG_SECONDS: &str = "orders_projection_lag_seconds";
/// Event `occurredAt` → its bus entry accepted (`PutEvents`, or the local bus), in seconds.
pub const PUBLISH_LAG_SECONDS: &str = "orders_publish_lag_seconds";
/// The projection lag of the last event whose view was written.
pub const PROJECTION_LAG_LAST_SECONDS: &str = "orders_projection_lag_last_seconds";
/// The publish lag of the last event accepted by the bus.
pub const PUBLISH_LAG_LAST_SECONDS: &str = "orders_publish_lag_last_seconds";
/// Views rebuilt from the event store because an event came after a gap.
pub const PROJECTION_GAP_HEALS_TOTAL: &str = "orders_projection_gap_heals_total";
/// Stored events (a stream record, or an event's payload) a `consumer` could not decode.
pub const DECODE_FAILURES_TOTAL: &str = "orders_decode_failures_total";
/// Bus entries the bus refused, by the bus's error `code` (each attempt counts).
pub const PUBLISH_FAILED_ENTRIES_TOTAL: &str = "orders_publish_failed_entries_total";

/// The Prometheus histogram buckets of both lags, in seconds: from a local write (a few
/// milliseconds) to a stream consumer minutes behind.
pub const LAG_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// How a command ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    /// A create appended its first event.
    Created,
    /// A command appended events to an existing order.
    Applied,
    /// Nothing to append: the order already was as the command asks.
    Noop,
    /// A concurrent writer appended first (409).
    Conflict,
    /// `If-Match` did not hold (412).
    PreconditionFailed,
    /// Answered from the idempotency record of a first request.
    IdempotentReplay,
    /// Refused: by the decider (not allowed in this status, already exists, unknown order),
    /// or a key reused for another request.
    Rejected,
    /// The store failed, or a stored history does not fold: a 5xx.
    Error,
}

impl CommandOutcome {
    pub const fn label(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Applied => "applied",
            Self::Noop => "noop",
            Self::Conflict => "conflict",
            Self::PreconditionFailed => "precondition_failed",
            Self::IdempotentReplay => "idempotent_replay",
            Self::Rejected => "rejected",
            Self::Error => "error",
        }
    }
}

/// Registers the units and help texts with the installed recorder (call it right after
/// installing one: the EMF lines carry the units, the Prometheus text the help), and the
/// failure counters at 0, so that a scrape shows them before the first failure (EMF lines leave
/// a counter out while it is 0).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    metrics::counter!(PROJECTION_GAP_HEALS_TOTAL).increment(0);
    for consumer in ["projector", "publisher"] {
        metrics::counter!(DECODE_FAILURES_TOTAL, "consumer" => consumer).increment(0);
    }
    describe_counter!(COMMANDS_TOTAL, Unit::Count, "Commands by type and outcome");
    describe_histogram!(
        PROJECTION_LAG_SECONDS,
        Unit::Seconds,
        "Event occurredAt to its view written"
    );
    describe_histogram!(
        PUBLISH_LAG_SECONDS,
        Unit::Seconds,
        "Event occurredAt to its bus entry accepted"
    );
    describe_gauge!(
        PROJECTION_LAG_LAST_SECONDS,
        Unit::Seconds,
        "Projection lag of the last view written"
    );
    describe_gauge!(
        PUBLISH_LAG_LAST_SECONDS,
        Unit::Seconds,
        "Publish lag of the last bus entry accepted"
    );
    describe_counter!(
        PROJECTION_GAP_HEALS_TOTAL,
        Unit::Count,
        "Views rebuilt from the event store after a gap"
    );
    describe_counter!(
        DECODE_FAILURES_TOTAL,
        Unit::Count,
        "Stored events a consumer could not decode"
    );
    describe_counter!(
        PUBLISH_FAILED_ENTRIES_TOTAL,
        Unit::Count,
        "Bus entries refused, by error code"
    );
}

/// One command ended: `command` is its name (`create`, `confirm`, `cancel`, `ship`).
pub fn command(command: &'static str, outcome: CommandOutcome) {
    metrics::counter!(COMMANDS_TOTAL, "command" => command, "outcome" => outcome.label())
        .increment(1);
}

/// An event's view was written now; the event occurred at `occurred_at_millis`.
pub fn projected(occurred_at_millis: i64) {
    let lag = lag_seconds(occurred_at_millis, now_millis());
    metrics::histogram!(PROJECTION_LAG_SECONDS).record(lag);
    metrics::gauge!(PROJECTION_LAG_LAST_SECONDS).set(lag);
}

/// An event's bus entry was accepted now; the event occurred at `occurred_at_millis`.
pub fn published(occurred_at_millis: i64) {
    let lag = lag_seconds(occurred_at_millis, now_millis());
    metrics::histogram!(PUBLISH_LAG_SECONDS).record(lag);
    metrics::gauge!(PUBLISH_LAG_LAST_SECONDS).set(lag);
}

/// A view was rebuilt from the event store (an event came after a gap).
pub fn gap_healed() {
    metrics::counter!(PROJECTION_GAP_HEALS_TOTAL).increment(1);
}

/// `consumer` (`projector`, `publisher`) met a stored event it could not decode.
pub fn decode_failed(consumer: &'static str) {
    metrics::counter!(DECODE_FAILURES_TOTAL, "consumer" => consumer).increment(1);
}

/// The bus refused one entry with `code` (its `ErrorCode`).
pub fn publish_entry_failed(code: &str) {
    metrics::counter!(PUBLISH_FAILED_ENTRIES_TOTAL, "code" => code.to_owned()).increment(1);
}

/// Seconds from `occurred_at_millis` to `now_millis`; never negative (clocks of two hosts).
pub fn lag_seconds(occurred_at_millis: i64, now_millis: i64) -> f64 {
    (now_millis.saturating_sub(occurred_at_millis)).max(0) as f64 / 1000.0
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

static EMF: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the EMF recorder as the process's metrics recorder (namespace [`NAMESPACE`]), once;
/// later calls, or a process that already has a recorder, keep the first one.
pub fn install_emf() {
    if EMF.get().is_some() {
        return;
    }
    match metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .init()
    {
        Ok(collector) => {
            let _ = EMF.set(collector);
            describe();
        }
        Err(error) => tracing::warn!(%error, "metrics: no EMF recorder installed"),
    }
}

/// Writes what was recorded since the last flush as EMF lines to stdout (nothing without
/// [`install_emf`]). Each line is written whole, so that no log line of another thread cuts
/// into it.
pub fn flush() {
    let lines = emf_lines();
    if lines.is_empty() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&lines).and_then(|()| stdout.flush());
}

/// The EMF lines of what was recorded since the last flush (empty without [`install_emf`]).
fn emf_lines() -> Vec<u8> {
    let mut lines = Vec::new();
    if let Some(collector) = EMF.get()
        && let Err(error) = collector.flush(&mut lines)
    {
        tracing::warn!(%error, "metrics: EMF lines not written");
        lines.clear();
    }
    lines
}

/// Runs one invocation, then [`flush`]es its metrics: what each bootstrap wraps its handler in.
pub async fn flushed<F: Future>(invocation: F) -> F::Output {
    let output = invocation.await;
    flush();
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test here that installs a recorder (it is process-wide).
    #[test]
    fn emf_lines_carry_the_namespace_the_units_and_every_sample_of_the_invocation() {
        install_emf();
        command("confirm", CommandOutcome::Applied);
        command("confirm", CommandOutcome::Applied);
        projected(now_millis() - 1_500);
        projected(now_millis() - 500);
        let text = String::from_utf8(emf_lines()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        let find = |name: &str| {
            lines
                .iter()
                .find(|line| line.get(name).is_some())
                .unwrap_or_else(|| panic!("no EMF line has {name}:\n{text}"))
        };

        let commands = find(COMMANDS_TOTAL);
        assert_eq!(commands[COMMANDS_TOTAL], 2);
        assert_eq!(
            (&commands["command"], &commands["outcome"]),
            (&"confirm".into(), &"applied".into())
        );
        let directive = &commands["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["command", "outcome"]])
        );
        assert_eq!(directive["Metrics"][0]["Name"], COMMANDS_TOTAL);
        assert_eq!(directive["Metrics"][0]["Unit"], "Count");

        let lag = find(PROJECTION_LAG_SECONDS);
        let samples = lag[PROJECTION_LAG_SECONDS]
            .as_array()
            .expect("the samples, as an array");
        assert_eq!(samples.len(), 2, "{lag}");
        assert!(samples[0].as_f64().unwrap() >= 1.5, "{lag}");
        let units: Vec<_> = lag["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert!(
            units.contains(&(PROJECTION_LAG_SECONDS, "Seconds")),
            "{units:?}"
        );
        assert!(
            units.contains(&(PROJECTION_LAG_LAST_SECONDS, "Seconds")),
            "{units:?}"
        );

        let again = String::from_utf8(emf_lines()).unwrap();
        assert!(
            !again.contains(COMMANDS_TOTAL)
                && !again.contains(&format!("\"{PROJECTION_LAG_SECONDS}\"")),
            "a flush starts the next invocation afresh: {again}"
        );
    }

    #[test]
    fn lag_is_in_seconds_and_never_negative() {
        assert_eq!(lag_seconds(1_000, 3_500), 2.5);
        assert_eq!(
            lag_seconds(5_000, 4_000),
            0.0,
            "a clock behind the writer's"
        );
    }

    #[test]
    fn outcome_labels_are_the_fixed_ones() {
        let labels = [
            CommandOutcome::Created,
            CommandOutcome::Applied,
            CommandOutcome::Noop,
            CommandOutcome::Conflict,
            CommandOutcome::PreconditionFailed,
            CommandOutcome::IdempotentReplay,
            CommandOutcome::Rejected,
            CommandOutcome::Error,
        ]
        .map(CommandOutcome::label);
        assert_eq!(
            labels,
            [
                "created",
                "applied",
                "noop",
                "conflict",
                "precondition_failed",
                "idempotent_replay",
                "rejected",
                "error"
            ]
        );
    }
}
