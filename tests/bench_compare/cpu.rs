//! CPU time of other processes, from `/proc/PID/stat`.

use crate::{Context, Fallible};

/// `--pid LABEL=PID`.
#[derive(Clone, Debug)]
pub struct WatchedPid {
    pub label: String,
    pub pid: u32,
}

impl WatchedPid {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (label, pid) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected LABEL=PID"))?;
        let pid = pid
            .trim()
            .parse()
            .map_err(|_| format!("{pid:?}: not a process id"))?;
        Ok(Self {
            label: label.trim().to_owned(),
            pid,
        })
    }
}

/// Linux reports utime and stime in USER_HZ ticks, 100 a second on every architecture we
/// build for (`getconf CLK_TCK`).
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU seconds `pid` has used so far, all its threads included.
pub fn cpu_seconds(pid: u32) -> Fallible<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after the
    // last ')' start at field 3 (state); utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path}: no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Fallible<f64> {
        let field = fields
            .get(i)
            .with_context(|| format!("{path}: too short"))?;
        Ok(field
            .parse::<u64>()
            .with_context(|| format!("{path}: {field:?}"))? as f64)
    };
    Ok((tick(11)? + tick(12)?) / TICKS_PER_SECOND)
}
