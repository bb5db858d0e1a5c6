//! The runner of the fuzz properties (`handlers/src/http/tests/fuzz.rs`,
//! `handlers/src/lambda/tests/fuzz.rs`, `projections/src/stream/tests/fuzz.rs`).
//!
//! Each property runs a bounded number of cases in the test suite; `PROPTEST_CASES` raises it
//! for `scripts/fuzz.sh`, which reads the `fuzz <target>: N cases, F failures` line each
//! property prints.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// Cases per property in the test suite: a few seconds each in a debug build.
const SUITE_CASES: u32 = 256;

/// Runs `test` on `PROPTEST_CASES` (else [`SUITE_CASES`]) inputs of `strategy`, prints the
/// figures `scripts/fuzz.sh` tabulates, and fails with the shrunk input if any case fails.
#[allow(
    clippy::print_stderr,
    reason = "the run's summary (cases, rejects) is for the developer who runs it"
)]
pub fn run_fuzz<S>(target: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(SUITE_CASES);
    let config = Config {
        cases,
        // A failure is reported with its shrunk input; nothing is written into the tree.
        failure_persistence: None,
        // Bounds shrinking: each step reruns a request.
        max_shrink_time: 60_000,
        ..Config::default()
    };
    // Cases tried until the first failure; shrinking runs more, which are not new cases.
    let tried = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let result = TestRunner::new(config).run(&strategy, |input| {
        if !failed.load(Ordering::Relaxed) {
            tried.fetch_add(1, Ordering::Relaxed);
        }
        // Caught here too (the runner catches it as well) to stop counting at the first
        // failure, panics included.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(input)))
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                Err(TestCaseError::fail(format!("panicked: {message}")))
            });
        if outcome.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        outcome
    });
    let failures = u32::from(result.is_err());
    // The figures line, for the long run's table (visible with `--nocapture`).
    eprintln!(
        "fuzz {target}: {} cases, {failures} failures",
        tried.load(Ordering::Relaxed)
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => {
            panic!("fuzz {target} failed: {reason}; minimal input: {input:#?}")
        }
        Err(TestError::Abort(reason)) => panic!("fuzz {target} aborted: {reason}"),
    }
}
