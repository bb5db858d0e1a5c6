//! `orders replay`'s arguments (each also an `ORDERS_REPLAY_*` variable).

use std::path::PathBuf;

use orders_domain::OrderId;
use orders_store::TableName;

use crate::store_args::StoreArgs;

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub(super) store: StoreArgs,

    /// Replay this order only (its UUID).
    #[arg(long, env = "ORDERS_REPLAY_ORDER", value_parser = parse_order_id)]
    pub(super) order: Option<OrderId>,

    /// Rebuild into this shadow read-model table instead of the live one. A rebuild creates it
    /// (same schema and indexes as the live table) if it is missing.
    #[arg(long, env = "ORDERS_REPLAY_INTO", value_parser = TableName::parse)]
    pub(super) into: Option<TableName>,

    /// Compare the read model with the events without writing anything; exit 1 on drift.
    #[arg(long, env = "ORDERS_REPLAY_VERIFY")]
    pub(super) verify: bool,

    /// Parts scanned in parallel: DynamoDB Scan segments, or order-id ranges on SQLite.
    #[arg(long, env = "ORDERS_REPLAY_SEGMENTS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(super) segments: u32,

    /// Continue the interrupted run saved in the checkpoint file.
    #[arg(long, env = "ORDERS_REPLAY_RESUME")]
    pub(super) resume: bool,

    /// Checkpoint file [default: replay-<table>-<mode>.checkpoint.json next to --db on SQLite,
    /// in ./.orders on DynamoDB].
    #[arg(long, env = "ORDERS_REPLAY_CHECKPOINT")]
    pub(super) checkpoint: Option<PathBuf>,

    /// Print the summary as one JSON object.
    #[arg(long, env = "ORDERS_REPLAY_JSON")]
    pub(super) json: bool,

    /// Differences printed in full (all are counted).
    #[arg(long, env = "ORDERS_REPLAY_MAX_DIFFS", default_value_t = 20)]
    pub(super) max_diffs: usize,

    /// Events read per scan page (per segment).
    #[arg(long, env = "ORDERS_REPLAY_PAGE_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(super) page_size: u32,

    /// Orders settled per batch: one read of their views and one batched write [default: 250
    /// on SQLite (one transaction), 100 on DynamoDB (one BatchGetItem)].
    #[arg(long, env = "ORDERS_REPLAY_BATCH_SIZE", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(super) batch_size: Option<u32>,

    /// At most this many events scanned per second (over all segments), to leave a live
    /// table's capacity to the service [default: no limit].
    #[arg(long, env = "ORDERS_REPLAY_MAX_RATE", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) max_rate: Option<u32>,

    /// Seconds between progress log lines when stderr is not a terminal (on a terminal,
    /// progress is a bar).
    #[arg(long, env = "ORDERS_REPLAY_PROGRESS_EVERY", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(super) progress_every: u64,
}

fn parse_order_id(raw: &str) -> Result<OrderId, String> {
    OrderId::parse(raw).map_err(|_| format!("{raw:?} is not an order id (a UUID)"))
}
