//! A campaign: for each scenario, the census, then many cases from one master seed, judged
//! by the invariants; the first violation (by case index) is the one reported.
//!
//! Cases run in parallel threads (`jobs`), but which case is reported does not depend on
//! scheduling: each case's plan comes from its own seed, and once case `i` has failed no
//! case after `i` is started, while the ones before it still finish.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::census::{Census, Golden};
use crate::invariants::{self, Context, InvariantName, Verdict};
use crate::os::interrupt;
use crate::os::run::{self, Limits, RunError};
use crate::os::sandbox::Sandbox;
use crate::os::tracer::{SyscallStrike, TraceSetup};
use crate::outcome::{FileState, Outcome, OutputRecord};
use crate::plan::{self, Clock, Plan, Point};
use crate::scenario::{PointSpec, Scenario};
use crate::syscalls::{CONTEXT_CLASSES, ClassSet, SyscallClass};
use crate::targets::{self, Binaries};

/// The default number of cases per scenario.
pub const DEFAULT_CASES: u32 = 64;

#[derive(Debug, Clone)]
pub struct CampaignOptions {
    /// Cases per scenario; `None`: the scenario's `cases`, else [`DEFAULT_CASES`].
    pub cases: Option<u32>,
    /// The master seed.
    pub seed: u64,
    /// Cases run at once.
    pub jobs: usize,
    /// Run only the case with this seed (a reproduction).
    pub case: Option<u64>,
}

/// Runs scenarios one after another.
pub struct Campaign {
    pub options: CampaignOptions,
    /// Called after each case with (cases done, cases planned).
    pub on_case: Option<Box<dyn Fn(u64, u64) + Sync>>,
}

/// What a campaign found for one scenario.
#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub name: String,
    /// The command line of the file to rerun it, e.g. `scenarios/x.toml`.
    pub file: Option<PathBuf>,
    pub expected: Vec<InvariantName>,
    pub checked: Vec<InvariantName>,
    pub result: ScenarioResult,
    pub census: Option<Census>,
    pub cases_run: u64,
    pub cases_planned: u64,
    pub failure: Option<Failure>,
    /// With `--case`: that case, judged, whatever its verdict (a reproduction shows it all;
    /// a failing one is also `failure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<Failure>,
}

/// The verdict on a whole scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ScenarioResult {
    /// Every invariant held in every case.
    Passed,
    /// A planted bug was caught with the invariant the scenario declared.
    CaughtAsExpected,
    /// An invariant was violated that the scenario did not expect.
    Violated,
    /// The scenario declared a violation that no case produced.
    Missed,
    /// The scenario could not be run (bad target, failed census).
    Error { message: String },
    /// The harness was asked to stop.
    Interrupted,
}

impl ScenarioResult {
    pub fn ok(&self) -> bool {
        matches!(
            self,
            ScenarioResult::Passed | ScenarioResult::CaughtAsExpected
        )
    }
}

/// A reported case: the first that violated an invariant, or the one `--case` reran.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub case_index: u64,
    pub case_seed: u64,
    pub plan: Plan,
    pub violations: Vec<(InvariantName, Vec<String>)>,
    pub outcome: Outcome,
    /// The failing case's sandbox, kept for inspection.
    pub sandbox: Option<PathBuf>,
}

struct CaseResult {
    index: u64,
    seed: u64,
    plan: Plan,
    outcome: Outcome,
    verdicts: Vec<(InvariantName, Verdict)>,
    sandbox: Sandbox,
}

impl CaseResult {
    fn violations(&self) -> Vec<(InvariantName, Vec<String>)> {
        self.verdicts
            .iter()
            .filter_map(|(name, v)| match v {
                Verdict::Violated { evidence } => Some((*name, evidence.clone())),
                Verdict::Held => None,
            })
            .collect()
    }
}

impl Campaign {
    pub fn new(options: CampaignOptions) -> Campaign {
        Campaign {
            options,
            on_case: None,
        }
    }

