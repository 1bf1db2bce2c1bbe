//! `killpoint trace -- CMD ARGS…`: the census of any command, to choose strike points.
//!
//! The command runs once under the tracer with every syscall class trapped, in the current
//! directory, sharing the terminal. The table that follows counts calls per class and
//! path (paths relative to the working directory, where a scenario's sandbox would be),
//! lists the process tree and the signal handlers installed, and suggests a strike point.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::os::run::{self, Launch, Limits, RunError};
use crate::os::tracer::TraceSetup;
use crate::outcome::{HarnessKill, KillReason, ProcessInfo};
use crate::syscalls::{CallCount, Event, SyscallCensus, SyscallClass, TracedProcess};
use crate::units::ms;
use crate::values::ExitStatus;

/// What a traced run of a command showed.
#[derive(Debug, Serialize)]
pub struct TraceReport {
    pub command: Vec<String>,
    pub status: ExitStatus,
    #[serde(with = "crate::units::millis")]
    pub duration: Duration,
    /// Set when killpoint killed what was left: the command ran past the timeout, or
    /// processes it started were still running after it ended.
    pub killed: Option<HarnessKill>,
    /// Processes still running after the command ended (and its grace); killed then.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leftovers: Vec<ProcessInfo>,
    pub syscalls: SyscallCensus,
    pub events: Vec<Event>,
    pub events_dropped: u64,
}

/// Why a command could not be traced.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// killpoint itself was asked to stop.
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Failed(String),
}

impl From<RunError> for TraceError {
    fn from(e: RunError) -> TraceError {
        match e {
            RunError::Interrupted => TraceError::Interrupted,
            e => TraceError::Failed(e.to_string()),
        }
    }
}

/// Runs `command` (program and arguments) once under the tracer, in `cwd`.
pub fn trace(
    command: &[OsString],
    cwd: PathBuf,
    timeout: Duration,
) -> Result<TraceReport, TraceError> {
    let (program, args) = command.split_first().expect("clap requires a command");
    let launch = Launch {
        program: PathBuf::from(program),
        args: args.to_vec(),
        env: Default::default(),
        cwd: cwd.clone(),
        capture: false,
        isolate_network: false,
    };
    let setup = TraceSetup {
        classes: SyscallClass::ALL.into_iter().collect(),
        strikes: Vec::new(),
        root: cwd,
        keep_events: true,
        handler_io: false,
        record: false,
    };
    run::become_subreaper();
    let ran = run::run(
        &launch,
        &[],
        &[],
        Limits {
            timeout,
            deadline: None,
            grace: crate::expect::DEFAULT_LEFTOVER_GRACE,
        },
        Some(setup),
        Default::default(),
    )?;
    let log = ran.trace.unwrap_or_default();
    Ok(TraceReport {
        command: command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        status: ran.status,
        duration: ran.exited_at,
        killed: ran.killed,
        leftovers: ran.leftovers,
        syscalls: log.census,
        events: log.events,
        events_dropped: log.events_dropped,
    })
}

/// Whether a path is one a scenario could name: inside the working directory (relative),
/// or a standard stream; not a path elsewhere, a pipe or a socket.
fn local(path: &str) -> bool {
    !path.starts_with('/') && !path.contains(":[")
}

/// How many processes the table lists without `--all`.
const PROCESSES_SHOWN: usize = 12;

/// A command line on one line, cut to a readable length.
fn one_line(command: &str) -> String {
    let flat: String = command
        .chars()
        .map(|c| if c == '\n' { '⏎' } else { c })
        .collect();
    if flat.chars().count() > 100 {
        format!("{}…", flat.chars().take(99).collect::<String>())
    } else {
        flat
    }
}

