//! CPU time and resident memory of another process, from /proc.

use std::time::Instant;

/// Clock ticks per second of /proc/<pid>/stat; 100 on every Linux this runs on.
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub cpu_secs: f64,
    pub at: Instant,
}

pub fn cpu(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Sample {
        cpu_secs: (utime + stime) / TICKS_PER_SEC,
        at: Instant::now(),
    })
}

/// Share of one core used between two samples.
pub fn core_share(before: Sample, after: Sample) -> f64 {
    let wall = after.at.duration_since(before.at).as_secs_f64();
    if wall > 0.0 {
        (after.cpu_secs - before.cpu_secs) / wall
    } else {
        0.0
    }
}

/// (VmRSS, VmHWM) in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
