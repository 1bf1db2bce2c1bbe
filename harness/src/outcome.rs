//! The Outcome: everything observed in one case, as plain data.
//!
//! The OS layer fills it in; invariants read it and nothing else, so a saved outcome can be
//! judged again, or built by hand in a unit test, without running anything.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::Point;
use crate::strike::{ProcessSelector, Recipient};
use crate::syscalls::{Event, TracedProcess};
use crate::values::{ExitStatus, Signal, WorkPath};

/// Everything observed in one case. Times are measured from the moment the target was
/// spawned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// How the target's main process ended.
    pub status: ExitStatus,
    /// When the main process ended.
    #[serde(with = "crate::units::millis")]
    pub exited_at: Duration,
    /// What became of each planned strike.
    pub strikes: Vec<StrikeRecord>,
    /// When the last process of the tree was gone on its own; `None` if the harness had
    /// to kill what was left.
    #[serde(with = "crate::units::opt_millis")]
    pub tree_gone_at: Option<Duration>,
    /// Set when the harness killed the tree, with why and when.
    pub killed: Option<HarnessKill>,
    /// Processes of the tree still alive `leftover_grace` after the main process exited.
    pub leftovers: Vec<ProcessInfo>,
    /// Each declared output before and after the run.
    pub outputs: Vec<OutputRecord>,
    /// Files that appeared beside the outputs and were not there after the census
    /// (temp files left behind), as sandbox-relative paths.
    pub stray_files: Vec<String>,
    pub stdout: Capture,
    pub stderr: Capture,
    /// What survived, read after the run when the scenario declares `[expect.acked]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survivors: Option<SurvivorsRead>,
    /// How the process tree was tracked.
    pub tracking: Tracking,
    /// With the tracer: per process, the syscalls just before the first strike and those
    /// after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<ProcessTrace>,
    /// With the tracer: every process of the tree, in the order started, with when it
    /// started, the signals delivered to it and when and how it exited. Empty untraced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<TracedProcess>,
    /// With the tracer: files written or synced inside a signal handler.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handler_io: Vec<HandlerIo>,
    /// The files `[[expect.once]]` markers are counted in, as text after the run (`None`:
    /// absent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub marker_files: BTreeMap<WorkPath, Option<String>>,
    /// The probe marks the target made, in order (up to [`MARK_CAP`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
    /// When the target was ready (`ready`); `None` without a ready condition, or if it
    /// never was.
    #[serde(
        default,
        with = "crate::units::opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub ready_at: Option<Duration>,
    /// The `stop` the harness sent, when no strike had reached the target before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopRecord>,
    /// Each `[[client]]`'s run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientRecord>,
    /// What each `[[expect.check]]` checker said about the case, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckRecord>,
    /// The `[expect.resume]` command's run after the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeRecord>,
    /// A power strike's crash state: what the sandbox was put back to before it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerRecord>,
}

/// What a power loss left: the crash state the sandbox was put in, and what it lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerRecord {
    /// When the power failed: the power strike's moment; `None` when its point never
    /// came and the power failed once the tree had gone.
    #[serde(with = "crate::units::opt_millis")]
    pub at: Option<Duration>,
    pub state: crate::power::CrashState,
    /// How many operations the write log holds, and how many of them were durable.
    pub recorded: usize,
    pub durable: usize,
    /// The operations the crash state lost, in words, in program order.
    pub lost: Vec<String>,
    /// What the model could not follow (an O_TMPFILE file, a rename across the sandbox's
    /// edge, a write whose bytes could not be read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Outcome {
    /// The lines acknowledgements (`[expect.acked] ack`, `[expect.resume] work`) are read
    /// from: with `[[client]]`s, what the clients printed, in their order — it is a
    /// client that sees a request acknowledged —; else the target's stdout.
    pub fn ack_stdout(&self) -> std::borrow::Cow<'_, str> {
        if self.clients.is_empty() {
            return std::borrow::Cow::Borrowed(&self.stdout.text);
        }
        std::borrow::Cow::Owned(
            self.clients
                .iter()
                .map(|c| c.stdout.text.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }

    /// How many requests killpoint's own clients sent in all (their last byte written):
    /// the space of `request` strike points.
    pub fn requests_sent(&self) -> u64 {
        self.clients
            .iter()
            .filter_map(|c| c.history.as_ref())
            .flat_map(|h| &h.requests)
            .filter(|r| r.sent_at.is_some())
            .count() as u64
    }
}

/// The stop a run no strike reached ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRecord {
    pub signal: Signal,
    #[serde(with = "crate::units::millis")]
    pub sent_at: Duration,
}

