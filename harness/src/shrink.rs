//! Shrinking a failing case to the simplest plan that still fails the same way.
//!
//! proptest's value tree proposes the candidates — fewer strikes, earlier entries, plainer
//! signals, earlier calls, shorter delays, entries before exits — and this loop runs each
//! one (through `try_plan`) and tells the tree whether it still failed, exactly as
//! proptest's own test runner does. The moves taken are kept: replayed on the same seed
//! they give the minimal plan again without running anything, which is what makes a
//! shrunk case reproducible from one id.

use std::time::{Duration, Instant};

use proptest::strategy::ValueTree;
use serde::Serialize;

use crate::plan::{CaseId, Move, Moves, Plan};
use crate::scenario::ShrinkBudget;

/// What one candidate did.
pub enum Tried<R> {
    /// It still fails the same way; `R` is its result.
    Fails(R),
    /// It passed, or failed another way.
    Passes,
    /// Stop shrinking (the harness was interrupted, or the target could not be run).
    Abort,
}

/// Why shrinking ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stopped {
    /// No simpler plan is left to try: the plan is minimal.
    Minimal,
    /// The run budget ran out.
    Iterations,
    /// The time budget ran out.
    Time,
    /// A candidate could not be run, or the harness was asked to stop.
    Aborted,
}

/// The end of shrinking.
pub struct Shrunk<R> {
    /// The moves to the simplest failing plan (the starting moves if nothing simpler failed).
    pub moves: Moves,
    /// The simplest failing candidate's result; `None` if no candidate failed.
    pub best: Option<R>,
    /// How many times a simpler plan still failed.
    pub steps: u32,
    /// How many candidates were run.
    pub runs: u32,
    pub elapsed: Duration,
    pub stopped: Stopped,
}

/// How a reported failure was shrunk.
#[derive(Debug, Clone, Serialize)]
pub struct ShrinkReport {
    /// The case that failed first, and its plan.
    pub from: CaseId,
    pub from_plan: Plan,
    /// Simpler plans that still failed the same way.
    pub steps: u32,
    /// Candidates run.
    pub runs: u32,
    #[serde(with = "crate::units::millis")]
    pub elapsed: Duration,
    pub stopped: Stopped,
}

impl ShrinkReport {
    /// How shrinking went from the case `from` with `from_plan`.
    pub fn new<R>(from: CaseId, from_plan: Plan, shrunk: &Shrunk<R>) -> ShrinkReport {
        ShrinkReport {
            from,
            from_plan,
            steps: shrunk.steps,
            runs: shrunk.runs,
            elapsed: shrunk.elapsed,
            stopped: shrunk.stopped,
        }
    }
}

