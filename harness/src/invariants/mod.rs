//! Invariants: the promises a scenario checks after every case.
//!
//! Each invariant is a pure function of the case's [`Context`] (expectations, census, plan,
//! outcome) that returns a [`Verdict`]: no I/O, no clock. One invariant lives in one file,
//! with unit tests on hand-built outcomes. To add one: write the file, add a variant to
//! [`InvariantName`], and register it in [`InvariantName::check`] and
//! [`InvariantName::is_checked_by`].

mod acked_survives;
mod atomic_output;
mod drain_deadline;
mod exit_code;
mod handler_no_io;
mod idempotent_teardown;
mod no_crash_output;
mod no_duplicate_work;
mod no_leftover_processes;
mod resume_completes;
mod signal_forwarded;
#[cfg(test)]
pub(crate) mod testing;

pub use no_crash_output::crash_lines;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::census::Census;
use crate::outcome::Outcome;
use crate::plan::Plan;
use crate::scenario::{Expect, Severity};

/// What an invariant reads.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub expect: &'a Expect,
    pub census: &'a Census,
    pub plan: &'a Plan,
    pub outcome: &'a Outcome,
}

/// Whether a promise held in one case, and if not, the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    Held,
    Violated {
        evidence: Vec<String>,
    },
    /// Broken, but the scenario takes this promise as advice (`handler_io = "warn"`): the
    /// report shows it and the case still passes.
    Warned {
        evidence: Vec<String>,
    },
}

impl Verdict {
    pub fn violated(evidence: Vec<String>) -> Verdict {
        Verdict::Violated { evidence }
    }

    pub fn is_violated(&self) -> bool {
        matches!(self, Verdict::Violated { .. })
    }
}

/// The invariants killpoint knows, by the name scenario files use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvariantName {
    /// The exit status is one the scenario documents for the situation.
    ExitCode,
    /// Each output is absent, its prior content or complete; no temp file is left behind.
    AtomicOutput,
    /// From the first strike, the whole tree is gone within the deadline.
    DrainDeadline,
    /// No process outlives the target's main process.
    NoLeftoverProcesses,
    /// Every acknowledged id is present afterwards.
    AckedSurvives,
    /// stderr shows no crash: traceback, panic, segfault, sanitizer report.
    NoCrashOutput,
    /// More signals during teardown change nothing; `once` markers appear exactly once.
    IdempotentTeardown,
    /// Every child alive at the strike receives a termination signal before its parent
    /// exits.
    SignalForwarded,
    /// Signal handlers write and sync no files.
    HandlerNoIo,
    /// The resume command finishes the work as a clean run would.
    ResumeCompletes,
    /// No unit of work is reported done twice, in the case or by the resume.
    NoDuplicateWork,
}