/// One `[[client]]`'s run beside the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Its command, as the scenario writes it.
    pub command: String,
    #[serde(with = "crate::units::millis")]
    pub started_at: Duration,
    #[serde(with = "crate::units::opt_millis")]
    pub ended_at: Option<Duration>,
    /// How it ended; `None` if it could not start (then `error` says why).
    pub status: Option<ExitStatus>,
    /// Whether the harness cut it off: it was still running when the case ended.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut_off: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub stdout: Capture,
    pub stderr: Capture,
    /// A built-in client's requests, each stamped on the case's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<crate::history::History>,
}

/// A checker's run on a case: exit 0 (held) or 1 (broken); any other end is the
/// scenario's error, never recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub name: String,
    pub held: bool,
    /// The end of what it printed, stdout then stderr: the evidence when broken.
    pub output: String,
}

/// What was read after a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurvivorsRead {
    /// Where they were read, for the report: `store.log`, `store.log (absent)`,
    /// ``the output of `verify {work}` ``.
    pub from: String,
    /// The ids, in order; or why none could be read (a torn file, a failed command).
    pub ids: Result<Vec<String>, String>,
}

/// What the resume command did, run in the case's sandbox after the case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeRecord {
    pub status: ExitStatus,
    /// From its start to its exit.
    #[serde(with = "crate::units::millis")]
    pub duration: Duration,
    /// Set when it ran past the scenario's `timeout` and was killed.
    pub killed: Option<HarnessKill>,
    pub stdout: Capture,
    pub stderr: Capture,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
    /// Each resume output as the case left it (`before`) and as the resume left it.
    pub outputs: Vec<OutputRecord>,
}

/// The environment variable that names the target's end of the probe socket
/// (`os::probe` serves it; `killpoint-probe` and `killpoint_probe.py` write to it).
pub const PROBE_FD_VAR: &str = "KILLPOINT_PROBE_FD";

/// How many probe marks a run keeps; the rest are served and counted, not kept.
pub const MARK_CAP: usize = 100_000;

/// One line the target wrote on the probe socket: a name and what follows it (`ack 7`:
/// name `ack`, argument `7`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    #[serde(with = "crate::units::millis")]
    pub at: Duration,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arg: String,
}

impl Mark {
    /// The mark a probe line stands for: its first word is the name, the rest (trimmed)
    /// the argument.
    pub fn parse(line: &str, at: Duration) -> Mark {
        let line = line.trim();
        let (name, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        Mark {
            at,
            name: name.to_string(),
            arg: arg.trim().to_string(),
        }
    }
}

/// A file written or synced while a signal handler ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerIo {
    pub pid: i32,
    pub tid: i32,
    /// The signal whose handler was running.
    pub signal: Signal,
    /// When the handler was entered.
    #[serde(with = "crate::units::millis")]
    pub entered_at: Duration,
    #[serde(with = "crate::units::millis")]
    pub at: Duration,
    /// The call, e.g. `write 64 B to store.log`.
    pub call: String,
}

/// What one process of the tree did around the first strike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessTrace {
    pub pid: i32,
    pub command: String,
    /// The last few events before the first strike (the struck call last, for a syscall
    /// strike).
    pub before: Vec<Event>,
    /// The events after it, up to a cap.
    pub after: Vec<Event>,
    /// How many more events came after the cap.
    pub more_after: u64,
}

impl Outcome {
    /// The first strike that reached a live target: it decides the situation.
    pub fn first_delivered(&self) -> Option<&StrikeRecord> {
        self.strikes.iter().find(|s| s.delivered())
    }

    /// Each traced process that was alive at or after `from`, one line each: when it
    /// started (if after `from`), the signals delivered to it and how and when it ended,
    /// all relative to `from`: `pid 12 (worker --id 1): SIGTERM +0.3 ms, exit 0 +801.2 ms`.
    pub fn timeline(&self, from: Duration) -> Vec<String> {
        let rel = |at: Duration| {
            if at >= from {
                format!("+{}", crate::units::ms(at - from))
            } else {
                format!("-{}", crate::units::ms(from - at))
            }
        };
        self.processes
            .iter()
            .filter(|p| p.exited_at.is_none_or(|at| at >= from))
            .map(|p| {
                let mut events = Vec::new();
                if p.started_at > from {
                    events.push(format!("started {}", rel(p.started_at)));
                }
                for d in p.signals.iter().filter(|d| d.at >= from) {
                    events.push(format!("{} {}", d.signal, rel(d.at)));
                }
                events.push(match (p.status, p.exited_at) {
                    (Some(status), Some(at)) => format!("{status} {}", rel(at)),
                    (None, Some(at)) => format!("gone {}", rel(at)),
                    _ => "never seen to exit".into(),
                });
                format!(
                    "pid {} ({}): {}",
                    p.pid,
                    short(&p.command),
                    events.join(", ")
                )
            })
            .collect()
    }