    /// Runs one scenario: census, cases, verdict.
    pub fn run_scenario(&self, scenario: &Scenario) -> ScenarioReport {
        let planned = match self.options.case {
            Some(_) => 1,
            None => self
                .options
                .cases
                .or(scenario.cases)
                .unwrap_or(DEFAULT_CASES) as u64,
        };
        let mut report = ScenarioReport {
            scenario: scenario.label(),
            name: scenario.name.clone(),
            file: scenario.source.clone(),
            expected: scenario.expect.violation.clone(),
            checked: InvariantName::ALL
                .into_iter()
                .filter(|n| n.is_checked_by(&scenario.expect))
                .collect(),
            result: ScenarioResult::Passed,
            census: None,
            cases_run: 0,
            cases_planned: planned,
            failure: None,
            case: None,
        };
        let error = |message: String| ScenarioResult::Error { message };
        run::become_subreaper();
        let binaries = match targets::binaries(scenario) {
            Ok(b) => b,
            Err(message) => {
                report.result = error(message);
                return report;
            }
        };
        let census = match census(scenario, &binaries) {
            Ok(c) => c,
            Err(RunError::Interrupted) => {
                report.result = ScenarioResult::Interrupted;
                return report;
            }
            Err(e) => {
                report.result = error(e.to_string());
                return report;
            }
        };
        if let Err(message) = check_census(scenario, &census) {
            report.census = Some(census);
            report.result = error(message);
            return report;
        }
        let strategy = match plan::strategy(scenario, &census) {
            Ok(strategy) => strategy,
            Err(message) => {
                report.census = Some(census);
                report.result = error(message);
                return report;
            }
        };

        // Cases, in parallel; `first_failed` is the lowest failing index so far.
        let next = AtomicU64::new(0);
        let done = AtomicU64::new(0);
        let first_failed = AtomicU64::new(u64::MAX);
        let results: Mutex<Vec<CaseResult>> = Mutex::new(Vec::new());
        let errors: Mutex<Vec<(u64, RunError)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..self.options.jobs.max(1) {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        if index >= planned
                            || index > first_failed.load(Ordering::SeqCst)
                            || interrupt::requested()
                        {
                            return;
                        }
                        let seed = self
                            .options
                            .case
                            .unwrap_or_else(|| plan::case_seed(self.options.seed, index));
                        let plan = plan::generate(&strategy, seed);
                        match run_case(scenario, &binaries, &census, index, seed, plan) {
                            Ok(result) => {
                                let violated = result.verdicts.iter().any(|(_, v)| v.is_violated());
                                if violated {
                                    first_failed.fetch_min(index, Ordering::SeqCst);
                                }
                                if violated || self.options.case.is_some() {
                                    results.lock().unwrap().push(result);
                                }
                            }
                            Err(e) => {
                                first_failed.fetch_min(index, Ordering::SeqCst);
                                errors.lock().unwrap().push((index, e));
                            }
                        }
                        let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                        if let Some(on_case) = &self.on_case {
                            on_case(finished, planned);
                        }
                    }
                });
            }
        });
        report.census = Some(census);
        report.cases_run = done.load(Ordering::SeqCst);

        let first = first_failed.load(Ordering::SeqCst);
        let mut errors = errors.into_inner().unwrap();
        errors.sort_by_key(|(i, _)| *i);
        if let Some((index, e)) = errors.into_iter().next().filter(|(i, _)| *i == first) {
            report.result = match e {
                RunError::Interrupted => ScenarioResult::Interrupted,
                e => error(format!("case {index}: {e}")),
            };
            return report;
        }
        if interrupt::requested() {
            report.result = ScenarioResult::Interrupted;
            return report;
        }
        let mut results = results.into_inner().unwrap();
        results.sort_by_key(|r| r.index);
        if self.options.case.is_some()
            && let Some(rerun) = results.first()
            && !rerun.verdicts.iter().any(|(_, v)| v.is_violated())
        {
            let rerun = results.remove(0);
            report.case = Some(Failure {
                case_index: rerun.index,
                case_seed: rerun.seed,
                violations: rerun.violations(),
                plan: rerun.plan,
                outcome: rerun.outcome,
                sandbox: None,
            });
        }
        let Some(failed) = results.into_iter().next() else {
            report.result = if scenario.expect.violation.is_empty() {
                ScenarioResult::Passed
            } else {
                ScenarioResult::Missed
            };
            return report;
        };
        let violations = failed.violations();
        let only_expected = violations
            .iter()
            .all(|(name, _)| scenario.expect.violation.contains(name));
        report.result = if !scenario.expect.violation.is_empty() && only_expected {
            ScenarioResult::CaughtAsExpected
        } else {
            ScenarioResult::Violated
        };
        // Keep the sandbox of an unexpected violation for inspection; an expected one is
        // the planted bug doing what it does, and its sandbox goes.
        let sandbox = (report.result == ScenarioResult::Violated).then(|| failed.sandbox.keep());
        report.failure = Some(Failure {
            case_index: failed.index,
            case_seed: failed.seed,
            plan: failed.plan,
            violations,
            outcome: failed.outcome,
            sandbox,
        });
        if self.options.case.is_some() {
            report.case = report.failure.clone();
        }
        report
    }
}

