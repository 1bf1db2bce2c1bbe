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
mod no_leftover_processes;
#[cfg(test)]
pub(crate) mod testing;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::census::Census;
use crate::outcome::Outcome;
use crate::plan::Plan;
use crate::scenario::Expect;

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
    Violated { evidence: Vec<String> },
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
}

impl InvariantName {
    pub const ALL: [InvariantName; 5] = [
        InvariantName::ExitCode,
        InvariantName::AtomicOutput,
        InvariantName::DrainDeadline,
        InvariantName::NoLeftoverProcesses,
        InvariantName::AckedSurvives,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvariantName::ExitCode => "exit-code",
            InvariantName::AtomicOutput => "atomic-output",
            InvariantName::DrainDeadline => "drain-deadline",
            InvariantName::NoLeftoverProcesses => "no-leftover-processes",
            InvariantName::AckedSurvives => "acked-survives",
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
        }
    }

    /// What a scenario must declare to have this invariant checked.
    pub fn how_to_enable(self) -> &'static str {
        match self {
            InvariantName::ExitCode => "always checked",
            InvariantName::AtomicOutput => "declare `outputs` in [expect]",
            InvariantName::DrainDeadline => "declare `deadline` in [expect]",
            InvariantName::NoLeftoverProcesses => "set `no_leftover_processes = true` in [expect]",
            InvariantName::AckedSurvives => "declare [expect.acked] with `ack` and `survivors`",
        }
    }

    pub fn check(self, ctx: &Context) -> Verdict {
        match self {
            InvariantName::ExitCode => exit_code::check(ctx),
            InvariantName::AtomicOutput => atomic_output::check(ctx),
            InvariantName::DrainDeadline => drain_deadline::check(ctx),
            InvariantName::NoLeftoverProcesses => no_leftover_processes::check(ctx),
            InvariantName::AckedSurvives => acked_survives::check(ctx),
        }
    }
}

impl fmt::Display for InvariantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every invariant the scenario checks, judged on one case.
pub fn judge(ctx: &Context) -> Vec<(InvariantName, Verdict)> {
    InvariantName::ALL
        .into_iter()
        .filter(|name| name.is_checked_by(ctx.expect))
        .map(|name| (name, name.check(ctx)))
        .collect()
}

/// Milliseconds with one decimal, for evidence lines.
pub(crate) fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
