//! `compare-bench table`: the medians of a file of runs, as the markdown of
//! `scripts/bench-compare.sh`.
//!
//! Labels it knows: `peer`, `api` (ours, the API alone), `system` (ours with the pollers) for
//! the lifecycle; `sqlite-creates`, `floor-creates`, `sqlite-reads`, `floor-reads` for the
//! floor, and the creates of `orders serve` with less to do ([`CREATE_VARIANTS`]). CPU labels:
//! `dynamodb-local` and `server`.

use std::fmt::Write;

use serde_json::Value;

use crate::stats::median;

/// What a config's commands cost DynamoDB by AWS's rules, per command: from a recorded run
/// (`aws-recorder`) priced by `orders-cost --total`, GETs included.
struct Capacity {
    wru: f64,
    index_wru: f64,
    rru: f64,
    dollars_per_million: f64,
}

impl Capacity {
    fn of(capacity: &[Value], config: &str) -> Option<Capacity> {
        let line = capacity.iter().rev().find(|c| c["config"] == config)?;
        let commands = line["commands"].as_f64().filter(|&n| n > 0.0)?;
        let per = |key: &str| line[key].as_f64().map(|x| x / commands);
        Some(Capacity {
            wru: per("wru")?,
            index_wru: per("index_wru")?,
            rru: per("rru")?,
            dollars_per_million: per("dollars_per_million")?,
        })
    }

    fn text(capacity: Option<&Capacity>) -> String {
        capacity.map_or("–".to_owned(), |c| {
            format!(
                "{:.2} WRU + {:.2} index + {:.2} RRU (${:.2}/M)",
                c.wru, c.index_wru, c.rru, c.dollars_per_million
            )
        })
    }
}

struct Runs<'a>(Vec<&'a Value>);

impl Runs<'_> {
    fn rounds(&self) -> usize {
        self.0.len()
    }

    /// The median of a number found by `pick` in each run.
    fn median(&self, pick: impl Fn(&Value) -> Option<f64>) -> Option<f64> {
        median(self.0.iter().filter_map(|run| pick(run)).collect())
    }

    fn field(&self, key: &str) -> Option<f64> {
        self.median(|run| run[key].as_f64())
    }

    fn lag(&self, which: &str, key: &str) -> Option<f64> {
        self.median(|run| run["lag"][which][key].as_f64())
    }

    fn cpu_ms(&self, label: &str) -> Option<f64> {
        self.median(|run| {
            run["cpu"]
                .as_array()?
                .iter()
                .find(|c| c["label"] == label)?["ms_per_op"]
                .as_f64()
        })
    }

    /// The cells both lifecycle tables share: n, commands/s, p50, p99, GET p50, GET p99 and
    /// DynamoDB Local's CPU per command.
    fn lifecycle_cells(&self) -> String {
        format!(
            "{} | {} | {} | {} | {}",
            self.rounds(),
            self.rate_cells("commands_per_s", "command_p50_ms", "command_p99_ms"),
            num(self.field("get_p50_ms"), 2),
            num(self.field("get_p99_ms"), 2),
            num(self.cpu_ms("dynamodb-local"), 3),
        )
    }

    /// A rate and its p50 and p99, by their fields' names.
    fn rate_cells(&self, rate: &str, p50: &str, p99: &str) -> String {
        format!(
            "{} | {} | {}",
            num(self.field(rate), 0),
            num(self.field(p50), 2),
            num(self.field(p99), 2)
        )
    }

    fn sum(&self, key: &str) -> u64 {
        self.0.iter().filter_map(|run| run[key].as_u64()).sum()
    }
}

/// The runs of `label` that measured something (a run where nothing succeeded is listed
/// apart, under the tables).
fn runs<'a>(all: &'a [Value], label: &str) -> Runs<'a> {
    Runs(
        all.iter()
            .filter(|run| run["label"] == label && !failed(run))
            .collect(),
    )
}

/// The creates of `orders serve` with parts of its work switched off, by run label: where a
/// create's time goes, against the floor.
const CREATE_VARIANTS: [(&str, &str); 4] = [
    (
        "sqlite-creates",
        "as shipped: fsynced commits, projector and publisher in-process",
    ),
    (
        "sqlite-nosync-creates",
        "`--sync normal`: commits not fsynced",
    ),
    (
        "sqlite-api-creates",
        "`--consumers none`: no projector or publisher",
    ),
    (
        "sqlite-api-nosync-creates",
        "`--consumers none --sync normal`: neither",
    ),
];