fn limits(scenario: &Scenario) -> Limits {
    Limits {
        timeout: scenario.timeout,
        deadline: scenario.expect.deadline,
    }
}

/// The uninterrupted reference run.
fn census(scenario: &Scenario, binaries: &Binaries) -> Result<Census, RunError> {
    let sandbox = Sandbox::create(&scenario.setup)?;
    let launch = targets::launch(scenario, binaries, sandbox.path());
    let mut signals = scenario.signals();
    signals.extend(scenario.strikes.iter().filter_map(|s| match s.at {
        PointSpec::Delay { after_handler, .. } => after_handler,
        PointSpec::Syscall(_) => None,
    }));
    let trace = scenario.needs_tracer().then(|| {
        let mut classes = scenario.strike_classes();
        classes.extend(CONTEXT_CLASSES);
        classes.insert(SyscallClass::Sigaction);
        TraceSetup {
            classes,
            strikes: Vec::new(),
            root: sandbox.path().to_path_buf(),
            keep_events: true,
        }
    });
    let ran = run::run(&launch, &[], &signals, limits(scenario), trace)?;
    let (syscalls, events) = match ran.trace {
        Some(log) => (Some(log.census), log.events),
        None => (None, Vec::new()),
    };
    let mut golden = std::collections::BTreeMap::new();
    for path in &scenario.expect.outputs {
        golden.insert(path.clone(), sandbox.read(path)?.map(Golden::new));
    }
    Ok(Census {
        status: ran.status,
        duration: ran.exited_at,
        handlers: ran
            .handlers_seen
            .into_iter()
            .filter(|(signal, _)| signals.contains(signal))
            .map(|(signal, at)| (signal, crate::census::HandlerSeen { at }))
            .collect(),
        golden,
        files_after: sandbox.list(&scenario.expect.outputs),
        leftovers: ran.leftovers,
        stdout: ran.stdout,
        stderr: ran.stderr,
        syscalls,
        events,
    })
}

/// What the tracer must do for a case of this scenario under `plan`: trap the plan's
/// syscall classes and the context classes, and fire the syscall strikes.
pub fn case_trace(scenario: &Scenario, plan: &Plan, root: &std::path::Path) -> Option<TraceSetup> {
    if !scenario.needs_tracer() {
        return None;
    }
    let mut classes: ClassSet = CONTEXT_CLASSES.into_iter().collect();
    let mut strikes = Vec::new();
    for (index, strike) in plan.strikes.iter().enumerate() {
        match &strike.point {
            Point::Syscall {
                syscall,
                path,
                nth,
                when,
            } => {
                classes.insert(*syscall);
                strikes.push(SyscallStrike {
                    index,
                    signal: strike.signal,
                    to: strike.to,
                    class: *syscall,
                    path: path.clone(),
                    nth: *nth,
                    when: *when,
                });
            }
            Point::Delay {
                clock: Clock::Handler(_),
                ..
            } => {
                classes.insert(SyscallClass::Sigaction);
            }
            Point::Delay { .. } => {}
        }
    }
    Some(TraceSetup {
        classes,
        strikes,
        root: root.to_path_buf(),
        keep_events: false,
    })
}

