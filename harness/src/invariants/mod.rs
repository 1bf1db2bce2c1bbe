//! Invariants: the promises a scenario checks after every case.
//!
//! Each invariant is a pure function of the case's [`Context`] (expectations, census, plan,
//! outcome) that returns a [`Verdict`]: no I/O, no clock. One invariant lives in one file,
//! with unit tests on hand-built outcomes, and is one row of [`BUILT_IN`]: its name, when a
//! scenario checks it, how to turn it on, whether it only warns, and its check. To add one:
//! write the file, add its name to [`InvariantName`] (the vocabulary scenario files
//! spell), and add its row here.
//!
//! A user adds a promise of their own with [`Invariant::new`] and
//! [`Scenario::invariant`](crate::Scenario::invariant): it is judged on every case like
//! the built-in ones, and named in reports by its own name.
//!
//! ```
//! use std::time::Duration;
//! use killpoint::{Expect, Invariant, Scenario, ScenarioResult, Signal, Strike, Verdict};
//!
//! // The program promises to say goodbye on stdout whenever it is stopped with SIGTERM,
//! // but it says so only after its work: a strike before then finds no goodbye.
//! let report = Scenario::command("sh")
//!     .arg("-c")
//!     .arg("trap 'exit 14' TERM; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo goodbye")
//!     .strike(Strike::after(Duration::ZERO..Duration::from_millis(100)).signal(Signal::SIGTERM))
//!     .expect(Expect::exit_codes().interrupted([14]))
//!     .invariant(Invariant::new("says-goodbye", |ctx| {
//!         if ctx.outcome.stdout.text.contains("goodbye") {
//!             Verdict::Held
//!         } else {
//!             Verdict::violated(vec![format!("stdout: {:?}", ctx.outcome.stdout.text)])
//!         }
//!     }))
//!     .cases(4)
//!     .run();
//! assert_eq!(report.result, ScenarioResult::Violated);
//! let failure = report.failure.unwrap();
//! assert_eq!(failure.violations[0].0.as_str(), "says-goodbye");
//! assert_eq!(failure.violations[0].1, ["stdout: \"\""]);
//! ```

mod acked_survives;
pub(crate) mod atomic_output;
mod drain_deadline;
mod durable_output;
mod exit_code;
mod handler_no_io;
mod idempotent_teardown;
mod in_flight_completes;
mod no_crash_output;
mod no_duplicate_work;
mod no_leftover_processes;
mod resume_completes;
mod signal_forwarded;
pub(crate) mod stops_accepting;
#[cfg(test)]
pub(crate) mod testing;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::census::Census;
pub use crate::expect::InvariantName;
use crate::expect::{Expect, Severity};
use crate::outcome::Outcome;
use crate::plan::Plan;

/// What an invariant reads: the judged case's context.
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

/// One built-in invariant: the only place that says what it checks and when.
pub struct Row {
    pub name: InvariantName,
    /// Whether a scenario with these expectations checks it.
    pub checked_by: fn(&Expect) -> bool,
    /// What a scenario must declare to have it checked.
    pub how_to_enable: &'static str,
    /// Whether a violation is only a warning for this scenario.
    pub advisory: fn(&Expect) -> bool,
    pub check: fn(&Context) -> Verdict,
}

fn always(_: &Expect) -> bool {
    true
}

fn never(_: &Expect) -> bool {
    false
}

