//! The flags that say which store a command works on, shared by `serve` and `replay`.

use std::path::PathBuf;

use orders_store::TableName;
use orders_store::dynamodb::DynamoTables;
use orders_store::sqlite::SyncMode;

/// Where the events, the read model and the idempotency keys live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// One embedded SQLite file (`--db`).
    Sqlite,
    /// The DynamoDB tables named by EVENTS_TABLE, ORDERS_TABLE and IDEMPOTENCY_TABLE.
    Dynamodb,
}

/// When a SQLite commit, and so an acknowledgement, reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSync {
    /// Each commit fsyncs the WAL before any write in it is acknowledged (one fsync per group
    /// of writes committed together): an acknowledged write survives a power cut.
    Full,
    /// The WAL is fsynced only at checkpoints (about every 200 ms): faster, and safe if this
    /// process crashes, but an OS crash or a power cut can lose writes already acknowledged,
    /// their idempotency records too (a retry with the same key then creates a new order).
    Normal,
}

impl From<SqliteSync> for SyncMode {
    fn from(sync: SqliteSync) -> Self {
        match sync {
            SqliteSync::Full => SyncMode::Full,
            SqliteSync::Normal => SyncMode::Normal,
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Storage backend.
    #[arg(long, env = "ORDERS_BACKEND", value_enum, default_value_t = Backend::Sqlite)]
    pub backend: Backend,

    /// DynamoDB endpoint, e.g. DynamoDB Local's http://127.0.0.1:8000 [default: the AWS SDK's
    /// (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL, or AWS itself)].
    #[arg(long, env = "ORDERS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// SQLite database file (`serve` creates it and its directory if missing; `replay` needs
    /// an existing one).
    #[arg(long, env = "ORDERS_DB", default_value = "./.orders/orders.db")]
    pub db: PathBuf,

    /// Whether a SQLite commit waits for the disk before its writes are acknowledged.
    /// `normal` trades durability against an OS crash or power cut for speed.
    #[arg(long, env = "ORDERS_SQLITE_SYNC", value_enum, default_value_t = SqliteSync::Full)]
    pub sync: SqliteSync,

    /// The read-model table the query API serves and the projector maintains: set it to a
    /// shadow table that `orders replay --into` built to switch over to it, unset it to switch
    /// back [default: `orders` on SQLite, `orders-read-model` on DynamoDB].
    #[arg(long = "read-model-table", env = "ORDERS_TABLE", value_parser = TableName::parse)]
    pub read_model_table: Option<TableName>,
}

impl StoreArgs {
    /// The DynamoDB table names: EVENTS_TABLE and IDEMPOTENCY_TABLE from the environment, the
    /// read model from `--read-model-table` / ORDERS_TABLE.
    pub fn dynamo_tables(&self) -> DynamoTables {
        let mut tables = DynamoTables::from_env();
        if let Some(table) = &self.read_model_table {
            tables.orders = table.to_string();
        }
        tables
    }

    /// The live read model's table on this backend.
    pub fn live_table(&self) -> TableName {
        match (&self.read_model_table, self.backend) {
            (Some(table), _) => table.clone(),
            (None, Backend::Sqlite) => {
                orders_store::sqlite::SqliteOptions::default().read_model_table
            }
            (None, Backend::Dynamodb) => TableName::parse(&self.dynamo_tables().orders)
                .unwrap_or_else(|_| {
                    TableName::parse(DynamoTables::DEFAULT_ORDERS).expect("a valid default")
                }),
        }
    }
}
