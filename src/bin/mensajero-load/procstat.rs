//! CPU time, context switches and resident memory of another process, and the
//! machine's idle time, from /proc.
//!
//! Context switches are reported beside CPU because on a VM each sleep and wake of a
//! thread costs far more than the work around it: per message, they say whether a
//! figure is bound by work or by hand-offs between threads.

use std::time::Instant;

/// Clock ticks per second of /proc/<pid>/stat; 100 on every Linux this runs on.
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub cpu_secs: f64,
    /// Voluntary and involuntary context switches of all its threads so far.
    pub switches: u64,
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
        switches: context_switches(pid),
        at: Instant::now(),
    })
}

/// The process's own status counts only its main thread: sum over every thread.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Idle (and iowait) time of the whole machine so far, in seconds of one core.
pub fn machine_idle_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<f64> = cpu
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    Some((fields.get(3)? + fields.get(4)?) / TICKS_PER_SEC)
}

/// A process's samples at the start and at the end of a measured window.
pub type SamplePair = (Option<Sample>, Option<Sample>);

/// `measure` over the window, when both ends were sampled.
pub fn between(pair: SamplePair, measure: fn(Sample, Sample) -> f64) -> Option<f64> {
    pair.0
        .zip(pair.1)
        .map(|(before, after)| measure(before, after))
}

/// Share of one core used between two samples.
pub fn core_share(before: Sample, after: Sample) -> f64 {
    per_second(before, after, |s| s.cpu_secs)
}

/// Context switches per second between two samples.
pub fn switch_rate(before: Sample, after: Sample) -> f64 {
    per_second(before, after, |s| s.switches as f64)
}

fn per_second(before: Sample, after: Sample, value: impl Fn(&Sample) -> f64) -> f64 {
    let wall = after.at.duration_since(before.at).as_secs_f64();
    if wall > 0.0 {
        (value(&after) - value(&before)).max(0.0) / wall
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
