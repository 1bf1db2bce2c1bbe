//! A campaign: for each scenario, the census, then its cases, judged by the invariants;
//! the first violation (by case index) is shrunk and reported.
//!
//! The cases, in order: a case asked for first (`KILLPOINT_SEED=<case>`), the cases of
//! the scenario's regressions file, then new ones — `cases` drawn from the master seed, or
//! with `exhaustive`, every point of the strike space. They run in parallel threads
//! (`jobs`), but which case is reported does not depend on scheduling: each case's plan
//! comes from its own id, and once case `i` has failed no case after `i` is started,
//! while the ones before it still finish. Shrinking then runs one candidate at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::strategy::SBoxedStrategy;
use serde::Serialize;

use crate::census::{Census, Golden};
use crate::invariants::{self, Context, InvariantName, Verdict};
use crate::os::interrupt;
use crate::os::run::{self, Limits, RunError};
use crate::os::sandbox::Sandbox;
use crate::os::tracer::{SyscallStrike, TraceError, TraceSetup};
use crate::outcome::{FileState, Outcome, OutputRecord};
use crate::plan::{self, CaseId, Clock, Plan, Point, Strike, StrikeSpace};
use crate::regressions;
use crate::resume;
use crate::scenario::{
    MarkerSource, PointSpec, Scenario, Severity, ShrinkBudget, Signal, WorkPath,
};
use crate::shrink::{self, Stopped, Tried};
use crate::survivors;
use crate::syscalls::{CONTEXT_CLASSES, ClassSet, SyscallClass};
use crate::targets::{self, Binaries};

/// The default number of cases per scenario.
pub const DEFAULT_CASES: u32 = 64;

#[derive(Debug, Clone)]
pub struct CampaignOptions {
    /// New cases per scenario; `None`: the scenario's `cases`, else [`DEFAULT_CASES`].
    pub cases: Option<u32>,
    /// The master seed.
    pub seed: u64,
    /// A case to run before all others (`KILLPOINT_SEED=<case>`).
    pub first: Option<CaseId>,
    /// Cases run at once.
    pub jobs: usize,
    /// Try every point of the strike space, whatever the scenario says.
    pub exhaustive: bool,
    /// Shrinking's budget of runs and time; `None`: the scenario's `shrink`.
    pub shrink_iterations: Option<u32>,
    pub shrink_time: Option<std::time::Duration>,
    /// Replay the scenario's regressions file first, and record new failures in it.
    pub regressions: bool,
    /// Run only this case, unshrunk, and keep its sandbox (`killpoint repro`).
    pub case: Option<CaseId>,
    /// Keep the sandbox of an unexpected violation for inspection (the CLI's `run`). A
    /// test does not: its rerun line makes the case again.
    pub keep_sandbox: bool,
}

impl CampaignOptions {
    /// A campaign as the environment asks for it: `KILLPOINT_SEED` is the master seed
    /// (else `seed`), or a case to run first, as a report's rerun line names it;
    /// `KILLPOINT_CASES` the number of new cases (else the scenario's `cases`, else 64).
    pub fn from_env(seed: u64) -> Result<CampaignOptions, String> {
        let mut options = CampaignOptions::new(seed);
        if let Ok(text) = std::env::var("KILLPOINT_SEED") {
            let id: CaseId = text
                .parse()
                .map_err(|e: String| format!("KILLPOINT_SEED={text}: {e}"))?;
            match id {
                CaseId::Seeded { seed, moves } if moves.0.is_empty() => options.seed = seed,
                CaseId::Seeded { seed, .. } => {
                    options.seed = seed;
                    options.first = Some(id);
                }
                CaseId::Point(_) => options.first = Some(id),
            }
        }
        if let Ok(n) = std::env::var("KILLPOINT_CASES") {
            options.cases = Some(
                n.parse()
                    .map_err(|_| format!("KILLPOINT_CASES=`{n}` is not a number"))?,
            );
        }
        Ok(options)
    }

