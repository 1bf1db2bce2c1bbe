//! What must hold after every case: the `[expect]` table of a scenario, and the names
//! of the invariants it turns on.

mod acked;
mod checks;
mod outputs;
mod resume;
mod teardown;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use acked::{AckedSpec, IdReader, Pattern, Reports, SurvivorSource, Survivors};
pub use checks::{CheckSpec, valid_name as valid_checker_name};
pub use outputs::{Judge, OutputSpec};
pub use resume::ResumeSpec;
pub use teardown::{MarkerSource, OnceSpec, Severity};

use crate::values::{self, ExitStatus, Signal, WorkPath};

/// What must hold after every case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exit statuses of a run that no strike reached.
    #[serde(default = "default_clean")]
    pub clean: Vec<ExitStatus>,
    /// Exit statuses after a catchable signal (SIGTERM, SIGINT, …); unchecked if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Vec<ExitStatus>>,
    /// Exit statuses after SIGKILL.
    #[serde(default = "default_killed")]
    pub killed: Vec<ExitStatus>,
    /// Output files that must be atomic: absent, prior content, or complete (the
    /// census's content, or accepted by the output's `valid` command).
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
    /// After a graceful stop, no new file may be left beside an output (or in
    /// `temp_scope`).
    #[serde(default = "yes")]
    pub no_temp_leftovers: bool,
    /// Where temp leftovers are looked for: globs over sandbox paths, recursive (`"**"`,
    /// `"tmp/**"`); default: each output's directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temp_scope: Vec<values::PathGlob>,
    /// New files that may remain (`"*.log"`), wherever they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temp_allow: Vec<values::PathGlob>,
    /// From the first strike, the whole process tree must be gone within this time.
    #[serde(
        default,
        with = "values::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline: Option<Duration>,
    /// No process of the tree may outlive the target's main process by more than
    /// `leftover_grace`.
    #[serde(default = "yes")]
    pub no_leftover_processes: bool,
    /// How long after the main process exits the rest of its tree may take to end before
    /// what still runs counts as left over; default [`DEFAULT_LEFTOVER_GRACE`], never more
    /// than `deadline`.
    #[serde(
        default,
        with = "values::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub leftover_grace: Option<Duration>,
    /// How the target acknowledges work and where what survived is read: every
    /// acknowledged id must survive (`acked-survives`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked: Option<AckedSpec>,
    /// A command that resumes interrupted work, run after every case: it must complete the
    /// work (`resume-completes`) without redoing what was reported done
    /// (`no-duplicate-work`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeSpec>,
    /// Every child alive at the first strike must receive a termination signal before its
    /// parent exits (`signal-forwarded`; needs the tracer).
    #[serde(default)]
    pub signal_forwarded: bool,
    /// stderr must show no crash: tracebacks, panics, segfaults, sanitizer reports
    /// (`no-crash-output`).
    #[serde(default = "yes")]
    pub no_crash_output: bool,
    /// More crash signatures (regular expressions, one line each) for `no-crash-output`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crash_patterns: Vec<Pattern>,
    /// Teardown is idempotent: however many signals arrive, the outcome is that of the
    /// first, and each `once` marker appears exactly once (`idempotent-teardown`).
    /// Declaring `once` turns it on.
    #[serde(default)]
    pub idempotent_teardown: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub once: Vec<OnceSpec>,
    /// File writes or syncs inside a signal handler (`handler-no-io`, seen by the tracer):
    /// `"warn"` (the default) reports them, `"violation"` fails the case, `"off"`.
    #[serde(default)]
    pub handler_io: Severity,
    /// How long after the stop signal a server may still take a new connection
    /// (`stops-accepting`); default 100 ms.
    #[serde(
        default,
        with = "values::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub accept_grace: Option<Duration>,
    /// Whether a built-in client records a history (a `[[client]]` with `http` or
    /// `tcp`): `in-flight-completes` and `stops-accepting` judge it. Set from the
    /// scenario's clients, never written.
    #[serde(skip)]
    pub history: bool,
    /// After a power loss that came once the target had exited cleanly, every output must
    /// be complete: the exit promised them (`durable-output`). Default on.
    #[serde(default = "yes")]
    pub durable: bool,
    /// Whether the scenario has a power strike (`signal = "POWER"`): `durable-output`
    /// judges its cases. Set from the strikes, never written.
    #[serde(skip)]
    pub power: bool,
    /// Checkers: commands run in the sandbox after every case, the outcome as JSON on
    /// stdin; exit 0 held, 1 broken (`check:NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check: Vec<CheckSpec>,
    /// A planted bug: the invariant(s) this scenario must violate (like `#[should_panic]`).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub violation: Vec<InvariantName>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            clean: default_clean(),
            interrupted: None,
            killed: default_killed(),
            outputs: Vec::new(),
            no_temp_leftovers: true,
            temp_scope: Vec::new(),
            temp_allow: Vec::new(),
            deadline: None,
            no_leftover_processes: true,
            leftover_grace: None,
            acked: None,
            resume: None,
            signal_forwarded: false,
            no_crash_output: true,
            crash_patterns: Vec::new(),
            idempotent_teardown: false,
            once: Vec::new(),
            handler_io: Severity::Warn,
            accept_grace: None,
            history: false,
            durable: true,
            power: false,
            check: Vec::new(),
            violation: Vec::new(),
        }
    }
}

