//! A strike as written in a scenario: one `[[strike]]` entry of the strike space —
//! which signals, at which point, to whom. A plan's concrete strikes are
//! [`PlannedStrike`](crate::plan::PlannedStrike)s drawn from these.

use serde::{Deserialize, Serialize};

use crate::syscalls::{SyscallClass, When, Whens};
use crate::values::{DelayRange, Nth, PathGlob, ProgramGlob, Signal, SignalSet};

/// One `[[strike]]` entry: which signals, at which point, to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawStrike", into = "RawStrike")]
pub struct Strike {
    /// The signal, or a list to choose from.
    pub signal: SignalSet,
    pub at: PointSpec,
    pub to: Recipient,
    /// Which process the strike hits: a syscall point counts only its calls and the
    /// signal goes to the process that made the call; a delay point's signal goes to the
    /// first such process alive when it is due. `None`: a syscall point counts the whole
    /// tree's calls, a delay's signal goes to the main process.
    pub process: Option<ProcessSelector>,
    /// `signal = "POWER"`: a power loss, not a signal. The tree is killed (`signal` is
    /// SIGKILL) and the sandbox is put in a state a power failure could have left.
    pub power: bool,
}

impl Strike {
    /// Whether this strike needs the ptrace tracer: its point does, or it names a
    /// program, which only the tracer's exec events tell.
    pub fn needs_tracer(&self) -> bool {
        // A power loss needs the write log, which the tracer records.
        self.power
            || self.at.needs_tracer()
            || matches!(self.process, Some(ProcessSelector::Program(_)))
    }
}

/// Which process a strike hits: `"main"`, or a glob over program names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProcessSelector {
    /// The target's own main process, the one killpoint spawned, whatever it runs.
    Main,
    /// The processes running a program whose name matches (see [`ProgramGlob`]).
    Program(ProgramGlob),
}

impl ProcessSelector {
    /// Whether the process `pid`, running `program`, is one this selects; `main` is the
    /// target's main process.
    pub fn selects(&self, pid: i32, main: i32, program: &str) -> bool {
        match self {
            ProcessSelector::Main => pid == main,
            ProcessSelector::Program(glob) => glob.matches(program),
        }
    }
}

impl std::str::FromStr for ProcessSelector {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "main" => Ok(ProcessSelector::Main),
            _ => text.parse().map(ProcessSelector::Program),
        }
    }
}

/// As written: `main`, or the glob.
impl std::fmt::Display for ProcessSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessSelector::Main => f.write_str("main"),
            ProcessSelector::Program(glob) => write!(f, "{glob}"),
        }
    }
}

impl Serialize for ProcessSelector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProcessSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected \"main\" or a program name glob, e.g. \"rsync\" or \"python*\"",
            )
        })?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A `[[strike]]` entry as written; checked into a [`Strike`], where the keys that must
/// agree with its point are checked together.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStrike {
    signal: StrikeSignal,
    #[serde(default)]
    at: PointSpec,
    #[serde(default)]
    to: Recipient,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<ProcessSelector>,
}

impl TryFrom<RawStrike> for Strike {
    type Error = String;

    fn try_from(raw: RawStrike) -> Result<Self, String> {
        if raw.process.is_some() && matches!(raw.at, PointSpec::Probe(_)) {
            return Err(
                "`process` picks the process a syscall or delay strike hits, and a probe mark does not say which process made it: drop `process`, or strike at a syscall"
                    .into(),
            );
        }
        let (signal, power) = match raw.signal {
            StrikeSignal::Power => (SignalSet(vec![Signal::SIGKILL]), true),
            StrikeSignal::Signals(set) => (set, false),
        };
        if !power && raw.at == PointSpec::AfterExit {
            return Err(
                "`after_exit` is the moment of a power loss after the run (`signal = \"POWER\"`): a signal needs a process to reach"
                    .into(),
            );
        }
        if power && raw.to == Recipient::Group {
            return Err(
                "a power loss takes the whole machine down, not a process group: drop `to`".into(),
            );
        }
        Ok(Strike {
            signal,
            at: raw.at,
            to: raw.to,
            process: raw.process,
            power,
        })
    }
}