    /// How long the tree took to go after the first delivered strike, if it went by itself.
    pub fn drain_time(&self) -> Option<Duration> {
        let (_, asked) = self.first_stop()?;
        self.tree_gone_at.map(|gone| gone.saturating_sub(asked))
    }

    /// The first signal that asked the target to stop, and when: the first strike that
    /// reached it, or the scenario's `stop`, whichever came first. The drain is counted
    /// from it.
    pub fn first_stop(&self) -> Option<(Signal, Duration)> {
        let strike = self
            .first_delivered()
            .and_then(|s| s.sent_at.map(|at| (s.signal, at)));
        let stop = self.stop.as_ref().map(|s| (s.signal, s.sent_at));
        match (strike, stop) {
            (Some(a), Some(b)) => Some(if a.1 <= b.1 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// What happened to one planned strike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrikeRecord {
    pub signal: Signal,
    pub to: Recipient,
    /// Where it was planned to land.
    pub point: Point,
    /// The process it was planned to hit (`None`: the main process, or for a syscall
    /// point whichever process made the call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSelector>,
    /// For a delay: when its clock started (spawn, or the moment the handler was seen).
    #[serde(
        default,
        with = "crate::units::opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub clock_started_at: Option<Duration>,
    /// When the signal was sent; `None` if the target exited before the strike was due.
    #[serde(with = "crate::units::opt_millis")]
    pub sent_at: Option<Duration>,
    /// Whether the target had a handler for the signal when it was sent.
    pub caught: bool,
    /// When this run's main process was first seen with a handler for the signal (the
    /// tracer saw its `rt_sigaction`, or a handler-relative delay's clock started): with
    /// `caught` false after it, the program had given its handler up.
    #[serde(
        default,
        with = "crate::units::opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub handler_seen_at: Option<Duration>,
    /// For a syscall strike: the call it landed at, as the tracer saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit: Option<Event>,
    /// The process the signal was sent to (with `to = "group"`: the process whose group
    /// it went to): the one that made the call a syscall strike landed at, the main
    /// process for a delay or probe strike, unless the strike's `process` chose another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub struck: Option<StruckProcess>,
    /// A delay strike limited to a program found no process running it alive when it was
    /// due: it was not sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmatched: bool,
    /// A power loss: its SIGKILL, then the sandbox put in a crash state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub power: bool,
}

/// A process a strike's signal was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StruckProcess {
    pub pid: i32,
    /// The name of the program it ran then (see [`crate::scenario::ProgramGlob`]).
    pub program: String,
}

impl StrikeRecord {
    pub fn delivered(&self) -> bool {
        self.sent_at.is_some()
    }
}

/// The harness killed the process tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarnessKill {
    pub reason: KillReason,
    #[serde(with = "crate::units::millis")]
    pub at: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KillReason {
    /// The tree was still running `deadline` after the first strike.
    DrainOverran,
    /// No strike reached the target and it ran past the scenario's `timeout`.
    TimedOut,
    /// Processes outlived the main process.
    Leftovers,
    /// No strike reached the target and it was not ready within `ready.timeout`.
    NeverReady,
}

impl KillReason {
    /// Why the harness killed the tree, in words.
    pub fn describe(self) -> &'static str {
        match self {
            KillReason::DrainOverran => "the tree was still running at the deadline",
            KillReason::TimedOut => "no strike reached it and it ran past the timeout",
            KillReason::Leftovers => {
                "processes of the tree were still running after the main process had ended"
            }
            KillReason::NeverReady => "no strike reached it and it was not ready in time",
        }
    }
}

/// A process of the target's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    /// Its command line, as `/proc/PID/cmdline` shows it.
    pub command: String,
}

/// Which mechanism saw the process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tracking {
    /// A cgroup v2 per case: sees every descendant, even after setsid.
    Cgroup,
    /// Process group, environment marker and child subreaper.
    Marker,
}

/// A declared output, before and after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub path: WorkPath,
    pub before: FileState,
    pub after: FileState,
}

/// What a file held, compared with its prior content and with the golden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum FileState {
    Absent,
    /// Byte-identical to the content the sandbox was set up with.
    Prior,
    /// Byte-identical to the census run's final content (for an output with
    /// `normalize`: once both went through the command).
    Golden,
    /// Accepted by the output's `valid` command.
    Valid,
    /// Refused by the output's `valid` command, or its `normalize` command failed on it.
    Rejected {
        size: u64,
        sha256: String,
        /// The command and how it ended: ``sqlite3 {path} 'PRAGMA quick_check'` exited 1``.
        by: String,
        /// The end of what it printed (stdout, then stderr): the evidence.
        output: String,
    },
    /// Anything else: a partial or corrupt file.
    Other {
        size: u64,
        sha256: String,
        /// Where it first departs from the golden.
        difference: Difference,
    },
}

