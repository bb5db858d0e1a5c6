//! `orders-cost [DIR]`: the cost table. Prices, by AWS's rules (`support/capacity.rs`), every
//! DynamoDB request that the IAM conformance scenario recorded (`target/aws-calls` by default;
//! `./scripts/cost.sh` records and prints), and prints, as Markdown:
//!
//! 1. each step of the scenario: its requests, and their write and read request units per
//!    command or event, beside DynamoDB Local's own count;
//! 2. a whole order's life, against the minimum, and its price per million orders;
//! 3. where the model and DynamoDB Local agree, and where they do not.
//!
//! Exits non-zero when a request cannot be priced or a lifecycle step is missing.
//!
//! `orders-cost --total DIR` prints instead one JSON object, the sum over every recorded
//! request: `{"requests", "wru", "index_wru", "rru", "dollars_per_million"}`, for a recording
//! of a server under load (`aws-recorder`, `scripts/bench-compare.sh`).

use std::path::PathBuf;
use std::process::ExitCode;

use orders_tests::capacity::{
    self, Charge, Costs, LIFECYCLE, LIFECYCLE_MINIMUM_WRU, PRICE_DATE, PRICE_PER_MILLION_RRU,
    PRICE_PER_MILLION_WRU,
};

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    let total = args.first().is_some_and(|a| a == "--total");
    if total {
        args.remove(0);
    }
    let dir = args.first().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/aws-calls"),
        PathBuf::from,
    );
    let lines = match capacity::read_recordings(&dir) {
        Ok(lines) if !lines.is_empty() => lines,
        Ok(_) => {
            eprintln!(
                "orders-cost: no recordings in {}: run ./scripts/cost.sh",
                dir.display()
            );
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("orders-cost: {}: {error}", dir.display());
            return ExitCode::from(2);
        }
    };
    if total {
        return print_total(&lines);
    }
    let report = Costs::of(&lines).and_then(|costs| {
        let check = capacity::cross_check(&lines)?;
        Ok((costs, check))
    });
    let (costs, check) = match report {
        Ok(report) => report,
        Err(unpriced) => {
            eprintln!("orders-cost: cannot price {}", unpriced.0);
            return ExitCode::FAILURE;
        }
    };
    print!("{}", steps_table(&costs));
    match costs.lifecycle() {
        Ok(lifecycle) => print!("{}", lifecycle_table(&lifecycle)),
        Err(missing) => {
            eprintln!("orders-cost: {missing}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "\n**Against DynamoDB Local's `ReturnConsumedCapacity`** (requests whose totals agree, \
         and those that differ, by reason):\n"
    );
    println!("| operation | agree | differ | why |\n|---|---|---|---|");
    for (operation, (agree, differ)) in &check.by_operation {
        let count: usize = differ.values().sum();
        let why: Vec<String> = differ
            .iter()
            .map(|(reason, n)| format!("{n}× {reason}"))
            .collect();
        println!("| {operation} | {agree} | {count} | {} |", why.join("; "));
    }
    ExitCode::SUCCESS
}

fn units(charge: &Charge) -> String {
    let local = charge.local.map_or("–".to_owned(), |(base, indexes)| {
        format!("{} + {}", number(base), number(indexes))
    });
    format!(
        "{} | {} | {} | {local}",
        number(charge.wru),
        number(charge.index_wru),
        number(charge.rru)
    )
}

fn number(x: f64) -> String {
    let rounded = (x * 100.0).round() / 100.0;
    format!("{rounded}")
}

fn steps_table(costs: &Costs) -> String {
    let mut out = String::from(
        "| principal | step | requests | WRU | index WRU | RRU | Local (base + index) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for step in &costs.steps {
        if step.operations.is_empty() {
            continue;
        }
        let per = if step.items > 1 {
            format!(" (per item, of {})", step.items)
        } else {
            String::new()
        };
        let requests: Vec<String> = step
            .operations
            .iter()
            .map(|(op, n)| format!("{op}×{n}"))
            .collect();
        out += &format!(
            "| {} | {}{per} | {} | {} |\n",
            step.principal,
            step.step,
            requests.join(", "),
            units(&step.per_item())
        );
    }
    out
}

fn lifecycle_table(lifecycle: &Charge) -> String {
    let steps: Vec<String> = LIFECYCLE
        .iter()
        .map(|(_, step, times)| {
            if *times > 1.0 {
                format!("{times}× {step}")
            } else {
                (*step).to_owned()
            }
        })
        .collect();
    format!(
        "\n**A lifecycle** ({}):\n\n\
         | WRU | index WRU | RRU | WRU / minimum ({LIFECYCLE_MINIMUM_WRU}) | $ per million orders |\n\
         |---|---|---|---|---|\n\
         | {} | {} | {} | {:.2}× | ${:.2} |\n\n\
         Prices: ${PRICE_PER_MILLION_WRU} per million WRU, ${PRICE_PER_MILLION_RRU} per million \
         RRU, since {PRICE_DATE}.\n",
        steps.join(", "),
        number(lifecycle.wru),
        number(lifecycle.index_wru),
        number(lifecycle.rru),
        lifecycle.wru / LIFECYCLE_MINIMUM_WRU,
        lifecycle.dollars_per_million()
    )
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn print_total(lines: &[serde_json::Value]) -> ExitCode {
    let mut sum = Charge::default();
    let mut requests = 0;
    for line in lines {
        match capacity::charge(line) {
            Ok(Some(charge)) => {
                requests += 1;
                sum += charge;
            }
            Ok(None) => {}
            Err(unpriced) => {
                eprintln!("orders-cost: cannot price {}", unpriced.0);
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "requests": requests,
            "wru": sum.wru,
            "index_wru": sum.index_wru,
            "rru": sum.rru,
            "dollars_per_million": sum.dollars_per_million(),
        })
    );
    ExitCode::SUCCESS
}