impl From<Strike> for RawStrike {
    fn from(strike: Strike) -> RawStrike {
        RawStrike {
            signal: if strike.power {
                StrikeSignal::Power
            } else {
                StrikeSignal::Signals(strike.signal)
            },
            at: strike.at,
            to: strike.to,
            process: strike.process,
        }
    }
}

/// A strike entry's `signal` as written: a signal, a list to choose from, or `"POWER"`.
#[derive(Debug, Clone)]
pub(crate) enum StrikeSignal {
    Power,
    Signals(SignalSet),
}

/// The pseudo-signal of a power loss.
pub const POWER: &str = "POWER";

impl Serialize for StrikeSignal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StrikeSignal::Power => s.serialize_str(POWER),
            StrikeSignal::Signals(set) => set.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for StrikeSignal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            One(String),
            Many(Vec<String>),
        }
        let written = Written::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "a signal name or a list of signal names, e.g. [\"SIGTERM\", \"SIGINT\"], or \"POWER\"",
            )
        })?;
        let is_power = |s: &str| s.trim().eq_ignore_ascii_case(POWER);
        let names = match written {
            Written::One(name) if is_power(&name) => return Ok(StrikeSignal::Power),
            Written::One(name) => vec![name],
            Written::Many(names) => names,
        };
        if names.iter().any(|n| is_power(n)) {
            return Err(serde::de::Error::custom(
                "\"POWER\" is a power loss, not a signal to choose among others: give it a [[strike]] entry of its own",
            ));
        }
        if names.is_empty() {
            return Err(serde::de::Error::custom(
                "the signal list is empty: name at least one signal",
            ));
        }
        let signals = names
            .iter()
            .map(|n| n.parse::<Signal>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::de::Error::custom)?;
        Ok(StrikeSignal::Signals(SignalSet(signals)))
    }
}

/// Where a strike lands: after a delay, at a syscall, or at a probe mark.
///
/// Written as a table: `{ after = "0ms..300ms" }`, `{ after_handler = "SIGTERM" }`,
/// `{ after_exec = "python*" }`, `{ syscall = "write", path = "out.json*", nth = "1..", when = "entry" }`, or
/// `{ probe = "flush-begin", nth = "1.." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPoint", into = "RawPoint")]
pub enum PointSpec {
    /// A delay, counted from spawn or from the moment a handler exists.
    Delay {
        /// The delay range. Default: the census run's span, so strikes land while the
        /// target works.
        after: Option<DelayRange>,
        /// Count the delay from the moment the target installs its handler for this
        /// signal, seen through `rt_sigaction` by the tracer. Without it, the delay counts
        /// from the moment the strike's own signal has a handler (polled from
        /// `/proc/PID/status`), or from spawn if the census saw none.
        after_handler: Option<Signal>,
        /// Count the delay from the first exec of a program whose name matches, seen by
        /// the tracer (its exec event) anywhere in the tree.
        after_exec: Option<ProgramGlob>,
        /// Count the delay from the moment the target was ready (`ready`); written
        /// `after_ready = "RANGE"`, the range being `after`.
        after_ready: bool,
    },
    /// The entry or exit of the n-th matching syscall, seen by the tracer.
    Syscall(SyscallPoint),
    /// The n-th probe mark of a name, made by the target itself.
    Probe(ProbePoint),
    /// The n-th request killpoint's own clients (`http`, `tcp`) have sent, counted over
    /// all of them from the moment they start (for a plan's later strikes: from the
    /// strike before). Written `request = 5` or `request = "1..200"`.
    Request(Nth),
    /// Once the tree has gone by itself: a power loss after the run (`after_exit = true`).
    AfterExit,
}

impl Default for PointSpec {
    fn default() -> Self {
        PointSpec::Delay {
            after: None,
            after_handler: None,
            after_exec: None,
            after_ready: false,
        }
    }
}