    /// A campaign of `seed` with every default: the scenario's case count, one job, the
    /// scenario's shrink budget, regressions replayed and recorded, no sandbox kept.
    pub fn new(seed: u64) -> CampaignOptions {
        CampaignOptions {
            cases: None,
            seed,
            first: None,
            jobs: 1,
            exhaustive: false,
            shrink_iterations: None,
            shrink_time: None,
            regressions: true,
            case: None,
            keep_sandbox: false,
        }
    }
}

/// The test a scenario was built and run in: what `cargo nextest run` filters on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestId {
    /// nextest's binary id: `crate` for unit tests, `crate::name` for `tests/name.rs`.
    pub binary_id: String,
    /// The test's name within its binary: `module::test_fn`.
    pub name: String,
}

impl TestId {
    /// The test running on this thread: nextest says so in its environment; `cargo test`
    /// names each test's thread after it, and the test binary after its target.
    pub fn current() -> Option<TestId> {
        if let (Ok(binary_id), Ok(name)) = (
            std::env::var("NEXTEST_BINARY_ID"),
            std::env::var("NEXTEST_TEST_NAME"),
        ) {
            return Some(TestId { binary_id, name });
        }
        let name = std::thread::current().name()?.to_string();
        if name == "main" {
            return None;
        }
        let package = std::env::var("CARGO_PKG_NAME").ok()?;
        let exe = std::env::current_exe().ok()?;
        // `target/debug/deps/<target>-<hash>`.
        let stem = exe.file_stem()?.to_string_lossy();
        let target = stem.rsplit_once('-').map_or(&*stem, |(t, _)| t);
        let binary_id = if target == package.replace('-', "_") {
            package
        } else {
            format!("{package}::{target}")
        };
        Some(TestId { binary_id, name })
    }
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
    /// For a scenario built in a test rather than loaded from a file: that test, which
    /// reruns it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<TestId>,
    pub expected: Vec<InvariantName>,
    pub checked: Vec<InvariantName>,
    pub result: ScenarioResult,
    pub census: Option<Census>,
    pub cases_run: u64,
    pub cases_planned: u64,
    /// How many of the planned cases came from the regressions file.
    pub regressions_replayed: u64,
    pub coverage: Option<Coverage>,
    /// Every case run, in order.
    pub cases: Vec<CaseSummary>,
    /// The reported case: the simplest failing plan shrinking found.
    pub failure: Option<Failure>,
    /// How the reported failure was shrunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrink: Option<ShrinkReport>,
    /// With `case`: that case, judged, whatever its verdict (a reproduction shows it all;
    /// a failing one is also `failure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<Failure>,
    /// Things the reader should know: a stale regression entry, a file not written.
    pub notes: Vec<String>,
    /// Advisory promises broken (`handler_io = "warn"`): the first case per invariant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

impl ScenarioReport {
    /// The report of a scenario before anything has run: passed, with nothing tried.
    pub fn new(scenario: &Scenario) -> ScenarioReport {
        ScenarioReport {
            scenario: scenario.label(),
            name: scenario.name.clone(),
            file: scenario.source.clone(),
            test: scenario.source.is_none().then(TestId::current).flatten(),
            expected: scenario.expect.violation.clone(),
            checked: InvariantName::ALL
                .into_iter()
                .filter(|n| n.is_checked_by(&scenario.expect))
                .collect(),
            result: ScenarioResult::Passed,
            census: None,
            cases_run: 0,
            cases_planned: 0,
            regressions_replayed: 0,
            coverage: None,
            cases: Vec::new(),
            failure: None,
            shrink: None,
            case: None,
            notes: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// An advisory invariant broken in a case that otherwise passed or failed on its own.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub invariant: InvariantName,
    pub case_index: u64,
    pub case_id: CaseId,
    pub evidence: Vec<String>,
}

/// How much of the strike space the cases tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Distinct strike points among the plans run.
    pub tried: u64,
    /// Single-strike points in the space; `None` when it has delays (continuous).
    pub total: Option<u64>,
    pub exhaustive: bool,
}

/// One case run, for the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub index: u64,
    pub id: CaseId,
    pub plan: Plan,
    /// The invariants it violated.
    pub violated: Vec<InvariantName>,
    /// How many of its strikes reached the target.
    pub landed: usize,
}

/// How a failure was shrunk.
#[derive(Debug, Clone, Serialize)]
pub struct ShrinkReport {
    /// The case that failed first, and its plan.
    pub from: CaseId,
    pub from_plan: Plan,
    /// Simpler plans that still failed the same way.
    pub steps: u32,
    /// Candidates run.
    pub runs: u32,
    #[serde(with = "crate::report::millis")]
    pub elapsed: std::time::Duration,
    pub stopped: Stopped,
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

/// A reported case: the simplest that violated an invariant, or the one `case` reran.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub case_index: u64,
    /// What reruns exactly this case: `killpoint repro FILE --case ID`.
    pub case_id: CaseId,
    pub plan: Plan,
    pub violations: Vec<(InvariantName, Vec<String>)>,
    /// Advisory promises this case broke.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<(InvariantName, Vec<String>)>,
    pub outcome: Outcome,
    /// The failing case's sandbox, kept for inspection.
    pub sandbox: Option<PathBuf>,
}

pub(crate) struct CaseResult {
    index: u64,
    id: CaseId,
    pub(crate) plan: Plan,
    pub(crate) outcome: Outcome,
    verdicts: Vec<(InvariantName, Verdict)>,
    sandbox: Sandbox,
}

impl CaseResult {
    pub(crate) fn violations(&self) -> Vec<(InvariantName, Vec<String>)> {
        self.verdicts
            .iter()
            .filter_map(|(name, v)| match v {
                Verdict::Violated { evidence } => Some((*name, evidence.clone())),
                Verdict::Held | Verdict::Warned { .. } => None,
            })
            .collect()
    }

