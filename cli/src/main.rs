//! `orders`: the local runtime and operator tools.

mod serve;
mod tables;
mod telemetry;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "orders",
    version,
    about = "Event-sourced order service: local runtime and operator tools"
)]
struct Cli {
    /// Log format: `text` for people, `json` for log pipelines. Level via RUST_LOG (default info).
    #[arg(long, env = "ORDERS_LOG_FORMAT", value_enum, default_value_t = telemetry::LogFormat::Text, global = true)]
    log_format: telemetry::LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the command and query API, the projector and the publisher in one process, on an
    /// embedded SQLite file.
    Serve(serve::ServeArgs),
    /// Manage the DynamoDB tables.
    #[command(subcommand)]
    Tables(tables::TablesCommand),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Tables(command) => tables::run(command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