impl PointSpec {
    /// Whether this point needs the ptrace tracer.
    pub fn needs_tracer(&self) -> bool {
        match self {
            PointSpec::Delay {
                after_handler,
                after_exec,
                ..
            } => after_handler.is_some() || after_exec.is_some(),
            PointSpec::Syscall(_) => true,
            PointSpec::Probe(_) | PointSpec::Request(_) | PointSpec::AfterExit => false,
        }
    }
}

/// A probe strike point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbePoint {
    /// The mark's name: the first word of the line the target writes.
    pub name: String,
    /// Which of the marks of that name, counted from 1 (for a plan's later strikes: from
    /// the strike before).
    pub nth: Nth,
}

/// A syscall strike point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallPoint {
    pub syscall: SyscallClass,
    /// Only calls naming a path that matches (sandbox-relative); `None`: every call.
    pub path: Option<PathGlob>,
    /// Which of the matching calls, counted from 1 over the whole process tree (for a
    /// plan's later strikes: from the strike before).
    pub nth: Nth,
    /// The sides to strike; `both` lets a case choose.
    pub when: Whens,
}

/// A point as written in the file; checked into a [`PointSpec`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<DelayRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_handler: Option<Signal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_exec: Option<ProgramGlob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_ready: Option<DelayRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    syscall: Option<SyscallClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathGlob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nth: Option<Nth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    when: Option<Whens>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<Nth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_exit: Option<bool>,
}

impl RawPoint {
    /// Whether it has a key of a delay point.
    fn has_delay(&self) -> bool {
        self.after.is_some()
            || self.after_handler.is_some()
            || self.after_exec.is_some()
            || self.after_ready.is_some()
    }
}

impl TryFrom<RawPoint> for PointSpec {
    type Error = String;