/// A census that cannot serve as the reference makes the scenario unusable.
fn check_census(scenario: &Scenario, census: &Census) -> Result<(), String> {
    let stderr_tail = || {
        let text = census.stderr.text.trim_end();
        if text.is_empty() {
            String::new()
        } else {
            let tail: Vec<&str> = text
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("\n  its stderr ended with:\n    {}", tail.join("\n    "))
        }
    };
    if census.duration >= scenario.timeout {
        return Err(format!(
            "the uninterrupted run did not finish within the timeout ({}): raise `timeout` or fix the command",
            crate::scenario::format_duration(scenario.timeout)
        ));
    }
    if !scenario.expect.clean.contains(&census.status) {
        return Err(format!(
            "the uninterrupted run ended with {}, which `[expect] clean` does not allow{}",
            census.status,
            stderr_tail()
        ));
    }
    for (path, golden) in &census.golden {
        if golden.is_none() {
            return Err(format!(
                "the uninterrupted run did not write the output `{path}`: check `command` and `[expect] outputs`"
            ));
        }
    }
    if !census.leftovers.is_empty() {
        let list: Vec<String> = census
            .leftovers
            .iter()
            .map(|p| format!("pid {} ({})", p.pid, p.command))
            .collect();
        return Err(format!(
            "the uninterrupted run left processes running: {}",
            list.join(", ")
        ));
    }
    Ok(())
}

fn run_case(
    scenario: &Scenario,
    binaries: &Binaries,
    census: &Census,
    index: u64,
    seed: u64,
    plan: Plan,
) -> Result<CaseResult, RunError> {
    let sandbox = Sandbox::create(&scenario.setup)?;
    let outputs = &scenario.expect.outputs;
    let prior: Vec<Option<Vec<u8>>> = outputs
        .iter()
        .map(|p| sandbox.read(p))
        .collect::<Result<_, _>>()?;
    let launch = targets::launch(scenario, binaries, sandbox.path());
    let trace = case_trace(scenario, &plan, sandbox.path());
    let ran = run::run(&launch, &plan.strikes, &[], limits(scenario), trace)?;

    let mut records = Vec::new();
    for (path, prior) in outputs.iter().zip(&prior) {
        let after = sandbox.read(path)?;
        let golden = census.golden_bytes(path);
        records.push(OutputRecord {
            path: path.clone(),
            before: FileState::classify(prior.as_deref(), prior.as_deref(), golden),
            after: FileState::classify(after.as_deref(), prior.as_deref(), golden),
        });
    }
    let stray_files = sandbox
        .list(outputs)
        .into_iter()
        .filter(|f| !census.files_after.contains(f))
        .collect();
    let outcome = Outcome {
        status: ran.status,
        exited_at: ran.exited_at,
        strikes: ran.strikes,
        tree_gone_at: ran.tree_gone_at,
        killed: ran.killed,
        leftovers: ran.leftovers,
        outputs: records,
        stray_files,
        stdout: ran.stdout,
        stderr: ran.stderr,
        tracking: ran.tracking,
        trace: ran.trace.map(|log| log.windows).unwrap_or_default(),
    };
    let verdicts = invariants::judge(&Context {
        expect: &scenario.expect,
        census,
        plan: &plan,
        outcome: &outcome,
    });
    Ok(CaseResult {
        index,
        seed,
        plan,
        outcome,
        verdicts,
        sandbox,
    })
}
