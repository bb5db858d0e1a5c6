//! The replay's progress while it runs, on stderr: a bar on a terminal, log lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use orders_projections::replay::{Phase, Progress};
use tokio::sync::watch;

/// A progress bar on a terminal; otherwise a log line every few seconds.
pub(super) struct ProgressDisplay {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ProgressDisplay {
    /// `log_every`: the interval between log lines off a terminal.
    pub(super) fn start(progress: Arc<Progress>, log_every: Duration) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let on_terminal = std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            let bar = on_terminal.then(|| {
                let bar = ProgressBar::new(progress.estimated_events().unwrap_or(0));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} \
                         events, {per_sec}, ETA {eta}",
                    )
                    .expect("a valid template"),
                );
                bar
            });
            let every = if on_terminal {
                Duration::from_millis(200)
            } else {
                log_every
            };
            let started = std::time::Instant::now();
            let first = progress.events();
            loop {
                tokio::select! {
                    _ = stopped.wait_for(|stop| *stop) => break,
                    () = tokio::time::sleep(every) => {}
                }
                let events = progress.events();
                let phase = match progress.phase() {
                    Phase::Planning => "planning",
                    Phase::Events => "folding events",
                    Phase::Views => "checking for orphan views",
                    Phase::Done => "done",
                };
                match &bar {
                    Some(bar) => {
                        if let Some(total) = progress.estimated_events() {
                            bar.set_length(total.max(events));
                        }
                        bar.set_position(events);
                        bar.set_message(phase);
                    }
                    None => {
                        let rate = (events - first) as f64 / started.elapsed().as_secs_f64();
                        let eta = progress
                            .estimated_events()
                            .filter(|_| rate > 0.0)
                            .map(|total| total.saturating_sub(events) as f64 / rate);
                        tracing::info!(
                            phase,
                            events,
                            views = progress.views(),
                            estimated_events = progress.estimated_events(),
                            events_per_s = rate.round(),
                            eta_s = eta.map(f64::round),
                            "replay progress"
                        );
                    }
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        Self { stop, task }
    }

    pub(super) async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