/// The trace as a table. Without `all`, calls naming only paths outside the working
/// directory are summed up in one line.
pub fn table(report: &TraceReport, all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "killpoint trace: {} → {} in {}{}",
        one_line(&report.command.join(" ")),
        report.status,
        ms(report.duration),
        match &report.killed {
            Some(kill) if kill.reason == KillReason::TimedOut =>
                format!(" (killed at {}: it ran past the timeout)", ms(kill.at)),
            Some(kill) => format!(
                "; {} process(es) it started still ran {} later and were killed at {}",
                report.leftovers.len(),
                ms(crate::expect::DEFAULT_LEFTOVER_GRACE),
                ms(kill.at)
            ),
            None => String::new(),
        }
    );
    let mut rows: Vec<&CallCount> = report.syscalls.calls.iter().collect();
    rows.sort_by_key(|c| (c.class, c.first));
    let (shown, hidden): (Vec<&CallCount>, Vec<&CallCount>) = rows
        .into_iter()
        .partition(|c| all || c.paths.is_empty() || c.paths.iter().any(|p| local(p)));
    let _ = writeln!(out, "\n  {:<10} {:>7}  path", "class", "calls");
    for row in &shown {
        let _ = writeln!(
            out,
            "  {:<10} {:>7}  {}",
            row.class.name(),
            row.count,
            row.paths.join(" → ")
        );
    }
    if !hidden.is_empty() {
        let calls: u64 = hidden.iter().map(|c| c.count).sum();
        let _ = writeln!(
            out,
            "  … {calls} more call(s) naming {} path(s) outside the working directory (--all shows them)",
            hidden.len()
        );
    }
    let processes = &report.syscalls.processes;
    let _ = writeln!(out, "\n  processes ({}):", processes.len());
    let listed = if all {
        processes.len()
    } else {
        PROCESSES_SHOWN
    };
    for process in processes.iter().take(listed) {
        let left = report.leftovers.iter().any(|l| l.pid == process.pid);
        process_line(&mut out, process, processes, left);
    }
    if processes.len() > listed {
        let _ = writeln!(
            out,
            "    … {} more (--all lists them)",
            processes.len() - listed
        );
    }
    let mut signals: Vec<_> = report.syscalls.handlers.iter().map(|h| h.signal).collect();
    signals.sort();
    signals.dedup();
    if !signals.is_empty() {
        let _ = writeln!(out, "\n  handlers installed:");
    }
    for signal in signals {
        let mut by: Vec<_> = report
            .syscalls
            .handlers
            .iter()
            .filter(|h| h.signal == signal)
            .collect();
        by.sort_by_key(|h| h.at);
        let first = by[0];
        let _ = writeln!(
            out,
            "    {:<8} pid {} at {}{}",
            signal.to_string(),
            first.pid,
            ms(first.at),
            match by.len() {
                1 => String::new(),
                n => format!(" (and {} other process(es))", n - 1),
            }
        );
    }
    if let Some(hint) = strike_hint(&shown) {
        let _ = writeln!(out, "\n  strike there with, e.g.:\n    {hint}");
    }
    out
}

fn process_line(out: &mut String, process: &TracedProcess, all: &[TracedProcess], left: bool) {
    let mut depth = 0;
    let mut parent = process.parent;
    while let Some(p) = parent {
        depth += 1;
        parent = all.iter().find(|q| q.pid == p).and_then(|q| q.parent);
    }
    let status = match process.status {
        Some(status) if left => {
            format!("left running after the command ended; {status}, by killpoint")
        }
        Some(status) => status.to_string(),
        None => "still running".into(),
    };
    let threads = match process.threads {
        0 => String::new(),
        n => format!(", {n} thread(s) started"),
    };
    let _ = writeln!(
        out,
        "    {:indent$}{} {}  ({status}{threads})",
        "",
        process.pid,
        one_line(&process.command),
        indent = depth * 2
    );
}

/// A strike point on the last finishing call (rename, else fsync, else write) in the
/// working directory.
fn strike_hint(rows: &[&CallCount]) -> Option<String> {
    for class in [
        SyscallClass::Rename,
        SyscallClass::Fsync,
        SyscallClass::Write,
    ] {
        if let Some(row) = rows
            .iter()
            .rev()
            .find(|r| r.class == class && r.paths.iter().any(|p| local(p) && !p.starts_with('<')))
        {
            let path = row.paths.last().expect("a row with a local path");
            let nth = match row.count {
                1 => "1".to_string(),
                n => format!("1..={n}"),
            };
            return Some(format!(
                "[[strike]]\n    signal = \"SIGTERM\"\n    at = {{ syscall = \"{}\", path = \"{path}\", nth = \"{nth}\", when = \"entry\" }}",
                class.name(),
            ));
        }
    }
    None
}