/// Shrinks from the failing plan `tree` holds, which `moves` led to.
pub fn shrink<R>(
    tree: &mut dyn ValueTree<Value = Plan>,
    moves: Moves,
    budget: ShrinkBudget,
    mut try_plan: impl FnMut(&Plan) -> Tried<R>,
) -> Shrunk<R> {
    let started = Instant::now();
    let mut shrunk = Shrunk {
        moves: moves.clone(),
        best: None,
        steps: 0,
        runs: 0,
        elapsed: Duration::ZERO,
        stopped: Stopped::Minimal,
    };
    let mut at = moves;
    let mut moved = tree.simplify();
    if moved {
        at.0.push(Move::Simplify);
    }
    while moved {
        if shrunk.runs >= budget.iterations {
            shrunk.stopped = Stopped::Iterations;
            break;
        }
        if started.elapsed() >= budget.time {
            shrunk.stopped = Stopped::Time;
            break;
        }
        shrunk.runs += 1;
        match try_plan(&tree.current()) {
            Tried::Fails(result) => {
                shrunk.best = Some(result);
                shrunk.moves = at.clone();
                shrunk.steps += 1;
                moved = tree.simplify();
                if moved {
                    at.0.push(Move::Simplify);
                }
            }
            Tried::Passes => {
                moved = tree.complicate();
                if moved {
                    at.0.push(Move::Complicate);
                }
            }
            Tried::Abort => {
                shrunk.stopped = Stopped::Aborted;
                break;
            }
        }
    }
    shrunk.elapsed = started.elapsed();
    shrunk
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Point, case_seed};
    use crate::space::testing::{scenario, traced};
    use crate::space::{StrikeSpace, generate, tree};
    use crate::syscalls::SyscallClass;
    use crate::values::Signal;

    const BUDGET: ShrinkBudget = ShrinkBudget {
        iterations: 1000,
        time: Duration::from_secs(60),
    };

    fn nth(plan: &Plan, i: usize) -> u64 {
        match plan.strikes[i].point {
            Point::Syscall { nth, .. } => nth,
            _ => panic!("a syscall strike: {plan}"),
        }
    }

    /// A bug that shows only from the 17th write on: shrinking finds the 17th, whatever
    /// the write the seed first failed at, and the moves replay to the same plan.
    #[test]
    fn a_late_failure_shrinks_to_the_earliest_failing_call_and_replays_from_its_moves() {
        let s = scenario(
            "max_strikes = 3\n[[strike]]\nsignal = [\"SIGKILL\", \"SIGINT\", \"SIGTERM\"]\nat = { syscall = \"write\", when = \"both\" }\n",
        );
        let census = traced(&[(SyscallClass::Write, "out.json", 20)]);
        let strategy = StrikeSpace::new(&s, &census).unwrap().strategy();
        let fails = |plan: &Plan| (0..plan.strikes.len()).any(|i| nth(plan, i) >= 17);
        let mut shrunk_some = 0;
        for index in 0..40 {
            let seed = case_seed(99, index);
            let first = generate(&strategy, seed);
            if !fails(&first) {
                continue;
            }
            let mut tree = tree(&strategy, seed, &Moves::default());
            let shrunk = shrink(&mut *tree, Moves::default(), BUDGET, |plan| {
                if fails(plan) {
                    Tried::Fails(plan.clone())
                } else {
                    Tried::Passes
                }
            });
            assert_eq!(shrunk.stopped, Stopped::Minimal);
            let minimal = shrunk.best.clone().unwrap_or(first.clone());
            assert_eq!(minimal.strikes.len(), 1, "{first} → {minimal}");
            assert_eq!(nth(&minimal, 0), 17, "{first} → {minimal}");
            assert_eq!(
                minimal.strikes[0].signal,
                Signal::SIGTERM,
                "the plainest signal"
            );
            assert_eq!(
                minimal.strikes[0].point,
                Point::Syscall {
                    syscall: SyscallClass::Write,
                    path: None,
                    nth: 17,
                    when: crate::syscalls::When::Entry
                },
                "entry before exit"
            );
            let replayed = tree_plan(&strategy, seed, &shrunk.moves);
            assert_eq!(replayed, minimal, "the moves lead back to the minimal plan");
            shrunk_some += 1;
        }
        assert!(
            shrunk_some >= 5,
            "enough seeds failed to show it: {shrunk_some}"
        );
    }

    fn tree_plan(
        strategy: &proptest::strategy::SBoxedStrategy<Plan>,
        seed: u64,
        m: &Moves,
    ) -> Plan {
        tree(strategy, seed, m).current()
    }

    #[test]
    fn the_budget_bounds_the_runs_and_keeps_the_simplest_failure_so_far() {
        let s = scenario("[[strike]]\nsignal = \"SIGTERM\"\nat = { syscall = \"write\" }\n");
        let census = traced(&[(SyscallClass::Write, "out.json", 1000)]);
        let strategy = StrikeSpace::new(&s, &census).unwrap().strategy();
        let seed = (0..)
            .map(|i| case_seed(5, i))
            .find(|&seed| nth(&generate(&strategy, seed), 0) > 900)
            .unwrap();
        let mut tree = tree(&strategy, seed, &Moves::default());
        let budget = ShrinkBudget {
            iterations: 3,
            time: Duration::from_secs(60),
        };
        let shrunk = shrink(&mut *tree, Moves::default(), budget, |plan| {
            Tried::Fails(nth(plan, 0))
        });
        assert_eq!(shrunk.runs, 3);
        assert_eq!(shrunk.steps, 3);
        assert_eq!(shrunk.stopped, Stopped::Iterations);
        let best = shrunk.best.unwrap();
        assert_eq!(nth(&tree_plan(&strategy, seed, &shrunk.moves), 0), best);
        assert!(best < 900, "three halvings toward 1: {best}");
    }
}
