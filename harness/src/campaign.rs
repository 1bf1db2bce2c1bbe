//! A campaign: for each scenario, the census, then its cases, judged by the invariants;
//! the first violation (by case index) is shrunk. The campaign schedules and shrinks, and
//! nothing else: it tells what happens as [`Event`]s, which reporters (a progress bar, a
//! printer) consume, and returns what it [`Found`], from which the report is built.
//!
//! The cases, in order: a case asked for first (`KILLPOINT_SEED=<case>`), the cases the
//! scenario's [`FailurePersistence`] recorded, then new ones — `cases` drawn from the
//! master seed, or with `exhaustive`, every point of the strike space. They run in
//! parallel threads (`jobs`), but which case is reported does not depend on scheduling:
//! each case's plan comes from its own id, and once case `i` has failed no case after `i`
//! is started, while the ones before it still finish. Shrinking then runs one candidate
//! at a time.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::case::Prepared;
use crate::census::Census;
use crate::expect::InvariantName;
use crate::judged::{self, CaseSummary, JudgedCase, ScenarioResult, Warning};
use crate::os::interrupt;
use crate::os::run::RunError;
use crate::os::sandbox::Sandbox;
use crate::plan::{CaseId, Plan, PlannedStrike, case_seed};
use crate::regressions::{FailurePersistence, FileRegressions, NoRegressions};
use crate::scenario::{Scenario, ShrinkBudget};
use crate::shrink::{self, ShrinkReport, Tried};
use crate::space::{self, Plans, StrikeSpace};

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
            options.seed_from(id);
        }
        if let Ok(n) = std::env::var("KILLPOINT_CASES") {
            options.cases = Some(
                n.parse()
                    .map_err(|_| format!("KILLPOINT_CASES=`{n}` is not a number"))?,
            );
        }
        Ok(options)
    }

    /// Takes a seed as a user gives it: a plain seed is the master seed; a shrunk case
    /// (`SEED-MOVES`) is run first, from its master seed; an exhaustive point (`pN`) is
    /// run first, and the master seed stays as it is.
    pub fn seed_from(&mut self, id: CaseId) {
        match id {
            CaseId::Seeded { seed, moves } if moves.0.is_empty() => self.seed = seed,
            CaseId::Seeded { seed, .. } => {
                self.seed = seed;
                self.first = Some(id);
            }
            CaseId::Point(_) | CaseId::Census => self.first = Some(id),
        }
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

/// Runs scenarios one after another.
pub struct Campaign {
    pub options: CampaignOptions,
    /// Where failing cases are replayed from and recorded: the regressions file beside a
    /// scenario file, unless `options.regressions` is off.
    pub persistence: Box<dyn FailurePersistence>,
}

/// What happens in a campaign, in order, for whoever watches it.
#[derive(Debug)]
pub enum Event<'a> {
    /// The uninterrupted run is done; cases follow.
    CensusDone { census: &'a Census },
    /// A case is about to run.
    CaseStarted { index: u64, planned: u64 },
    /// A case has run and been judged (`done` of `planned`).
    CaseJudged {
        case: &'a JudgedCase,
        done: u64,
        planned: u64,
    },
    /// Shrinking found a simpler plan that still fails the same way.
    ShrinkStep { steps: u32, plan: &'a Plan },
    /// The scenario's verdict.
    ScenarioDone { result: &'a ScenarioResult },
}

/// Everything a campaign found for one scenario; the report is built from it.
#[derive(Debug)]
pub struct Found {
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
    pub failure: Option<JudgedCase>,
    /// The other cases that failed, in order (cases running beside the reported one).
    pub also_failed: Vec<CaseSummary>,
    pub shrink: Option<ShrinkReport>,
    /// With `case`: that case, judged, whatever its verdict.
    pub case: Option<JudgedCase>,
    /// Things the reader should know: a stale regression entry, a file not written.
    pub notes: Vec<String>,
    /// Advisory promises broken: the first case per invariant.
    pub warnings: Vec<Warning>,
}

impl Found {
    /// A campaign that has run nothing yet, its result `result`.
    pub fn nothing(result: ScenarioResult) -> Found {
        Found {
            result,
            census: None,
            cases_run: 0,
            cases_planned: 0,
            regressions_replayed: 0,
            coverage: None,
            cases: Vec::new(),
            failure: None,
            also_failed: Vec::new(),
            shrink: None,
            case: None,
            notes: Vec::new(),
            warnings: Vec::new(),
        }
    }
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

/// What the parallel cases left, gathered across threads.
#[derive(Default)]
struct Gathered {
    summaries: Vec<CaseSummary>,
    /// Failing cases (and, reproducing one case, that case), with their sandboxes.
    failures: Vec<(JudgedCase, Sandbox)>,
    /// Cases that could not run: index, why, whether it was an interruption.
    errors: Vec<(u64, String, bool)>,
    warnings: Vec<Warning>,
    notes: Vec<String>,
}

impl Campaign {
    pub fn new(options: CampaignOptions) -> Campaign {
        let persistence: Box<dyn FailurePersistence> = if options.regressions {
            Box::new(FileRegressions)
        } else {
            Box::new(NoRegressions)
        };
        Campaign {
            options,
            persistence,
        }
    }

    /// Runs one scenario: census, cases, shrinking, verdict; `events` hears each step.
    pub fn run(&self, scenario: &Scenario, events: &(dyn Fn(&Event) + Sync)) -> Found {
        let mut found = Found::nothing(ScenarioResult::Passed);
        found.result = match self.census_and_cases(scenario, events, &mut found) {
            Ok(result) | Err(result) => result,
        };
        events(&Event::ScenarioDone {
            result: &found.result,
        });
        found
    }

    fn census_and_cases(
        &self,
        scenario: &Scenario,
        events: &(dyn Fn(&Event) + Sync),
        found: &mut Found,
    ) -> Result<ScenarioResult, ScenarioResult> {
        let mut prepared = Prepared::new(scenario).map_err(|message| {
            // The build (or the interpreter's query) was stopped with the harness.
            if interrupt::requested() {
                ScenarioResult::Interrupted
            } else {
                error(message)
            }
        })?;
        let census = prepared.census().map_err(stopped)?;
        events(&Event::CensusDone { census: &census });
        found.notes.extend(census.untraced.clone());
        let result = self.cases(&prepared, &census, events, found);
        found.census = Some(census);
        result
    }

    /// The cases of a scenario whose census is done, the first failure shrunk.
    fn cases(
        &self,
        prepared: &Prepared,
        census: &Census,
        events: &(dyn Fn(&Event) + Sync),
        found: &mut Found,
    ) -> Result<ScenarioResult, ScenarioResult> {
        let scenario = &prepared.scenario;
        prepared.vet_census(census).map_err(error)?;
        // A promise broken with no strike at all: found by the census, reported as it ran
        // (there is no plan to shrink, and nothing to record: every campaign runs it).
        let judged = prepared.census_case(census);
        if !judged.held() {
            let result = judged::verdict(&scenario.expect.violation, &judged.violated());
            if self.options.case.is_some() {
                found.case = Some(judged.clone());
            }
            found.failure = Some(judged);
            return Ok(result);
        }
        let space = StrikeSpace::new(scenario, census).map_err(error)?;
        let exhaustive = self.exhaustive(scenario, &space);
        let plans = Plans::new(space);
        let ids = self.case_list(scenario, &plans, exhaustive, found)?;
        found.cases_planned = ids.len() as u64;

        let gathered = self.run_cases(prepared, census, &plans, &ids, found, events);
        let Gathered {
            mut summaries,
            mut failures,
            mut errors,
            mut warnings,
            notes,
        } = gathered;
        found.notes.extend(notes);
        summaries.sort_by_key(|s| s.index);
        // Strikes are told apart by how they read: the call, side and signal, or the delay
        // to the microsecond.
        let tried: BTreeSet<String> = summaries
            .iter()
            .flat_map(|s| s.plan.strikes.iter().map(PlannedStrike::to_string))
            .collect();
        found.coverage = Some(Coverage {
            tried: tried.len() as u64,
            total: plans.space.size(),
            exhaustive,
        });
        found.cases = summaries;
        warnings.sort_by_key(|w| w.case_index);
        let mut warned = BTreeSet::new();
        warnings.retain(|w| warned.insert(w.invariant.clone()));
        found.warnings = warnings;

        // The lowest-numbered case decides: an error there ends the scenario.
        failures.sort_by_key(|(case, _)| case.case_index);
        errors.sort_by_key(|(index, ..)| *index);
        let first_failure = failures.first().map(|(case, _)| case.case_index);
        if let Some((index, message, interrupted)) = errors.into_iter().next()
            && first_failure.is_none_or(|f| index < f)
        {
            return Err(if interrupted {
                ScenarioResult::Interrupted
            } else {
                ScenarioResult::Error { message }
            });
        }
        let expected = &scenario.expect.violation;
        // A violation the scenario does not declare decides, wherever it came: it is the
        // case reported (and shrunk), even when a declared one came first. Every other
        // failing case is listed with it.
        let reported = failures
            .iter()
            .position(|(case, _)| {
                judged::verdict(expected, &case.violated()) == ScenarioResult::Violated
            })
            .unwrap_or(0);
        if reported < failures.len() {
            let first = failures.remove(reported);
            found.also_failed = failures.iter().map(|(case, _)| case.summary()).collect();
            failures.insert(0, first);
        }
        let mut failures = failures.into_iter();
        if interrupt::requested() {
            // A failure found before the stop is reported (and recorded), unshrunk, and
            // nothing is kept behind.
            found.failure = failures.next().map(|(case, _)| case);
            return Ok(ScenarioResult::Interrupted);
        }
        let Some((failed, sandbox)) = failures.next() else {
            return Ok(judged::no_failure(expected));
        };
        if self.options.case.is_some() {
            // A reproduction: this one case, as it ran, its sandbox kept whatever it did.
            let result = judged::verdict(expected, &failed.violated());
            let mut case = failed;
            case.sandbox = Some(sandbox.keep());
            if !case.held() {
                found.failure = Some(case.clone());
            }
            found.case = Some(case);
            return Ok(result);
        }
        let (mut failed, mut sandbox) = (failed, sandbox);
        if let Some((best, best_sandbox)) =
            self.shrink(prepared, census, &plans, &failed, events, found)
        {
            (failed, sandbox) = (best, best_sandbox);
        }
        let mut result = judged::verdict(expected, &failed.violated());
        if interrupt::requested() {
            // Asked to stop while shrinking: the failure found so far is reported (and
            // recorded), but nothing is kept behind.
            result = ScenarioResult::Interrupted;
        }
        // Keep the sandbox of an unexpected violation for inspection, if asked to; an
        // expected one is the planted bug doing what it does, and its sandbox goes.
        if self.options.keep_sandbox && result == ScenarioResult::Violated {
            failed.sandbox = Some(sandbox.keep());
        }
        found.failure = Some(failed);
        Ok(result)
    }

    /// Runs the listed cases on `jobs` threads, stopping after the first failure.
    fn run_cases(
        &self,
        prepared: &Prepared,
        census: &Census,
        plans: &Plans,
        ids: &[CaseId],
        found: &mut Found,
        events: &(dyn Fn(&Event) + Sync),
    ) -> Gathered {
        let scenario = &prepared.scenario;
        let planned = ids.len() as u64;
        // The indices of the regressions file's cases: one that no longer names a plan is
        // noted and skipped, not an error.
        let first_len = self.options.first.is_some() as u64;
        let replayed = first_len..first_len + found.regressions_replayed;
        let next = AtomicU64::new(0);
        let done = AtomicU64::new(0);
        let first_failed = AtomicU64::new(u64::MAX);
        let gathered = Mutex::new(Gathered::default());
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
                        events(&Event::CaseStarted { index, planned });
                        let id = ids[index as usize].clone();
                        let ran = plans.plan(&id).map_err(|e| (e, false)).and_then(|plan| {
                            prepared.case(census, index, id.clone(), plan).map_err(|e| {
                                let interrupted = matches!(e, RunError::Interrupted);
                                (format!("case {}: {e}", index + 1), interrupted)
                            })
                        });
                        let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                        let mut gathered = gathered.lock().unwrap_or_else(|e| e.into_inner());
                        match ran {
                            Ok((case, sandbox)) => {
                                events(&Event::CaseJudged {
                                    case: &case,
                                    done: finished,
                                    planned,
                                });
                                gathered.summaries.push(case.summary());
                                gathered.warnings.extend(case.warnings());
                                let violated = case.violated();
                                if !violated.is_empty() {
                                    first_failed.fetch_min(index, Ordering::SeqCst);
                                    let comment = format!("{}: {}", names(&violated), case.plan);
                                    let note =
                                        self.record(scenario, &case.case_id, &violated, &comment);
                                    gathered.notes.extend(note);
                                }
                                if !violated.is_empty() || self.options.case.is_some() {
                                    gathered.failures.push((case, sandbox));
                                }
                            }
                            // A stale regression entry is noted and skipped.
                            Err((message, false)) if replayed.contains(&index) => {
                                gathered.notes.push(message);
                            }
                            Err((message, interrupted)) => {
                                first_failed.fetch_min(index, Ordering::SeqCst);
                                gathered.errors.push((index, message, interrupted));
                            }
                        }
                    }
                });
            }
        });
        found.cases_run = done.load(Ordering::SeqCst);
        gathered.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// Shrinks `failed`: simpler plans that violate its first invariant. Returns the
    /// simplest such case found, if any was simpler.
    fn shrink(
        &self,
        prepared: &Prepared,
        census: &Census,
        plans: &Plans,
        failed: &JudgedCase,
        events: &(dyn Fn(&Event) + Sync),
        found: &mut Found,
    ) -> Option<(JudgedCase, Sandbox)> {
        let scenario = &prepared.scenario;
        let CaseId::Seeded { seed, moves } = failed.case_id.clone() else {
            return None;
        };
        let budget = ShrinkBudget {
            iterations: self
                .options
                .shrink_iterations
                .unwrap_or(scenario.shrink.iterations),
            time: self.options.shrink_time.unwrap_or(scenario.shrink.time),
        };
        if budget.iterations == 0 {
            return None;
        }
        // Shrink towards the violation that decides: an undeclared one if there is one.
        let expected = &scenario.expect.violation;
        let key = failed
            .violations
            .iter()
            .map(|(name, _)| name)
            .find(|name| !expected.contains(name))
            .unwrap_or(&failed.violations[0].0)
            .clone();
        let mut tree = space::tree(&plans.strategy, seed, &moves);
        let mut steps = 0;
        let shrunk = shrink::shrink(&mut *tree, moves, budget, |plan| {
            if interrupt::requested() {
                return Tried::Abort;
            }
            let id = CaseId::seeded(seed);
            match prepared.case(census, failed.case_index, id, plan.clone()) {
                Ok((case, sandbox)) if case.violated().contains(&key) => {
                    steps += 1;
                    events(&Event::ShrinkStep { steps, plan });
                    Tried::Fails((case, sandbox))
                }
                Ok(_) => Tried::Passes,
                Err(_) => Tried::Abort,
            }
        });
        found.shrink = Some(ShrinkReport::new(
            failed.case_id.clone(),
            failed.plan.clone(),
            &shrunk,
        ));
        let (mut best, sandbox) = shrunk.best?;
        best.case_id = CaseId::Seeded {
            seed,
            moves: shrunk.moves,
        };
        let violated = best.violated();
        let comment = format!("shrinks to: {} ({})", best.plan, names(&violated));
        found
            .notes
            .extend(self.record(scenario, &best.case_id, &violated, &comment));
        Some((best, sandbox))
    }

    /// Records a failing case with the persistence, if it is a regression: only an
    /// unexpected violation is; a planted bug caught is the scenario working. Returns a
    /// note if it could not be recorded.
    fn record(
        &self,
        scenario: &Scenario,
        id: &CaseId,
        violated: &[InvariantName],
        comment: &str,
    ) -> Option<String> {
        let unexpected =
            judged::verdict(&scenario.expect.violation, violated) == ScenarioResult::Violated;
        if !unexpected || self.options.case.is_some() {
            return None;
        }
        self.persistence.save(scenario, id, comment).err()
    }

    /// Whether to try every single-strike point: when asked to, or when plans have one
    /// strike and the space has no more points than the cases asked for, which sampling
    /// would spend on repeats.
    fn exhaustive(&self, scenario: &Scenario, space: &StrikeSpace) -> bool {
        let cases = self.new_cases(scenario) as u64;
        self.options.exhaustive
            || scenario.exhaustive
            || (scenario.max_strikes == 1 && space.size().is_some_and(|n| n <= cases))
    }

    fn new_cases(&self, scenario: &Scenario) -> u32 {
        self.options
            .cases
            .or(scenario.cases)
            .unwrap_or(DEFAULT_CASES)
    }

    /// The cases to run, in order.
    fn case_list(
        &self,
        scenario: &Scenario,
        plans: &Plans,
        exhaustive: bool,
        found: &mut Found,
    ) -> Result<Vec<CaseId>, ScenarioResult> {
        if exhaustive {
            let Some(size) = plans.space.size() else {
                return Err(error("exhaustive mode tries every syscall point, but this scenario strikes after delays, which are continuous: sample them instead (drop `exhaustive`)".into()));
            };
            if size > scenario.exhaustive_limit {
                return Err(error(format!(
                    "the strike space has {size} points, more than the exhaustive limit of {}: narrow `nth`, `path` or the signals, or raise `exhaustive_limit`",
                    scenario.exhaustive_limit
                )));
            }
        }
        if let Some(case) = &self.options.case {
            plans.plan(case).map_err(error)?;
            return Ok(vec![case.clone()]);
        }
        let mut ids: Vec<CaseId> = self.options.first.iter().cloned().collect();
        let replayed = self.persistence.load(scenario).map_err(error)?;
        found.regressions_replayed = replayed.len() as u64;
        ids.extend(replayed);
        if exhaustive {
            let count = plans.space.size().unwrap_or(0);
            ids.extend((0..count).map(CaseId::Point));
        } else {
            let cases = self.new_cases(scenario) as u64;
            ids.extend((0..cases).map(|i| CaseId::seeded(case_seed(self.options.seed, i))));
        }
        Ok(ids)
    }
}

fn error(message: String) -> ScenarioResult {
    ScenarioResult::Error { message }
}

/// A run that could not be made: an interruption, or an error.
fn stopped(e: RunError) -> ScenarioResult {
    match e {
        RunError::Interrupted => ScenarioResult::Interrupted,
        e => error(e.to_string()),
    }
}

fn names(violated: &[InvariantName]) -> String {
    violated
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
