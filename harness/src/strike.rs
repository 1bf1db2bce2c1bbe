//! A strike as written in a scenario: one `[[strike]]` entry of the strike space —
//! which signals, at which point, to whom. A plan's concrete strikes are
//! [`PlannedStrike`](crate::plan::PlannedStrike)s drawn from these.

use serde::{Deserialize, Serialize};

use crate::syscalls::{SyscallClass, When, Whens};
use crate::values::{DelayRange, Nth, PathGlob, Signal, SignalSet};

/// One `[[strike]]` entry: which signals, at which point, to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strike {
    /// The signal, or a list to choose from.
    pub signal: SignalSet,
    #[serde(default)]
    pub at: PointSpec,
    #[serde(default)]
    pub to: Recipient,
}

/// Where a strike lands: after a delay, at a syscall, or at a probe mark.
///
/// Written as a table: `{ after = "0ms..300ms" }`, `{ after_handler = "SIGTERM" }`,
/// `{ syscall = "write", path = "out.json*", nth = "1..", when = "entry" }`, or
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
    },
    /// The entry or exit of the n-th matching syscall, seen by the tracer.
    Syscall(SyscallPoint),
    /// The n-th probe mark of a name, made by the target itself.
    Probe(ProbePoint),
}

impl Default for PointSpec {
    fn default() -> Self {
        PointSpec::Delay {
            after: None,
            after_handler: None,
        }
    }
}

impl PointSpec {
    /// Whether this point needs the ptrace tracer.
    pub fn needs_tracer(&self) -> bool {
        match self {
            PointSpec::Delay { after_handler, .. } => after_handler.is_some(),
            PointSpec::Syscall(_) => true,
            PointSpec::Probe(_) => false,
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<DelayRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_handler: Option<Signal>,
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
}

impl TryFrom<RawPoint> for PointSpec {
    type Error = String;

    fn try_from(raw: RawPoint) -> Result<Self, String> {
        if let Some(name) = raw.probe {
            if raw.syscall.is_some() || raw.path.is_some() || raw.when.is_some() {
                return Err(
                    "a probe point lands at a mark, not a syscall: drop `syscall`, `path` and `when`, or `probe`"
                        .into(),
                );
            }
            if raw.after.is_some() || raw.after_handler.is_some() {
                return Err(
                    "a probe point lands at a mark, not after a delay: drop `after`/`after_handler` or `probe`"
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
            return Ok(PointSpec::Delay {
                after: raw.after,
                after_handler: raw.after_handler,
            });
        };
        if raw.after.is_some() || raw.after_handler.is_some() {
            return Err(
                "a syscall point lands at a call, not after a delay: drop `after`/`after_handler` or `syscall`"
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
                after_handler,
            } => RawPoint {
                after,
                after_handler,
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
    /// The target's whole process group (as Ctrl-C in a terminal would do).
    Group,
}