fn create_variants(out: &mut String, all: &[Value]) {
    let floor = runs(all, "floor-creates");
    let variants: Vec<_> = CREATE_VARIANTS
        .iter()
        .map(|(label, what)| (what, runs(all, label)))
        .filter(|(_, runs)| runs.rounds() > 0)
        .collect();
    if variants.len() < 2 {
        return;
    }
    let _ = writeln!(
        out,
        "\nWhere a create's time goes: `orders serve` on SQLite with parts of its work switched \
         off, same load.\n\n\
         | `orders serve` | n | creates/s | p50 ms | p99 ms | server CPU ms/create | ours/floor |\n\
         |---|---|---|---|---|---|---|"
    );
    for (what, runs) in variants {
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {} | {} |",
            runs.rounds(),
            runs.rate_cells("ops_per_s", "p50_ms", "p99_ms"),
            num(runs.cpu_ms("server"), 3),
            ratio_text(ratio(runs.field("ops_per_s"), floor.field("ops_per_s"))),
        );
    }
    let _ = writeln!(
        out,
        "| the floor (no storage) | {} | {} | {} | 1.00× |",
        floor.rounds(),
        floor.rate_cells("ops_per_s", "p50_ms", "p99_ms"),
        num(floor.cpu_ms("server"), 3),
    );
}

fn failed(run: &Value) -> bool {
    run["ops"].as_u64().unwrap_or(0) == 0
}

fn num(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "—".to_owned(), |x| format!("{x:.decimals$}"))
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> Option<f64> {
    Some(ours? / theirs?).filter(|r| r.is_finite())
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"))
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    }
}

