//! `aws-recorder`: the IAM check's recording proxy (`support/recorder.rs`) as a process of its
//! own, for a server that is not a test: point its DynamoDB endpoint at the printed address and
//! every request it makes is forwarded to DynamoDB Local and recorded, with what the cost model
//! needs, in `--dir`. `scripts/bench-compare.sh` runs the peer and ours behind one each, and
//! `orders-cost --total DIR` prices what they did.
//!
//! Prints `listening on http://127.0.0.1:PORT` once ready; stops on SIGTERM or Ctrl-C.

use std::path::PathBuf;

use clap::Parser;
use orders_tests::recorder::{Recorder, Upstreams};

#[derive(Parser)]
struct Args {
    /// Who makes the requests (names the recording file).
    #[arg(long)]
    principal: String,
    /// DynamoDB Local's endpoint.
    #[arg(long)]
    dynamodb: String,
    /// The moto server's endpoint, for EventBridge and SQS requests.
    #[arg(long)]
    moto: Option<String>,
    /// Where the recording goes.
    #[arg(long)]
    dir: PathBuf,
    /// The step every request is labelled with.
    #[arg(long, default_value = "load")]
    step: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir).expect("create the recording directory");
    let recorder = Recorder::start_in(
        &args.dir,
        &args.principal,
        &[],
        Upstreams {
            dynamodb: args.dynamodb,
            moto: args.moto,
        },
    )
    .await;
    recorder.step(&args.step);
    #[allow(clippy::print_stdout, reason = "the address is this command's output")]
    {
        println!("listening on {}", recorder.url);
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
