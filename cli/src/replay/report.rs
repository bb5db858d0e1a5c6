//! The replay's result on stdout: the differences found, one JSON object a line, then the
//! summary (as text, or as one JSON object with `--json`).

use std::io::Write;
use std::path::Path;

use orders_projections::replay::{DriftKind, Mode, Outcome};
use orders_store::TableName;
use serde_json::json;

/// The differences, then the summary, on stdout.
pub(super) fn report(
    outcome: &Outcome,
    mode: Mode,
    target: &TableName,
    json: bool,
    checkpoint_file: &Path,
) -> anyhow::Result<()> {
    let checkpoint = &outcome.checkpoint;
    let tally = &checkpoint.tally;
    let seconds = outcome.elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        outcome.events_this_run as f64 / seconds
    } else {
        0.0
    };
    let status = if outcome.interrupted {
        "interrupted"
    } else if tally.failed > 0 {
        "failed"
    } else if mode == Mode::Verify && tally.drift.total() > 0 {
        "drift"
    } else if mode == Mode::Verify {
        "clean"
    } else {
        "done"
    };
    let mut out = std::io::stdout().lock();
    for drift in &checkpoint.drifts {
        writeln!(out, "{}", serde_json::to_string(drift)?)?;
    }
    if json {
        let summary = json!({
            "mode": mode,
            "table": target.as_str(),
            "status": status,
            "tally": tally,
            "elapsedSeconds": (seconds * 1000.0).round() / 1000.0,
            "eventsPerSecond": rate.round(),
            "checkpoint": outcome.interrupted.then(|| checkpoint_file.display().to_string()),
        });
        writeln!(out, "{summary}")?;
        return Ok(());
    }
    let verb = match mode {
        Mode::Rebuild => "replay",
        Mode::Verify => "verify",
    };
    writeln!(out, "{verb} of {target}: {status}")?;
    writeln!(
        out,
        "  orders {}, events {}, views written {}, deleted {}, skipped (in sync) {}, \
         loaded per order {}, failed {}",
        tally.orders,
        tally.events,
        tally.written,
        tally.deleted,
        tally.in_sync,
        tally.loaded,
        tally.failed
    )?;
    let drift: Vec<String> = DriftKind::ALL
        .iter()
        .map(|&kind| format!("{} {}", kind.as_str(), tally.drift.get(kind)))
        .collect();
    let drift_label = match mode {
        Mode::Rebuild => "repaired",
        Mode::Verify => "drift",
    };
    writeln!(out, "  {drift_label}: {}", drift.join(", "))?;
    writeln!(
        out,
        "  views checked for orphans {}; elapsed {seconds:.2} s, {rate:.0} events/s",
        tally.views_checked
    )?;
    if outcome.interrupted {
        writeln!(
            out,
            "  checkpoint saved to {}: continue with --resume",
            checkpoint_file.display()
        )?;
    }
    Ok(())
}