/// How long, by default, the rest of the tree may take to end after the main process:
/// a child that ends on its own a moment after its parent (a helper finishing its
/// protocol, a child dying of the signal its parent forwarded as it exited) is part of
/// the shutdown, not a leftover.
pub const DEFAULT_LEFTOVER_GRACE: Duration = Duration::from_millis(500);

impl Expect {
    /// The leftover grace in force: `leftover_grace`, else the default, within `deadline`.
    pub fn grace(&self) -> Duration {
        let grace = self.leftover_grace.unwrap_or(DEFAULT_LEFTOVER_GRACE);
        match self.deadline {
            Some(deadline) => grace.min(deadline),
            None => grace,
        }
    }

    /// Where the resume's and the case's units of work are reported: `[expect.resume]
    /// work`, else `[expect.acked] ack`; `None` without a resume step.
    pub fn work_reports(&self) -> Option<&Reports> {
        let resume = self.resume.as_ref()?;
        resume.work.as_ref().or(self.acked.as_ref().map(|a| &a.ack))
    }

    /// The declared outputs' paths.
    pub fn output_paths(&self) -> Vec<WorkPath> {
        self.outputs.iter().map(|o| o.path.clone()).collect()
    }

    /// The declared output at `path`, if there is one.
    pub fn output(&self, path: &WorkPath) -> Option<&OutputSpec> {
        self.outputs.iter().find(|o| o.path == *path)
    }

    /// The files that must hold the uninterrupted run's content after the resume.
    pub fn resume_outputs(&self) -> Vec<WorkPath> {
        match &self.resume {
            Some(ResumeSpec {
                outputs: Some(outputs),
                ..
            }) => outputs.clone(),
            Some(_) => self.output_paths(),
            None => Vec::new(),
        }
    }
}

fn default_clean() -> Vec<ExitStatus> {
    vec![ExitStatus::Code(0)]
}

fn default_killed() -> Vec<ExitStatus> {
    vec![ExitStatus::Signal(Signal::SIGKILL)]
}

fn yes() -> bool {
    true
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<InvariantName>, D::Error> {
    // A visitor rather than an untagged enum, so that a bad name's own error (which names
    // the invariants there are) reaches the user.
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<InvariantName>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an invariant name or a list of them, e.g. \"atomic-output\"")
        }
        fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
            InvariantName::parse(name)
                .map(|n| vec![n])
                .map_err(E::custom)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut names = Vec::new();
            while let Some(name) = seq.next_element()? {
                names.push(name);
            }
            Ok(names)
        }
    }
    d.deserialize_any(Visitor)
}

/// An invariant, by the name scenario files and reports use: `atomic-output`. The
/// built-in ones are listed here; what each checks, and when, is its row in
/// [`crate::invariants`]. A user's own invariant is named [`InvariantName::Custom`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// Every request the server had taken when asked to stop gets a complete response.
    InFlightCompletes,
    /// Once asked to stop, the server takes no new connection after `accept_grace`.
    StopsAccepting,
    /// After a power loss that came once the target had exited cleanly, every output is
    /// complete.
    DurableOutput,
    /// A checker's promise, `[[expect.check]]`: held as `check:NAME`, whole.
    Check(String),
    /// A promise of the user's own, added with [`Scenario::invariant`](crate::Scenario::invariant).
    Custom(String),
}

impl InvariantName {
    /// The built-in invariants, in the order reports list them.
    pub const BUILT_IN: [InvariantName; 14] = [
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
        InvariantName::InFlightCompletes,
        InvariantName::StopsAccepting,
        InvariantName::DurableOutput,
    ];

    pub fn as_str(&self) -> &str {
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
            InvariantName::InFlightCompletes => "in-flight-completes",
            InvariantName::StopsAccepting => "stops-accepting",
            InvariantName::DurableOutput => "durable-output",
            InvariantName::Check(name) | InvariantName::Custom(name) => name,
        }
    }

    /// The built-in invariant of this name, if there is one.
    pub fn built_in(name: &str) -> Option<InvariantName> {
        InvariantName::BUILT_IN
            .into_iter()
            .find(|n| n.as_str() == name)
    }
}

impl std::fmt::Display for InvariantName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for InvariantName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A file names built-in invariants and checkers (`check:NAME`); a user's own Rust
/// invariant exists only where it was added.
impl<'de> Deserialize<'de> for InvariantName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        InvariantName::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl InvariantName {
    /// The invariant a scenario file names: a built-in one, or `check:NAME`.
    pub fn parse(name: &str) -> Result<InvariantName, String> {
        if let Some(checker) = name.strip_prefix(checks::PREFIX) {
            checks::valid_name(checker)?;
            return Ok(InvariantName::Check(name.to_string()));
        }
        InvariantName::built_in(name).ok_or_else(|| {
            let known: Vec<String> = InvariantName::BUILT_IN
                .iter()
                .map(|n| format!("`{n}`"))
                .collect();
            format!(
                "unknown invariant `{name}`, expected one of {}, or `check:NAME` for a checker",
                known.join(", ")
            )
        })
    }
}