    pub(crate) fn warnings(&self) -> Vec<Warning> {
        self.verdicts
            .iter()
            .filter_map(|(name, v)| match v {
                Verdict::Warned { evidence } => Some(Warning {
                    invariant: *name,
                    case_index: self.index,
                    case_id: self.id.clone(),
                    evidence: evidence.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    fn violated(&self) -> Vec<InvariantName> {
        self.violations()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    fn summary(&self) -> CaseSummary {
        CaseSummary {
            index: self.index,
            id: self.id.clone(),
            plan: self.plan.clone(),
            violated: self.violated(),
            landed: self
                .outcome
                .strikes
                .iter()
                .filter(|s| s.sent_at.is_some())
                .count(),
        }
    }

    fn into_failure(self, keep: bool) -> Failure {
        Failure {
            case_index: self.index,
            violations: self.violations(),
            warnings: self
                .warnings()
                .into_iter()
                .map(|w| (w.invariant, w.evidence))
                .collect(),
            case_id: self.id,
            plan: self.plan,
            outcome: self.outcome,
            sandbox: keep.then(|| self.sandbox.keep()),
        }
    }
}

/// What the cases of a scenario draw their plans from.
struct Plans {
    strategy: SBoxedStrategy<Plan>,
    space: StrikeSpace,
}

impl Plans {
    fn plan(&self, id: &CaseId) -> Result<Plan, String> {
        match id {
            CaseId::Seeded { seed, moves } => {
                Ok(plan::tree(&self.strategy, *seed, moves).current())
            }
            CaseId::Point(n) => match self.space.size() {
                Some(size) => self.space.point(*n).ok_or_else(|| {
                    format!("case {id} names no point: the strike space has {size} points now")
                }),
                None => Err(format!(
                    "case {id} names an exhaustive point, but this strike space has delays"
                )),
            },
        }
    }
}

impl Campaign {
    pub fn new(options: CampaignOptions) -> Campaign {
        Campaign {
            options,
            on_case: None,
        }
    }

    /// Runs one scenario: census, cases, shrinking, verdict.
    pub fn run_scenario(&self, scenario: &Scenario) -> ScenarioReport {
        let mut report = ScenarioReport::new(scenario);
        let error = |message: String| ScenarioResult::Error { message };
        if let Err(invalid) = scenario.validate() {
            report.result = error(invalid.to_string());
            return report;
        }
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
        let prepared = check_census(scenario, &census)
            .and_then(|()| StrikeSpace::new(scenario, &census))
            .and_then(|space| self.case_list(scenario, space, &mut report));
        let (plans, ids) = match prepared {
            Ok(prepared) => prepared,
            Err(message) => {
                report.census = Some(census);
                report.result = error(message);
                return report;
            }
        };
        let exhaustive = self.exhaustive(scenario, &plans.space);
        let planned = ids.len() as u64;
        // The indices of the regressions file's cases: one that no longer names a plan
        // is noted and skipped, not an error.
        let first_len = self.options.first.is_some() as u64;
        let replayed = first_len..first_len + report.regressions_replayed;
        report.cases_planned = planned;
        let record = self.options.regressions && self.options.case.is_none();
        let regressions_file = scenario.source.as_deref().map(regressions::path_for);
        // Only an unexpected violation is a regression; a planted bug caught is the
        // scenario working.
        let unexpected =
            |violated: &[InvariantName]| verdict(scenario, violated) == ScenarioResult::Violated;
        let notes = Mutex::new(census.untraced.iter().cloned().collect::<Vec<_>>());
        let write_regression = |id: &CaseId, comment: String| {
            let (Some(path), true) = (&regressions_file, record) else {
                return;
            };
            let name = scenario
                .source
                .as_deref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Err(e) = regressions::append(path, &name, id, &comment) {
                notes.lock().unwrap().push(format!(
                    "could not record case {id} in {}: {e}",
                    path.display()
                ));
            }
        };

        // Cases, in parallel; `first_failed` is the lowest failing index so far.
        let next = AtomicU64::new(0);
        let done = AtomicU64::new(0);
        let first_failed = AtomicU64::new(u64::MAX);
        let failures: Mutex<Vec<CaseResult>> = Mutex::new(Vec::new());
        let summaries: Mutex<Vec<CaseSummary>> = Mutex::new(Vec::new());
        let errors: Mutex<Vec<(u64, String, bool)>> = Mutex::new(Vec::new());
        let warnings: Mutex<Vec<Warning>> = Mutex::new(Vec::new());
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
                        let id = ids[index as usize].clone();
                        let ran = plans.plan(&id).map_err(|e| (e, false)).and_then(|plan| {
                            run_case(scenario, &binaries, &census, index, id.clone(), plan).map_err(
                                |e| {
                                    let interrupted = matches!(e, RunError::Interrupted);
                                    (format!("case {}: {e}", index + 1), interrupted)
                                },
                            )
                        });
                        match ran {
                            Ok(result) => {
                                summaries.lock().unwrap().push(result.summary());
                                warnings.lock().unwrap().extend(result.warnings());
                                let violated = result.violated();
                                if !violated.is_empty() {
                                    first_failed.fetch_min(index, Ordering::SeqCst);
                                    if unexpected(&violated) {
                                        write_regression(
                                            &result.id,
                                            format!("{}: {}", names(&violated), result.plan),
                                        );
                                    }
                                }
                                if !violated.is_empty() || self.options.case.is_some() {
                                    failures.lock().unwrap().push(result);
                                }
                            }
                            // A stale regression entry is noted and skipped.
                            Err((message, false)) if replayed.contains(&index) => {
                                notes.lock().unwrap().push(message);
                            }
                            Err((message, interrupted)) => {
                                first_failed.fetch_min(index, Ordering::SeqCst);
                                errors.lock().unwrap().push((index, message, interrupted));
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
        report.cases_run = done.load(Ordering::SeqCst);
        let mut summaries = summaries.into_inner().unwrap();
        summaries.sort_by_key(|s| s.index);
        // Strikes are told apart by how they read: the call, side and signal, or the delay
        // to the microsecond.
        let tried: BTreeSet<String> = summaries
            .iter()
            .flat_map(|s| s.plan.strikes.iter().map(Strike::to_string))
            .collect();
        report.coverage = Some(Coverage {
            tried: tried.len() as u64,
            total: plans.space.size(),
            exhaustive,
        });
        report.cases = summaries;
        let mut warnings = warnings.into_inner().unwrap();
        warnings.sort_by_key(|w| w.case_index);
        let mut warned = BTreeSet::new();
        warnings.retain(|w| warned.insert(w.invariant));
        report.warnings = warnings;

        let first = first_failed.load(Ordering::SeqCst);
        let mut errors = errors.into_inner().unwrap();
        errors.sort_by_key(|(i, _, _)| *i);
        if let Some((_, message, interrupted)) =
            errors.into_iter().next().filter(|(i, ..)| *i == first)
        {
            report.notes = notes.into_inner().unwrap();
            report.census = Some(census);
            report.result = if interrupted {
                ScenarioResult::Interrupted
            } else {
                error(message)
            };
            return report;
        }
        let mut failures = failures.into_inner().unwrap();
        failures.sort_by_key(|r| r.index);
        if interrupt::requested() {
            // A failure found before the stop is reported (it is in the regressions file
            // too), unshrunk, and nothing is kept behind.
            report.failure = failures.into_iter().next().map(|f| f.into_failure(false));
            report.notes = notes.into_inner().unwrap();
            report.census = Some(census);
            report.result = ScenarioResult::Interrupted;
            return report;
        }
        let Some(failed) = failures.into_iter().next() else {
            report.notes = notes.into_inner().unwrap();
            report.census = Some(census);
            report.result = if scenario.expect.violation.is_empty() {
                ScenarioResult::Passed
            } else {
                ScenarioResult::Missed
            };
            return report;
        };
        if self.options.case.is_some() {
            // A reproduction: this one case, as it ran, its sandbox kept whatever it did.
            let violated = failed.violated();
            report.result = verdict(scenario, &violated);
            let case = failed.into_failure(true);
            if !violated.is_empty() {
                report.failure = Some(case.clone());
            }
            report.case = Some(case);
            report.notes = notes.into_inner().unwrap();
            report.census = Some(census);
            return report;
        }

        // Shrink the first failure: simpler plans that violate the same invariant.
        let mut failed = failed;
        let violated = failed.violated();
        let key = violated[0];
        if let CaseId::Seeded { seed, moves } = failed.id.clone() {
            let budget = ShrinkBudget {
                iterations: self
                    .options
                    .shrink_iterations
                    .unwrap_or(scenario.shrink.iterations),
                time: self.options.shrink_time.unwrap_or(scenario.shrink.time),
            };
            if budget.iterations > 0 {
                let mut tree = plan::tree(&plans.strategy, seed, &moves);
                let shrunk = shrink::shrink(&mut *tree, moves, budget, |plan| {
                    if interrupt::requested() {
                        return Tried::Abort;
                    }
                    let id = CaseId::seeded(seed);
                    match run_case(scenario, &binaries, &census, failed.index, id, plan.clone()) {
                        Ok(result) if result.violated().contains(&key) => Tried::Fails(result),
                        Ok(_) => Tried::Passes,
                        Err(_) => Tried::Abort,
                    }
                });
                report.shrink = Some(ShrinkReport {
                    from: failed.id.clone(),
                    from_plan: failed.plan.clone(),
                    steps: shrunk.steps,
                    runs: shrunk.runs,
                    elapsed: shrunk.elapsed,
                    stopped: shrunk.stopped,
                });
                if let Some(mut best) = shrunk.best {
                    best.id = CaseId::Seeded {
                        seed,
                        moves: shrunk.moves,
                    };
                    failed = best;
                    let violated = failed.violated();
                    if unexpected(&violated) {
                        write_regression(
                            &failed.id,
                            format!("shrinks to: {} ({})", failed.plan, names(&violated)),
                        );
                    }
                }
            }
        }
        let violated = failed.violated();
        report.result = verdict(scenario, &violated);
        if interrupt::requested() {
            // Asked to stop while shrinking: the failure found so far is reported (and is
            // in the regressions file), but nothing is kept behind.
            report.result = ScenarioResult::Interrupted;
        }
        // Keep the sandbox of an unexpected violation for inspection, if asked to; an
        // expected one is the planted bug doing what it does, and its sandbox goes.
        let keep = self.options.keep_sandbox && report.result == ScenarioResult::Violated;
        report.failure = Some(failed.into_failure(keep));
        report.notes = notes.into_inner().unwrap();
        report.census = Some(census);
        report
    }

    /// Whether to try every single-strike point: when asked to, or when plans have one
    /// strike and the space has no more points than the cases asked for, which sampling
    /// would spend on repeats.
    fn exhaustive(&self, scenario: &Scenario, space: &StrikeSpace) -> bool {
        let cases = self
            .options
            .cases
            .or(scenario.cases)
            .unwrap_or(DEFAULT_CASES) as u64;
        self.options.exhaustive
            || scenario.exhaustive
            || (scenario.max_strikes == 1 && space.size().is_some_and(|n| n <= cases))
    }

    /// The cases to run, in order, and what their plans come from.
    fn case_list(
        &self,
        scenario: &Scenario,
        space: StrikeSpace,
        report: &mut ScenarioReport,
    ) -> Result<(Plans, Vec<CaseId>), String> {
        let exhaustive = self.exhaustive(scenario, &space);
        if exhaustive {
            let Some(size) = space.size() else {
                return Err("exhaustive mode tries every syscall point, but this scenario strikes after delays, which are continuous: sample them instead (drop `exhaustive`)".into());
            };
            if size > scenario.exhaustive_limit {
                return Err(format!(
                    "the strike space has {size} points, more than the exhaustive limit of {}: narrow `nth`, `path` or the signals, or raise `exhaustive_limit`",
                    scenario.exhaustive_limit
                ));
            }
        }
        let plans = Plans {
            strategy: space.strategy(),
            space,
        };
        if let Some(case) = &self.options.case {
            plans.plan(case)?;
            return Ok((plans, vec![case.clone()]));
        }
        let mut ids: Vec<CaseId> = self.options.first.iter().cloned().collect();
        if self.options.regressions
            && let Some(file) = &scenario.source
        {
            let replayed = regressions::load(&regressions::path_for(file))?;
            report.regressions_replayed = replayed.len() as u64;
            ids.extend(replayed);
        }
        if exhaustive {
            let count = plans.space.size().unwrap_or(0);
            ids.extend((0..count).map(CaseId::Point));
        } else {
            let cases = self
                .options
                .cases
                .or(scenario.cases)
                .unwrap_or(DEFAULT_CASES);
            ids.extend(
                (0..cases as u64).map(|i| CaseId::seeded(plan::case_seed(self.options.seed, i))),
            );
        }
        Ok((plans, ids))
    }
}

/// The scenario's verdict from the reported case's violations.
fn verdict(scenario: &Scenario, violated: &[InvariantName]) -> ScenarioResult {
    if violated.is_empty() {
        ScenarioResult::Passed
    } else if !scenario.expect.violation.is_empty()
        && violated
            .iter()
            .all(|name| scenario.expect.violation.contains(name))
    {
        ScenarioResult::CaughtAsExpected
    } else {
        ScenarioResult::Violated
    }
}

fn names(violated: &[InvariantName]) -> String {
    violated
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn limits(scenario: &Scenario) -> Limits {
    Limits {
        timeout: scenario.timeout,
        deadline: scenario.expect.deadline,
    }
}

/// The uninterrupted reference run.
pub(crate) fn census(scenario: &Scenario, binaries: &Binaries) -> Result<Census, RunError> {
    let sandbox = Sandbox::create(&scenario.setup)?;
    let launch = targets::launch(scenario, binaries, sandbox.path());
    let mut signals = scenario.signals();
    signals.extend(scenario.strikes.iter().filter_map(|s| match s.at {
        PointSpec::Delay { after_handler, .. } => after_handler,
        PointSpec::Syscall(_) | PointSpec::Probe(_) => None,
    }));
    let trace = scenario.wants_tracer().then(|| {
        let mut classes = scenario.strike_classes();
        classes.extend(CONTEXT_CLASSES);
        classes.insert(SyscallClass::Sigaction);
        TraceSetup {
            classes,
            strikes: Vec::new(),
            root: sandbox.path().to_path_buf(),
            keep_events: true,
            handler_io: scenario.expect.handler_io != Severity::Off,
        }
    });
    // Where the tracer only adds evidence, a machine without ptrace runs untraced.
    let mut untraced = None;
    let ran = match run::run(&launch, &[], &signals, limits(scenario), trace) {
        Err(RunError::Trace(why @ TraceError::Unavailable { .. })) if !scenario.needs_tracer() => {
            untraced = Some(format!(
                "run untraced, without per-process timelines or handler checks: {why}"
            ));
            let sandbox = Sandbox::create(&scenario.setup)?;
            let launch = targets::launch(scenario, binaries, sandbox.path());
            let ran = run::run(&launch, &[], &signals, limits(scenario), None)?;
            return census_from(scenario, binaries, &sandbox, ran, &signals, untraced);
        }
        ran => ran?,
    };
    census_from(scenario, binaries, &sandbox, ran, &signals, untraced)
}

/// The census from its run and what that run left in the sandbox.
fn census_from(
    scenario: &Scenario,
    binaries: &Binaries,
    sandbox: &Sandbox,
    ran: run::Run,
    signals: &[Signal],
    untraced: Option<String>,
) -> Result<Census, RunError> {
    let (syscalls, events) = match ran.trace {
        Some(log) => (Some(log.census), log.events),
        None => (None, Vec::new()),
    };
    let mut golden = std::collections::BTreeMap::new();
    for path in scenario
        .expect
        .outputs
        .iter()
        .chain(scenario.expect.resume_outputs())
    {
        golden.insert(path.clone(), sandbox.read(path)?.map(Golden::new));
    }
    let mut census = Census {
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
        survivors: scenario
            .expect
            .acked
            .as_ref()
            .map(|spec| survivors::read(spec, scenario, binaries, sandbox.path())),
        syscalls,
        events,
        marker_files: marker_files(scenario, sandbox)?,
        mark_counts: ran.marks.iter().fold(BTreeMap::new(), |mut counts, mark| {
            *counts.entry(mark.name.clone()).or_insert(0) += 1;
            counts
        }),
        marks: ran.marks,
        resume: None,
        untraced,
    };
    // Markers and survivors are read above, before the resume can touch the sandbox.
    census.resume = resume::run(scenario, binaries, &census, sandbox)?;
    Ok(census)
}

/// The files the scenario's `once` markers are counted in, as text (`None`: absent).
fn marker_files(
    scenario: &Scenario,
    sandbox: &Sandbox,
) -> Result<BTreeMap<WorkPath, Option<String>>, RunError> {
    let mut files = BTreeMap::new();
    for spec in &scenario.expect.once {
        if let MarkerSource::File(path) = &spec.source {
            let text = sandbox
                .read(path)?
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
            files.insert(path.clone(), text);
        }
    }
    Ok(files)
}

/// What the tracer must do for a case of this scenario under `plan`: trap the plan's
/// syscall classes and the context classes, and fire the syscall strikes.
pub fn case_trace(scenario: &Scenario, plan: &Plan, root: &std::path::Path) -> Option<TraceSetup> {
    if !scenario.wants_tracer() {
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
            Point::Delay { .. } | Point::Probe { .. } => {}
        }
    }
    Some(TraceSetup {
        classes,
        strikes,
        root: root.to_path_buf(),
        keep_events: false,
        handler_io: scenario.expect.handler_io != Severity::Off,
    })
}

/// A census that cannot serve as the reference makes the scenario unusable.
pub(crate) fn check_census(scenario: &Scenario, census: &Census) -> Result<(), String> {
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
            stderr_tail(&census.stderr)
        ));
    }
    for (path, golden) in &census.golden {
        if golden.is_none() {
            return Err(format!(
                "the uninterrupted run did not write the output `{path}`: check `command` and `[expect] outputs`"
            ));
        }
    }
    if let (Some(spec), Some(read)) = (&scenario.expect.acked, &census.survivors) {
        let acked = spec.ack.ids(&census.stdout.text, &census.marks);
        if acked.is_empty() {
            return Err(format!(
                "the uninterrupted run made no acknowledgement: `[expect.acked] ack` reads {}, and there were none",
                spec.ack
            ));
        }
        let survivors = read
            .ids
            .as_ref()
            .map_err(|why| format!("what survived the uninterrupted run cannot be read: {why}"))?;
        if let Some(lost) = acked.iter().find(|id| !survivors.contains(id)) {
            return Err(format!(
                "the uninterrupted run acknowledged `{lost}`, but {} does not hold it ({} ids read): check `[expect.acked] survivors`",
                read.from,
                survivors.len()
            ));
        }
    }
    if scenario.expect.no_crash_output {
        let lines = invariants::crash_lines(&census.stderr.text, &scenario.expect.crash_patterns);
        if let Some(&first) = lines.first() {
            return Err(format!(
                "the uninterrupted run's stderr shows a crash at line {first}: `{}`: fix the target, or set `no_crash_output = false` if that line is not a crash",
                census
                    .stderr
                    .text
                    .lines()
                    .nth(first - 1)
                    .unwrap_or_default()
            ));
        }
    }
    for spec in &scenario.expect.once {
        let count = spec
            .text(
                &census.stdout.text,
                &census.stderr.text,
                &census.marker_files,
            )
            .map_or(0, |text| spec.hits(text).len());
        if count != 1 {
            return Err(format!(
                "the uninterrupted run shows `{}` {count} times in {}, not once: check `[[expect.once]]`",
                spec.marker.as_str(),
                spec.source
            ));
        }
    }
    if let Some(resume) = &census.resume {
        let what = "the `[expect.resume] command`, run after the uninterrupted run,";
        if resume.killed.is_some() {
            return Err(format!(
                "{what} did not finish within the timeout ({})",
                crate::scenario::format_duration(scenario.timeout)
            ));
        }
        if !scenario.expect.clean.contains(&resume.status) {
            return Err(format!(
                "{what} ended with {}, which `[expect] clean` does not allow{}",
                resume.status,
                stderr_tail(&resume.stderr)
            ));
        }
        if let Some(changed) = resume.outputs.iter().find(|o| o.after != FileState::Golden) {
            return Err(format!(
                "{what} changed `{}` (now {}): with the work finished, it must find nothing to do",
                changed.path,
                changed.after.name()
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

/// The last lines of a run's stderr, to show with a refused census.
fn stderr_tail(stderr: &crate::outcome::Capture) -> String {
    let text = stderr.text.trim_end();
    if text.is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    format!("\n  its stderr ended with:\n    {}", tail.join("\n    "))
}

pub(crate) fn run_case(
    scenario: &Scenario,
    binaries: &Binaries,
    census: &Census,
    index: u64,
    id: CaseId,
    plan: Plan,
) -> Result<CaseResult, RunError> {
    let sandbox = Sandbox::create(&scenario.setup)?;
    let outputs = &scenario.expect.outputs;
    let prior: Vec<Option<Vec<u8>>> = outputs
        .iter()
        .map(|p| sandbox.read(p))
        .collect::<Result<_, _>>()?;
    let launch = targets::launch(scenario, binaries, sandbox.path());
    // Cases are traced as the census was: it fell back to untraced where ptrace is refused.
    let trace = census
        .syscalls
        .is_some()
        .then(|| case_trace(scenario, &plan, sandbox.path()))
        .flatten();
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
    let mut outcome = Outcome {
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
        survivors: scenario
            .expect
            .acked
            .as_ref()
            .map(|spec| survivors::read(spec, scenario, binaries, sandbox.path())),
        tracking: ran.tracking,
        trace: Vec::new(),
        processes: Vec::new(),
        handler_io: Vec::new(),
        marker_files: BTreeMap::new(),
        marks: ran.marks,
        resume: None,
    };
    if let Some(log) = ran.trace {
        outcome.trace = log.windows;
        outcome.processes = log.census.processes;
        outcome.handler_io = log.handler_io;
    }
    outcome.marker_files = marker_files(scenario, &sandbox)?;
    // Last: what the case left (outputs, survivors, markers) is read before it resumes.
    outcome.resume = resume::run(scenario, binaries, census, &sandbox)?;
    let verdicts = invariants::judge(&Context {
        expect: &scenario.expect,
        census,
        plan: &plan,
        outcome: &outcome,
    });
    Ok(CaseResult {
        index,
        id,
        plan,
        outcome,
        verdicts,
        sandbox,
    })
}
