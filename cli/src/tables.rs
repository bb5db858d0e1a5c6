//! `orders tables create`: the three DynamoDB tables of DESIGN §3, idempotently.

use anyhow::Context;
use orders_store::dynamodb::{self, DynamoTables};

#[derive(clap::Subcommand)]
pub enum TablesCommand {
    /// Create the events, read-model and idempotency tables (with the events stream, both
    /// GSIs and TTL) where they are missing. Names come from EVENTS_TABLE, ORDERS_TABLE and
    /// IDEMPOTENCY_TABLE. Safe to run again.
    Create(TablesArgs),
}

#[derive(clap::Args)]
pub struct TablesArgs {
    /// DynamoDB endpoint, e.g. DynamoDB Local's http://127.0.0.1:8000 [default: the AWS SDK's
    /// (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL, or AWS itself)].
    #[arg(long, env = "ORDERS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
}

#[allow(
    clippy::print_stdout,
    reason = "the tables' outcome is the command's output"
)]
pub async fn run(command: TablesCommand) -> anyhow::Result<()> {
    let TablesCommand::Create(args) = command;
    let tables = DynamoTables::from_env();
    let client = dynamodb::client(args.endpoint_url.as_deref()).await;
    let report = dynamodb::create_tables(&client, &tables)
        .await
        .context("cannot create the tables")?;
    for table in report {
        println!("{table}");
    }
    Ok(())
}