/// The built-in invariants, in the order reports list them.
pub static BUILT_IN: [Row; 14] = [
    Row {
        name: InvariantName::ExitCode,
        checked_by: always,
        how_to_enable: "always checked",
        advisory: never,
        check: exit_code::check,
    },
    Row {
        name: InvariantName::AtomicOutput,
        checked_by: |e| !e.outputs.is_empty() || (e.no_temp_leftovers && !e.temp_scope.is_empty()),
        how_to_enable: "declare `outputs` or `temp_scope` in [expect]",
        advisory: never,
        check: atomic_output::check,
    },
    Row {
        name: InvariantName::DrainDeadline,
        checked_by: |e| e.deadline.is_some(),
        how_to_enable: "declare `deadline` in [expect]",
        advisory: never,
        check: drain_deadline::check,
    },
    Row {
        name: InvariantName::NoLeftoverProcesses,
        checked_by: |e| e.no_leftover_processes,
        how_to_enable: "set `no_leftover_processes = true` in [expect]",
        advisory: never,
        check: no_leftover_processes::check,
    },
    Row {
        name: InvariantName::AckedSurvives,
        checked_by: |e| e.acked.is_some(),
        how_to_enable: "declare [expect.acked] with `ack` and `survivors`",
        advisory: never,
        check: acked_survives::check,
    },
    Row {
        name: InvariantName::NoCrashOutput,
        checked_by: |e| e.no_crash_output,
        how_to_enable: "set `no_crash_output = true` in [expect]",
        advisory: never,
        check: no_crash_output::check,
    },
    Row {
        name: InvariantName::IdempotentTeardown,
        checked_by: |e| e.idempotent_teardown || !e.once.is_empty(),
        how_to_enable: "set `idempotent_teardown = true` or declare [[expect.once]] markers",
        advisory: never,
        check: idempotent_teardown::check,
    },
    Row {
        name: InvariantName::SignalForwarded,
        checked_by: |e| e.signal_forwarded,
        how_to_enable: "set `signal_forwarded = true` in [expect]",
        advisory: never,
        check: signal_forwarded::check,
    },
    Row {
        name: InvariantName::HandlerNoIo,
        checked_by: |e| e.handler_io != Severity::Off,
        how_to_enable: "set `handler_io = \"violation\"` in [expect] (\"warn\" only reports it)",
        advisory: |e| e.handler_io == Severity::Warn,
        check: handler_no_io::check,
    },
    Row {
        name: InvariantName::ResumeCompletes,
        checked_by: |e| e.resume.is_some(),
        how_to_enable: "declare [expect.resume] with a `command`",
        advisory: never,
        check: resume_completes::check,
    },
    Row {
        name: InvariantName::NoDuplicateWork,
        checked_by: |e| e.work_reports().is_some(),
        how_to_enable: "declare [expect.resume], with `work` or with [expect.acked]",
        advisory: never,
        check: no_duplicate_work::check,
    },
    Row {
        name: InvariantName::InFlightCompletes,
        checked_by: |e| e.history,
        how_to_enable: "add a built-in client: [[client]] http = { url = \"http://127.0.0.1:{port}/…\", … }",
        advisory: never,
        check: in_flight_completes::check,
    },
    Row {
        name: InvariantName::StopsAccepting,
        checked_by: |e| e.history,
        how_to_enable: "add a built-in client: [[client]] http = { url = \"http://127.0.0.1:{port}/…\", … }",
        advisory: never,
        check: stops_accepting::check,
    },
    Row {
        name: InvariantName::DurableOutput,
        checked_by: |e| e.power && e.durable && !e.outputs.is_empty(),
        how_to_enable: "a power strike (`signal = \"POWER\"`) and `outputs` in [expect]",
        advisory: never,
        check: durable_output::check,
    },
];

/// The row of a built-in invariant.
pub fn row(name: &InvariantName) -> Option<&'static Row> {
    BUILT_IN.iter().find(|row| row.name == *name)
}

/// A promise of the user's own: a pure function of the judged case's [`Context`], run on
/// every case after the built-in invariants and named in reports by its own name.
#[derive(Clone)]
pub struct Invariant {
    name: InvariantName,
    check: Arc<dyn Fn(&Context) -> Verdict + Send + Sync>,
}

