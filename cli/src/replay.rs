//! `orders replay`: rebuild, verify or repair the read model from the event store (DESIGN §6;
//! the engine is `orders_projections::replay`).
//!
//! Output: the differences (the first `--max-diffs`, one JSON object a line) and then the
//! summary go to stdout (`--json`: the summary as one JSON object); progress and logs go to
//! stderr. Exit status: 0 done (a verify: no drift), 1 a verify found drift, 2 bad input
//! (nothing was written), 3 the run failed or some orders could not be replayed (see the log;
//! `--resume` continues after a store failure), 130 interrupted (the checkpoint is saved).

mod args;
mod progress;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orders_projections::replay::{Checkpoint, Mode, Replay, ReplayConfig, ReplayStore};
use orders_store::TableName;
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::sqlite::{SqliteOptions, SqliteStore};
use tokio::sync::watch;

pub use self::args::ReplayArgs;
use self::progress::ProgressDisplay;
use self::report::report;
use crate::store_args::Backend;

const EXIT_DRIFT: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_FAILED: u8 = 3;
const EXIT_INTERRUPTED: u8 = 130;

/// A scan reads each page about once: a small cache per SQLite connection keeps the replay's
/// memory flat whatever the file's size.
const REPLAY_PAGE_CACHE_KIB: u32 = 512;

/// A problem with what was asked, found before anything is written: exit 2.
#[derive(Debug)]
struct BadInput(String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn bad_input(message: impl Into<String>) -> anyhow::Error {
    BadInput(message.into()).into()
}

pub async fn main(args: ReplayArgs) -> ExitCode {
    match run(args).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::from(if error.is::<BadInput>() {
                EXIT_BAD_INPUT
            } else {
                EXIT_FAILED
            })
        }
    }
}

async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let mode = if args.verify {
        Mode::Verify
    } else {
        Mode::Rebuild
    };
    let target = args.into.clone().unwrap_or_else(|| args.store.live_table());
    // Everything that can be refused is checked before the store is opened, because opening
    // it for a rebuild `--into` creates the shadow table.
    let location = match args.store.backend {
        Backend::Sqlite => {
            let db = &args.store.db;
            if !db.is_file() {
                return Err(bad_input(format!(
                    "there is no database at {}: replay reads an existing store (give --db, \
                     or run `orders serve` to create one)",
                    db.display()
                )));
            }
            let path = std::fs::canonicalize(db).unwrap_or_else(|_| db.clone());
            format!("sqlite {}", path.display())
        }
        Backend::Dynamodb => format!(
            "dynamodb {} {}",
            args.store.endpoint_url.as_deref().unwrap_or("(AWS)"),
            args.store.dynamo_tables().events
        ),
    };
    let run_id = format!(
        "{location} into {target}; {mode:?}; order {}; {} segments",
        args.order
            .map_or_else(|| "all".to_owned(), |id| id.to_string()),
        args.segments,
    );
    let checkpoint_file = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| default_checkpoint(&args, &target, mode));
    let resume = match (args.resume, Checkpoint::load(&checkpoint_file)) {
        (true, Err(err)) => {
            return Err(bad_input(format!("cannot read the checkpoint: {err}")));
        }
        (true, Ok(None)) => {
            return Err(bad_input(format!(
                "--resume: there is no checkpoint at {}",
                checkpoint_file.display()
            )));
        }
        (true, Ok(Some(checkpoint))) if checkpoint.run != run_id => {
            return Err(bad_input(format!(
                "--resume: the checkpoint at {} belongs to another run ({}), not this one \
                 ({run_id}); run without --resume to start over",
                checkpoint_file.display(),
                checkpoint.run
            )));
        }
        (true, Ok(checkpoint)) => checkpoint,
        (false, Ok(Some(_))) => {
            tracing::warn!(path = %checkpoint_file.display(), "starting over: an interrupted run's checkpoint will be replaced (use --resume to continue it)");
            None
        }
        (false, _) => None,
    };
    let (store, batch_size) = open_store(&args, &target, mode).await?;
    let config = ReplayConfig {
        mode,
        order: args.order,
        segments: args.segments,
        batch_size: args.batch_size.map_or(batch_size, |n| n as usize),
        page_size: args.page_size as usize,
        max_drifts: args.max_diffs,
        checkpoint_file: args.order.is_none().then(|| checkpoint_file.clone()),
        max_events_per_second: args.max_rate,
    };
    tracing::info!(run = %run_id, resume = resume.is_some(), "replay starting");
    let replay = Replay::start(store, config, run_id, resume).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        crate::signal::shutdown_requested().await;
        tracing::warn!(
            "stopping: settling the batches in flight, then saving the checkpoint (again to quit at once)"
        );
        let _ = stop_tx.send(true);
        crate::signal::shutdown_requested().await;
        std::process::exit(EXIT_INTERRUPTED.into());
    });
    let display =
        ProgressDisplay::start(replay.progress(), Duration::from_secs(args.progress_every));
    let outcome = replay.run(stop_rx).await;
    display.finish().await;
    let outcome = outcome.with_context(|| {
        format!(
            "the replay failed; what was settled is saved: continue with --resume (checkpoint {})",
            checkpoint_file.display()
        )
    })?;
    report(&outcome, mode, &target, args.json, &checkpoint_file)?;
    let tally = &outcome.checkpoint.tally;
    Ok(if outcome.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if tally.failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else if mode == Mode::Verify && tally.drift.total() > 0 {
        ExitCode::from(EXIT_DRIFT)
    } else {
        ExitCode::SUCCESS
    })
}