/// Where a file first departs from the content it was compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// Byte offset of the first difference (the file's size if it ends early).
    pub offset: u64,
    /// Size of the content it was compared with.
    pub expected_size: u64,
    /// A few bytes at `offset`, escaped: what was found and what was expected.
    pub found: String,
    pub expected: String,
}

/// Captured stdout or stderr: the first bytes kept, the rest only counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// The kept bytes, as text (invalid UTF-8 replaced).
    pub text: String,
    /// How many bytes the stream carried in all.
    pub total_bytes: u64,
}

impl FileState {
    /// A word or two for reports: `absent`, `complete`, `partial`.
    pub fn name(&self) -> &'static str {
        match self {
            FileState::Absent => "absent",
            FileState::Prior => "still its prior content",
            FileState::Golden | FileState::Valid => "complete",
            FileState::Rejected { .. } => "rejected",
            FileState::Other { .. } => "partial",
        }
    }

    /// Whether the file holds the complete work: the golden, or accepted as valid.
    pub fn is_complete(&self) -> bool {
        matches!(self, FileState::Golden | FileState::Valid)
    }

    /// Classifies a file's content (`None`: absent) against its prior content and the
    /// golden. Prior wins over golden when they are the same bytes.
    pub fn classify(
        found: Option<&[u8]>,
        prior: Option<&[u8]>,
        golden: Option<&[u8]>,
    ) -> FileState {
        let Some(found) = found else {
            return FileState::Absent;
        };
        if Some(found) == prior {
            return FileState::Prior;
        }
        if Some(found) == golden {
            return FileState::Golden;
        }
        let reference = golden.or(prior).unwrap_or(&[]);
        FileState::Other {
            size: found.len() as u64,
            sha256: sha256_hex(found),
            difference: Difference::between(found, reference),
        }
    }
}

impl Difference {
    /// Where `found` first departs from `expected`, with a few bytes of each around it.
    pub fn between(found: &[u8], expected: &[u8]) -> Difference {
        let offset = found
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(found.len().min(expected.len()));
        let preview =
            |bytes: &[u8]| escape(&bytes[offset.min(bytes.len())..(offset + 16).min(bytes.len())]);
        Difference {
            offset: offset as u64,
            expected_size: expected.len() as u64,
            found: preview(found),
            expected: preview(expected),
        }
    }
}

/// A command line cut to a readable length, its program named without its directory (the
/// pid already says which process it is; a build directory's path would crowd out the
/// arguments that tell processes apart).
fn short(command: &str) -> String {
    const MAX: usize = 60;
    let (program, args) = command.split_once(' ').unwrap_or((command, ""));
    let name = program.rsplit('/').next().unwrap_or(program);
    let command = if args.is_empty() {
        name.to_string()
    } else {
        format!("{name} {args}")
    };
    if command.chars().count() <= MAX {
        command.to_string()
    } else {
        let cut: String = command.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes as readable text: printable ASCII as is, the rest as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_tells_absent_prior_golden_and_other() {
        let (prior, golden) = (&b"old"[..], &b"{\"items\":[1,2,3]}"[..]);
        assert_eq!(
            FileState::classify(None, Some(prior), Some(golden)),
            FileState::Absent
        );
        assert_eq!(
            FileState::classify(Some(prior), Some(prior), Some(golden)),
            FileState::Prior
        );
        assert_eq!(
            FileState::classify(Some(golden), Some(prior), Some(golden)),
            FileState::Golden
        );
        match FileState::classify(Some(&golden[..9]), Some(prior), Some(golden)) {
            FileState::Other {
                size, difference, ..
            } => {
                assert_eq!(size, 9);
                assert_eq!(
                    difference.offset, 9,
                    "a truncated file differs where it ends"
                );
                assert_eq!(difference.expected_size, golden.len() as u64);
                assert_eq!(difference.found, "");
                assert_eq!(difference.expected, "[1,2,3]}");
            }
            other => panic!("expected Other, got {other:?}"),
        }
    }

    #[test]
    fn a_mark_line_splits_into_its_name_and_argument() {
        let at = Duration::from_millis(3);
        let ack = Mark::parse("ack  unit 7 \r", at);
        assert_eq!((ack.name.as_str(), ack.arg.as_str()), ("ack", "unit 7"));
        let bare = Mark::parse("flush-begin", at);
        assert_eq!((bare.name.as_str(), bare.arg.as_str()), ("flush-begin", ""));
        assert_eq!(Mark::parse("", at).name, "");
    }

    #[test]
    fn difference_points_at_the_first_changed_byte() {
        let d = Difference::between(b"abcXef", b"abcdef");
        assert_eq!(
            (d.offset, d.found.as_str(), d.expected.as_str()),
            (3, "Xef", "def")
        );
        assert_eq!(escape(b"a\n\x00"), "a\\n\\x00");
    }
}