impl Invariant {
    /// An invariant named `name` (a word, like the built-in `atomic-output`), checked by
    /// `check`. Panics if `name` is empty, has whitespace, or is a built-in's name.
    pub fn new(
        name: &str,
        check: impl Fn(&Context) -> Verdict + Send + Sync + 'static,
    ) -> Invariant {
        assert!(
            !name.is_empty() && !name.contains(char::is_whitespace),
            "Invariant::new(`{name}`): a name is one word, e.g. \"says-goodbye\""
        );
        assert!(
            InvariantName::built_in(name).is_none(),
            "Invariant::new(`{name}`): that is a built-in invariant's name; choose another"
        );
        Invariant {
            name: InvariantName::Custom(name.to_string()),
            check: Arc::new(check),
        }
    }

    pub fn name(&self) -> &InvariantName {
        &self.name
    }
}

impl fmt::Debug for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invariant({})", self.name)
    }
}

/// The invariants a scenario with these expectations and these invariants of its own
/// checks, in the order reports list them: built-in, checkers, own.
pub fn checked(expect: &Expect, own: &[Invariant]) -> Vec<InvariantName> {
    BUILT_IN
        .iter()
        .filter(|row| (row.checked_by)(expect))
        .map(|row| row.name.clone())
        .chain(expect.check.iter().map(|c| c.invariant()))
        .chain(own.iter().map(|i| i.name.clone()))
        .collect()
}

/// Whether a scenario checks the invariant `name`, or else what it must declare to.
pub fn is_checked(name: &InvariantName, expect: &Expect, own: &[Invariant]) -> Result<(), String> {
    match row(name) {
        Some(row) if (row.checked_by)(expect) => Ok(()),
        Some(row) => Err(row.how_to_enable.to_string()),
        None if matches!(name, InvariantName::Check(_)) => {
            if expect.check.iter().any(|c| c.invariant() == *name) {
                Ok(())
            } else {
                let checker = name.as_str().trim_start_matches("check:");
                Err(format!(
                    "add a checker: [[expect.check]] with name = \"{checker}\" and its command"
                ))
            }
        }
        None if own.iter().any(|i| i.name == *name) => Ok(()),
        None => Err("add it with `Scenario::invariant`".to_string()),
    }
}

/// A checker's verdict, from what its run on the case recorded: exit 0 held, exit 1
/// broken with what it printed as the evidence.
fn checker_verdict(name: &str, outcome: &Outcome) -> Verdict {
    match outcome.checks.iter().find(|c| c.name == name) {
        Some(check) if check.held => Verdict::Held,
        Some(check) if check.output.is_empty() => Verdict::violated(vec![format!(
            "the checker `{name}` exited 1 and printed nothing"
        )]),
        // What it printed, a line per piece of evidence.
        Some(check) => Verdict::violated(check.output.lines().map(String::from).collect()),
        // Every observed run runs every checker; a hand-made outcome may not have.
        None => Verdict::violated(vec![format!("the checker `{name}` did not run")]),
    }
}

/// Every invariant the scenario checks, judged on one case: the built-in rows its
/// expectations turn on, then its checkers, then its own. An advisory invariant's
/// violation becomes a warning.
pub fn judge(ctx: &Context, own: &[Invariant]) -> Vec<(InvariantName, Verdict)> {
    let built_in = BUILT_IN
        .iter()
        .filter(|row| (row.checked_by)(ctx.expect))
        .map(|row| {
            let verdict = match (row.check)(ctx) {
                Verdict::Violated { evidence } if (row.advisory)(ctx.expect) => {
                    Verdict::Warned { evidence }
                }
                verdict => verdict,
            };
            (row.name.clone(), verdict)
        });
    let checkers = ctx
        .expect
        .check
        .iter()
        .map(|c| (c.invariant(), checker_verdict(&c.name, ctx.outcome)));
    let own = own.iter().map(|i| (i.name.clone(), (i.check)(ctx)));
    built_in.chain(checkers).chain(own).collect()
}