/// The store, and the batch size that suits it. Only a rebuild into a missing shadow table
/// creates it; every other missing piece is bad input.
async fn open_store(
    args: &ReplayArgs,
    target: &TableName,
    mode: Mode,
) -> anyhow::Result<(Arc<dyn ReplayStore>, usize)> {
    let create = mode == Mode::Rebuild && args.into.is_some();
    match args.store.backend {
        Backend::Sqlite => {
            let db = &args.store.db;
            let options = SqliteOptions {
                read_model_table: target.clone(),
                create_read_model: create,
                page_cache_kib: Some(REPLAY_PAGE_CACHE_KIB),
                sync: args.store.sync.into(),
            };
            let store = SqliteStore::open_with(db, options).map_err(|err| {
                bad_input(format!("cannot open the database {}: {err}", db.display()))
            })?;
            // One SQLite transaction per batch: large ones amortise the commit.
            Ok((Arc::new(store), 250))
        }
        Backend::Dynamodb => {
            let mut tables = args.store.dynamo_tables();
            tables.orders = target.to_string();
            let client = dynamodb::client(args.store.endpoint_url.as_deref()).await;
            if !dynamodb::table_exists(&client, &tables.events)
                .await
                .context("cannot reach DynamoDB")?
            {
                return Err(bad_input(format!(
                    "there is no events table {} (EVENTS_TABLE)",
                    tables.events
                )));
            }
            if create {
                dynamodb::create_read_model_table(&client, &tables.orders)
                    .await
                    .with_context(|| format!("cannot create the shadow table {target}"))?;
            } else if !dynamodb::table_exists(&client, &tables.orders).await? {
                return Err(bad_input(format!("there is no read-model table {target}")));
            }
            // A batch's views are read with one BatchGetItem (at most 100 keys).
            Ok((Arc::new(DynamoStore::new(client, tables)), 100))
        }
    }
}

fn default_checkpoint(args: &ReplayArgs, target: &TableName, mode: Mode) -> PathBuf {
    let dir = match args.store.backend {
        Backend::Sqlite => args
            .store
            .db
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned(),
        Backend::Dynamodb => PathBuf::from("./.orders"),
    };
    let mode = match mode {
        Mode::Rebuild => "rebuild",
        Mode::Verify => "verify",
    };
    dir.join(format!("replay-{target}-{mode}.checkpoint.json"))
}
