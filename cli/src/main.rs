//! `orders`: the local runtime and operator tools.

mod memory;
mod replay;
mod serve;
mod signal;
mod store_args;
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
    /// Rebuild, verify or repair the read model from the event store: all orders or one,
    /// into the live table or a shadow table. Exit status: 0 done or clean, 1 drift found
    /// (--verify), 2 bad input (nothing written), 3 failed, 130 interrupted (checkpoint saved;
    /// continue with --resume).
    Replay(replay::ReplayArgs),
    /// Manage the DynamoDB tables.
    #[command(subcommand)]
    Tables(tables::TablesCommand),
}

fn main() -> std::process::ExitCode {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let arenas_capped = memory::cap_malloc_arenas(workers + 1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("the Tokio runtime starts")
        .block_on(run(arenas_capped))
}

async fn run(arenas_capped: bool) -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    if !arenas_capped {
        tracing::warn!("could not cap malloc's arenas: memory use may creep up on long runs");
    }
    let result = match cli.command {
        Command::Replay(args) => return replay::main(args).await,
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