pub fn render(all: &[Value], capacity: &[Value]) -> String {
    let mut out = String::new();
    let peer = runs(all, "peer");
    let labels = ["peer", "api", "system"];
    let configs = [
        ("peer (`cqrs-es` + `dynamo-es`)", runs(all, "peer")),
        ("ours, API alone (`--consumers none`)", runs(all, "api")),
        ("ours, whole local system (pollers)", runs(all, "system")),
    ];
    let connections = all.iter().find_map(|r| r["connections"].as_u64());
    let seconds = all.iter().find_map(|r| r["seconds"].as_f64());
    let _ = writeln!(
        out,
        "Lifecycle (create → confirm → ship → get) on DynamoDB Local, {} connections, {} s \
         measured per run; medians of the rounds (n = rounds per config).\n",
        num(connections.map(|c| c as f64), 0),
        num(seconds, 0),
    );
    let _ = writeln!(
        out,
        "| config | n | commands/s | p50 ms | p99 ms | GET p50 ms | GET p99 ms | DynamoDB Local CPU ms/command | server CPU ms/command | capacity per command | commands/s ours/peer | p99 ours/peer | DynamoDB Local CPU ours/peer | errors (stale reads) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, (name, config)) in configs.iter().enumerate() {
        // The peer's own row compares it with itself.
        let vs_peer = |mine: Option<f64>, theirs: Option<f64>| {
            if i == 0 {
                "1.00×".to_owned()
            } else {
                ratio_text(ratio(mine, theirs))
            }
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} ({}) |",
            config.lifecycle_cells(),
            num(config.cpu_ms("server"), 3),
            Capacity::text(Capacity::of(capacity, labels[i]).as_ref()),
            vs_peer(config.field("commands_per_s"), peer.field("commands_per_s")),
            vs_peer(config.field("command_p99_ms"), peer.field("command_p99_ms")),
            vs_peer(
                config.cpu_ms("dynamodb-local"),
                peer.cpu_ms("dynamodb-local")
            ),
            config.sum("errors"),
            config.sum("stale_reads"),
        );
    }
    let _ = writeln!(
        out,
        "\nCapacity per command: DynamoDB's request units by AWS's rules (`orders-cost`), GETs \
         included, from a shorter run of each config through a recording proxy (`aws-recorder`), \
         and their price per million commands at on-demand rates. The API alone's leaves out the \
         views, which the projector writes; the peer's and the whole system's include them. \
         Ours also pays for two listings' indexes, which the peer does not have.\n"
    );

    let before = runs(all, "before");
    if before.rounds() > 0 {
        let after = &configs[2].1;
        let _ = writeln!(
            out,
            "Before and after (`BENCH_BEFORE`): the whole local system at that revision against \
             now, in the same rounds:\n\n\
             | side | n | commands/s | p50 ms | p99 ms | GET p50 ms | GET p99 ms | DynamoDB Local CPU ms/command |\n\
             |---|---|---|---|---|---|---|---|"
        );
        for (side, runs) in [("before", &before), ("after", after)] {
            let _ = writeln!(out, "| {side} | {} |", runs.lifecycle_cells());
        }
        let vs = |key: &str| ratio_text(ratio(after.field(key), before.field(key)));
        let _ = writeln!(
            out,
            "\nafter/before: commands/s {}, p50 {}, p99 {}, DynamoDB Local CPU per command {}.\n",
            vs("commands_per_s"),
            vs("command_p50_ms"),
            vs("command_p99_ms"),
            ratio_text(ratio(
                after.cpu_ms("dynamodb-local"),
                before.cpu_ms("dynamodb-local")
            )),
        );
    }

    let system = &configs[2].1;
    let _ = writeln!(
        out,
        "Lag under that load, ours with the pollers (`--lag-probe`: a probe order every 50 ms, \
         from the create's acknowledgement):\n\n\
         | lag | p50 ms | p99 ms | samples (median) | timeouts (all rounds) |\n|---|---|---|---|---|"
    );
    for (what, key) in [
        ("projection: to a plain GET answering 200", "projection"),
        ("publish: to its OrderCreated on /local/bus", "publish"),
    ] {
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {} | {} |",
            num(system.lag(key, "p50_ms"), 1),
            num(system.lag(key, "p99_ms"), 1),
            num(system.lag(key, "samples"), 0),
            system
                .0
                .iter()
                .filter_map(|run| run["lag"][key]["timeouts"].as_u64())
                .sum::<u64>(),
        );
    }

    let _ = writeln!(
        out,
        "\nAgainst the floor (a no-op axum service with the same routes and JSON): `orders serve` \
         on SQLite.\n\n\
         | workload | n | ours ops/s | ours p50 ms | ours p99 ms | floor ops/s | floor p50 ms | floor p99 ms | ours/floor | goal |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    let mut floor_ratios = Vec::new();
    for (workload, goal) in [("creates", 0.5), ("reads", 0.8)] {
        let ours = runs(all, &format!("sqlite-{workload}"));
        let floor = runs(all, &format!("floor-{workload}"));
        let r = ratio(ours.field("ops_per_s"), floor.field("ops_per_s"));
        floor_ratios.push((workload, r, goal));
        let _ = writeln!(
            out,
            "| {workload} | {} | {} | {} | {} | ≥ {goal} |",
            ours.rounds().min(floor.rounds()),
            ours.rate_cells("ops_per_s", "p50_ms", "p99_ms"),
            floor.rate_cells("ops_per_s", "p50_ms", "p99_ms"),
            r.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}")),
        );
    }

    create_variants(&mut out, all);

    let (api, system) = (&configs[1].1, &configs[2].1);
    let api_rate = ratio(api.field("commands_per_s"), peer.field("commands_per_s"));
    let api_p99 = ratio(api.field("command_p99_ms"), peer.field("command_p99_ms"));
    let system_rate = ratio(system.field("commands_per_s"), peer.field("commands_per_s"));
    let lag_p99 = system
        .lag("projection", "p99_ms")
        .zip(system.lag("publish", "p99_ms"));
    let _ = writeln!(out, "\nGoals (issue 15):");
    let _ = writeln!(
        out,
        "- API alone ≥ 1.5× the peer's commands/s at ≤ its p99: {} ({} at {} the p99)",
        verdict(api_rate.zip(api_p99).map(|(r, p)| r >= 1.5 && p <= 1.0)),
        ratio_text(api_rate),
        ratio_text(api_p99),
    );
    let _ = writeln!(
        out,
        "- whole local system ≥ 1.0× the peer's commands/s, reads by ?minVersion= up to date: {} ({}, {} stale reads)",
        verdict(system_rate.map(|r| r >= 1.0 && system.sum("stale_reads") == 0)),
        ratio_text(system_rate),
        system.sum("stale_reads"),
    );
    let _ = writeln!(
        out,
        "- projection and publish lag p99 ≤ 250 ms: {}",
        verdict(lag_p99.map(|(a, b)| a <= 250.0 && b <= 250.0)),
    );
    for (workload, r, goal) in floor_ratios {
        let _ = writeln!(
            out,
            "- {workload} ≥ {goal}× the floor: {}",
            verdict(r.map(|r| r >= goal)),
        );
    }
    // Judged on the whole system: the peer writes its view in the command, and so does ours
    // only with the projector running (the API alone's figure leaves the views out).
    let peer_cost = Capacity::of(capacity, "peer").map(|c| c.dollars_per_million);
    let ours = Capacity::of(capacity, "system").map(|c| c.dollars_per_million);
    let r = ratio(ours, peer_cost);
    let _ = writeln!(
        out,
        "- less capacity per command than the peer (whole local system, views included): {} ({} the peer's $ per command)",
        verdict(r.map(|r| r < 1.0)),
        ratio_text(r),
    );
    let loads: Vec<f64> = all
        .iter()
        .filter_map(|r| r["loadavg_1min"].as_f64())
        .collect();
    if let Some(max) = loads.iter().copied().reduce(f64::max) {
        let min = loads.iter().copied().fold(max, f64::min);
        let _ = writeln!(
            out,
            "\nLoad average (1 min) at the end of the runs: {min:.2} to {max:.2}."
        );
    }
    let failures: Vec<String> = all
        .iter()
        .filter(|run| failed(run))
        .map(|run| {
            format!(
                "{} round {}",
                run["label"].as_str().unwrap_or("?"),
                run["round"]
            )
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(
            out,
            "\nLeft out, nothing succeeded: {} (see their error_examples).",
            failures.join(", ")
        );
    }
    out
}