    fn try_from(raw: RawPoint) -> Result<Self, String> {
        if let Some(after_exit) = raw.after_exit {
            let alone = RawPoint {
                after_exit: None,
                ..raw.clone()
            };
            if !after_exit || alone != RawPoint::default() {
                return Err(
                    "`after_exit = true` is a moment of its own, once the tree has gone: write it alone, { after_exit = true }"
                        .into(),
                );
            }
            return Ok(PointSpec::AfterExit);
        }
        if let Some(nth) = raw.request {
            if raw.probe.is_some()
                || raw.syscall.is_some()
                || raw.path.is_some()
                || raw.when.is_some()
            {
                return Err(
                    "a request point lands when the built-in client has sent a request, not at a call or mark: drop `syscall`, `path`, `when` and `probe`, or `request`"
                        .into(),
                );
            }
            if raw.has_delay() {
                return Err(
                    "a request point lands when a request has been sent, not after a delay: drop `after`/`after_handler`/`after_exec`/`after_ready` or `request`"
                        .into(),
                );
            }
            if raw.nth.is_some() {
                return Err(
                    "`request` is the count itself: drop `nth`, e.g. { request = \"1..200\" }"
                        .into(),
                );
            }
            return Ok(PointSpec::Request(nth));
        }
        if let Some(name) = raw.probe.clone() {
            if raw.syscall.is_some() || raw.path.is_some() || raw.when.is_some() {
                return Err(
                    "a probe point lands at a mark, not a syscall: drop `syscall`, `path` and `when`, or `probe`"
                        .into(),
                );
            }
            if raw.has_delay() {
                return Err(
                    "a probe point lands at a mark, not after a delay: drop `after`/`after_handler`/`after_exec`/`after_ready` or `probe`"
                        .into(),
                );
            }
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!(
                    "`probe = \"{name}\"` is not a mark name: one word, as the target writes it, e.g. \"flush-begin\""
                ));
            }
            return Ok(PointSpec::Probe(ProbePoint {
                name,
                nth: raw.nth.unwrap_or_default(),
            }));
        }
        let Some(syscall) = raw.syscall else {
            if raw.path.is_some() || raw.nth.is_some() || raw.when.is_some() {
                return Err(
                    "`path` and `when` belong to a syscall point and `nth` to a syscall or probe point: add e.g. `syscall = \"write\"` or `probe = \"flush-begin\"`"
                        .into(),
                );
            }
            if let Some(signal) = raw.after_handler
                && !signal.is_catchable()
            {
                return Err(format!(
                    "{signal} cannot have a handler: `after_handler` needs a catchable signal"
                ));
            }
            if raw.after_handler.is_some() && raw.after_exec.is_some() {
                return Err(
                    "`after_handler` and `after_exec` are two clocks for one delay: keep one"
                        .into(),
                );
            }
            if raw
                .after_exec
                .as_ref()
                .is_some_and(|g| g.as_str() == "main")
            {
                // `process = "main"` is the main process; here it would be a program of
                // that name, which is surely not what was meant.
                return Err(
                    "`after_exec` names a program, and the main process's own exec is its spawn, which a delay counts from without it (a program named main is written \"[m]ain\")"
                        .into(),
                );
            }
            if let Some(range) = raw.after_ready {
                if raw.after.is_some() {
                    return Err(
                        "`after_ready` is the delay itself, counted from ready: drop `after`, e.g. { after_ready = \"0ms..2s\" }"
                            .into(),
                    );
                }
                if raw.after_handler.is_some() || raw.after_exec.is_some() {
                    return Err(
                        "`after_ready` is a clock of its own: drop `after_handler`/`after_exec`"
                            .into(),
                    );
                }
                return Ok(PointSpec::Delay {
                    after: Some(range),
                    after_handler: None,
                    after_exec: None,
                    after_ready: true,
                });
            }
            return Ok(PointSpec::Delay {
                after: raw.after,
                after_handler: raw.after_handler,
                after_exec: raw.after_exec,
                after_ready: false,
            });
        };
        if raw.has_delay() {
            return Err(
                "a syscall point lands at a call, not after a delay: drop `after`/`after_handler`/`after_exec`/`after_ready` or `syscall`"
                    .into(),
            );
        }
        if raw.path.is_some() && !syscall.has_path() {
            return Err(format!("`{syscall}` calls name no file: drop `path`"));
        }
        if syscall == SyscallClass::Exit
            && raw.when.as_ref().is_some_and(|w| w.contains(When::Exit))
        {
            return Err("`exit` (exit_group) never returns: strike at its entry".into());
        }
        Ok(PointSpec::Syscall(SyscallPoint {
            syscall,
            path: raw.path,
            nth: raw.nth.unwrap_or_default(),
            when: raw.when.unwrap_or_default(),
        }))
    }
}

impl From<PointSpec> for RawPoint {
    fn from(point: PointSpec) -> RawPoint {
        match point {
            PointSpec::Delay {
                after,
                after_ready: true,
                ..
            } => RawPoint {
                after_ready: Some(after.unwrap_or(DelayRange {
                    start: std::time::Duration::ZERO,
                    end: std::time::Duration::ZERO,
                })),
                ..RawPoint::default()
            },
            PointSpec::Delay {
                after,
                after_handler,
                after_exec,
                after_ready: false,
            } => RawPoint {
                after,
                after_handler,
                after_exec,
                ..RawPoint::default()
            },
            PointSpec::Syscall(p) => RawPoint {
                syscall: Some(p.syscall),
                path: p.path,
                nth: Some(p.nth),
                when: Some(p.when),
                ..RawPoint::default()
            },
            PointSpec::Probe(p) => RawPoint {
                probe: Some(p.name),
                nth: Some(p.nth),
                ..RawPoint::default()
            },
            PointSpec::Request(nth) => RawPoint {
                request: Some(nth),
                ..RawPoint::default()
            },
            PointSpec::AfterExit => RawPoint {
                after_exit: Some(true),
                ..RawPoint::default()
            },
        }
    }
}

/// Who receives a strike's signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recipient {
    /// The target process (as `kill PID` or an orchestrator's stop would do).
    #[default]
    Process,
    /// The target's whole process group (as Ctrl-C in a terminal would do). With
    /// `process`, the process group of the process struck: the target's, unless that
    /// process made a group of its own (a shell's job, a daemon).
    Group,
}