impl InvariantName {
    pub const ALL: [InvariantName; 11] = [
        InvariantName::ExitCode,
        InvariantName::AtomicOutput,
        InvariantName::DrainDeadline,
        InvariantName::NoLeftoverProcesses,
        InvariantName::AckedSurvives,
        InvariantName::NoCrashOutput,
        InvariantName::IdempotentTeardown,
        InvariantName::SignalForwarded,
        InvariantName::HandlerNoIo,
        InvariantName::ResumeCompletes,
        InvariantName::NoDuplicateWork,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvariantName::ExitCode => "exit-code",
            InvariantName::AtomicOutput => "atomic-output",
            InvariantName::DrainDeadline => "drain-deadline",
            InvariantName::NoLeftoverProcesses => "no-leftover-processes",
            InvariantName::AckedSurvives => "acked-survives",
            InvariantName::NoCrashOutput => "no-crash-output",
            InvariantName::IdempotentTeardown => "idempotent-teardown",
            InvariantName::SignalForwarded => "signal-forwarded",
            InvariantName::HandlerNoIo => "handler-no-io",
            InvariantName::ResumeCompletes => "resume-completes",
            InvariantName::NoDuplicateWork => "no-duplicate-work",
        }
    }

    /// Whether a scenario with these expectations checks this invariant.
    pub fn is_checked_by(self, expect: &Expect) -> bool {
        match self {
            InvariantName::ExitCode => true,
            InvariantName::AtomicOutput => !expect.outputs.is_empty(),
            InvariantName::DrainDeadline => expect.deadline.is_some(),
            InvariantName::NoLeftoverProcesses => expect.no_leftover_processes,
            InvariantName::AckedSurvives => expect.acked.is_some(),
            InvariantName::NoCrashOutput => expect.no_crash_output,
            InvariantName::IdempotentTeardown => {
                expect.idempotent_teardown || !expect.once.is_empty()
            }
            InvariantName::SignalForwarded => expect.signal_forwarded,
            InvariantName::HandlerNoIo => expect.handler_io != Severity::Off,
            InvariantName::ResumeCompletes => expect.resume.is_some(),
            InvariantName::NoDuplicateWork => expect.work_reports().is_some(),
        }
    }

    /// Whether a violation of it is only a warning for this scenario.
    pub fn is_advisory(self, expect: &Expect) -> bool {
        self == InvariantName::HandlerNoIo && expect.handler_io == Severity::Warn
    }

    /// What a scenario must declare to have this invariant checked.
    pub fn how_to_enable(self) -> &'static str {
        match self {
            InvariantName::ExitCode => "always checked",
            InvariantName::AtomicOutput => "declare `outputs` in [expect]",
            InvariantName::DrainDeadline => "declare `deadline` in [expect]",
            InvariantName::NoLeftoverProcesses => "set `no_leftover_processes = true` in [expect]",
            InvariantName::AckedSurvives => "declare [expect.acked] with `ack` and `survivors`",
            InvariantName::NoCrashOutput => "set `no_crash_output = true` in [expect]",
            InvariantName::IdempotentTeardown => {
                "set `idempotent_teardown = true` or declare [[expect.once]] markers"
            }
            InvariantName::SignalForwarded => "set `signal_forwarded = true` in [expect]",
            InvariantName::HandlerNoIo => {
                "set `handler_io = \"violation\"` in [expect] (\"warn\" only reports it)"
            }
            InvariantName::ResumeCompletes => "declare [expect.resume] with a `command`",
            InvariantName::NoDuplicateWork => {
                "declare [expect.resume], with `work` or with [expect.acked]"
            }
        }
    }

    pub fn check(self, ctx: &Context) -> Verdict {
        match self {
            InvariantName::ExitCode => exit_code::check(ctx),
            InvariantName::AtomicOutput => atomic_output::check(ctx),
            InvariantName::DrainDeadline => drain_deadline::check(ctx),
            InvariantName::NoLeftoverProcesses => no_leftover_processes::check(ctx),
            InvariantName::AckedSurvives => acked_survives::check(ctx),
            InvariantName::NoCrashOutput => no_crash_output::check(ctx),
            InvariantName::IdempotentTeardown => idempotent_teardown::check(ctx),
            InvariantName::SignalForwarded => signal_forwarded::check(ctx),
            InvariantName::HandlerNoIo => handler_no_io::check(ctx),
            InvariantName::ResumeCompletes => resume_completes::check(ctx),
            InvariantName::NoDuplicateWork => no_duplicate_work::check(ctx),
        }
    }
}

impl fmt::Display for InvariantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every invariant the scenario checks, judged on one case. An advisory invariant's
/// violation becomes a warning.
pub fn judge(ctx: &Context) -> Vec<(InvariantName, Verdict)> {
    InvariantName::ALL
        .into_iter()
        .filter(|name| name.is_checked_by(ctx.expect))
        .map(|name| {
            let verdict = match name.check(ctx) {
                Verdict::Violated { evidence } if name.is_advisory(ctx.expect) => {
                    Verdict::Warned { evidence }
                }
                verdict => verdict,
            };
            (name, verdict)
        })
        .collect()
}

/// Milliseconds with one decimal, for evidence lines.
pub(crate) fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
