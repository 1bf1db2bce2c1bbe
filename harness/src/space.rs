//! The strike space: what the `[[strike]]` entries of a scenario may strike, resolved
//! against its census, and the plans drawn from it.
//!
//! Plans come from a proptest `Strategy`, so they are reproducible from a seed and
//! shrinkable with proptest's own machinery. Each strike is drawn as a small "genome" of
//! indices — which entry, which of its signals (plainest first), where in its range (the
//! nth call, or a fraction of the delay range), which side of the call (entry first) —
//! so that proptest's shrinking toward zero means fewer strikes, earlier entries, plainer
//! signals, earlier calls, shorter delays and entries before exits.
//!
//! Seeds are stable: the RNG is ChaCha seeded from the case seed through SplitMix64, both
//! fixed algorithms, so the same seed gives the same plan on every platform and in every
//! release of killpoint — as long as the scenario and the census's counts are the same
//! (a seed picks, say, the 7th of 15 writes; if the program makes 16 writes, it picks
//! another). A change to how plans are drawn is a breaking change of the seed format.

use std::time::Duration;

use proptest::collection::vec;
use proptest::strategy::{SBoxedStrategy, Strategy, Union, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::census::Census;
use crate::plan::{CaseId, Clock, Move, Moves, Plan, PlannedStrike, Point, splitmix64};
use crate::scenario::Scenario;
use crate::strike::{PointSpec, ProcessSelector, Recipient};
use crate::syscalls::{SyscallClass, When};
use crate::values::{DelayRange, PathGlob, Signal};

/// Delays are drawn as a fraction of their range, in millionths.
const FRACTION: u64 = 1_000_000;

/// The strike space of a scenario, resolved against its census: what each `[[strike]]`
/// entry may strike, and how many strikes a plan may have.
#[derive(Debug, Clone)]
pub struct StrikeSpace {
    entries: Vec<EntrySpace>,
    max_strikes: usize,
}

/// One `[[strike]]` entry, resolved.
#[derive(Debug, Clone)]
struct EntrySpace {
    to: Recipient,
    process: Option<ProcessSelector>,
    /// Plainest first.
    signals: Vec<Signal>,
    points: PointSpace,
    /// A power loss (its signal SIGKILL).
    power: bool,
}

#[derive(Debug, Clone)]
enum PointSpace {
    /// For each signal (as `signals`): its clock and delay range.
    Delay(Vec<(Clock, DelayRange)>),
    /// The calls `first..=last` (counted as the census did), on these sides.
    Syscall {
        syscall: SyscallClass,
        path: Option<PathGlob>,
        first: u64,
        last: u64,
        whens: Vec<When>,
    },
    /// The marks `first..=last` of this name (counted as the census did).
    Probe { name: String, first: u64, last: u64 },
    /// The requests `first..=last` the built-in clients sent (counted as in the census).
    Request { first: u64, last: u64 },
    /// The one moment after the tree has gone.
    AfterExit,
}

impl EntrySpace {
    /// The strike with this genome.
    fn strike(&self, signal: usize, index: u64, when: usize) -> PlannedStrike {
        let (to, signal_index, signal) = (self.to, signal, self.signals[signal]);
        let point = match &self.points {
            PointSpace::Delay(per_signal) => {
                let (clock, range) = per_signal[signal_index].clone();
                let span = range.end.saturating_sub(range.start).as_nanos() as u64;
                let after = range.start
                    + Duration::from_nanos(
                        (span as u128 * index.min(FRACTION) as u128 / FRACTION as u128) as u64,
                    );
                Point::Delay { after, clock }
            }
            PointSpace::Syscall {
                syscall,
                path,
                whens,
                ..
            } => Point::Syscall {
                syscall: *syscall,
                path: path.clone(),
                nth: index,
                when: whens[when],
            },
            PointSpace::Probe { name, .. } => Point::Probe {
                name: name.clone(),
                nth: index,
            },
            PointSpace::Request { .. } => Point::Request { nth: index },
            PointSpace::AfterExit => Point::AfterExit,
        };
        PlannedStrike {
            signal,
            to,
            point,
            process: self.process.clone(),
            power: self.power,
        }
    }

    /// The counted points' range and how many sides each has; `None` for delays, which
    /// are continuous.
    fn counted(&self) -> Option<(u64, u64, u64)> {
        match &self.points {
            PointSpace::Delay(_) => None,
            PointSpace::Syscall {
                first, last, whens, ..
            } => Some((*first, *last, whens.len() as u64)),
            PointSpace::Probe { first, last, .. } | PointSpace::Request { first, last } => {
                Some((*first, *last, 1))
            }
            PointSpace::AfterExit => Some((1, 1, 1)),
        }
    }

    /// How many distinct points it holds; `None` for delays.
    fn size(&self) -> Option<u64> {
        let (first, last, sides) = self.counted()?;
        Some(self.signals.len() as u64 * (last - first + 1) * sides)
    }

    fn strategy(&self) -> SBoxedStrategy<PlannedStrike> {
        let entry = self.clone();
        let signals = 0..self.signals.len();
        match &self.points {
            PointSpace::Delay(_) => (signals, 0..=FRACTION)
                .prop_map(move |(signal, fraction)| entry.strike(signal, fraction, 0))
                .sboxed(),
            PointSpace::Syscall {
                first, last, whens, ..
            } => (signals, *first..=*last, 0..whens.len())
                .prop_map(move |(signal, nth, when)| entry.strike(signal, nth, when))
                .sboxed(),
            PointSpace::Probe { first, last, .. } | PointSpace::Request { first, last } => {
                (signals, *first..=*last)
                    .prop_map(move |(signal, nth)| entry.strike(signal, nth, 0))
                    .sboxed()
            }
            PointSpace::AfterExit => signals
                .prop_map(move |signal| entry.strike(signal, 1, 0))
                .sboxed(),
        }
    }
}

impl StrikeSpace {
    /// Resolves the scenario's strike entries against its census. Fails when a strike point
    /// selects nothing the census saw (no such syscall, an `nth` beyond the count, a
    /// handler that never appeared).
    pub fn new(scenario: &Scenario, census: &Census) -> Result<StrikeSpace, String> {
        let mut entries = Vec::new();
        for (i, spec) in scenario.strikes.iter().enumerate() {
            let mut signals = spec.signal.0.clone();
            signals.sort_by_key(|s| s.plainness());
            signals.dedup();
            let points = points(&spec.at, spec.process.as_ref(), &signals, census)
                .map_err(|e| format!("strike[{i}]: {e}"))?;
            entries.push(EntrySpace {
                to: spec.to,
                process: spec.process.clone(),
                signals,
                points,
                power: spec.power,
            });
        }
        Ok(StrikeSpace {
            entries,
            max_strikes: scenario.max_strikes.max(1) as usize,
        })
    }

    /// The strategy of plans: one strike, or up to `max_strikes`, each from any entry.
    pub fn strategy(&self) -> SBoxedStrategy<Plan> {
        let strike = Union::new(self.entries.iter().map(EntrySpace::strategy));
        vec(strike, 1..=self.max_strikes)
            .prop_map(|mut strikes| {
                // A later strike's delay from spawn counts from the strike before it:
                // "SIGTERM, then SIGTERM again 2 ms later".
                for strike in strikes.iter_mut().skip(1) {
                    if let Point::Delay { clock, .. } = &mut strike.point
                        && *clock == Clock::Spawn
                    {
                        *clock = Clock::Previous;
                    }
                }
                Plan { strikes }
            })
            .sboxed()
    }

    /// How many single-strike points the space holds; `None` when it has delays.
    pub fn size(&self) -> Option<u64> {
        self.entries.iter().map(EntrySpace::size).sum()
    }

    /// Single-strike point `n` of the space, counted simplest first within each entry:
    /// plainer signals, then earlier calls, then entry before exit. `None` past the end,
    /// or when the space has delays. Computed, not listed: a sampled space may be huge.
    pub fn point(&self, mut n: u64) -> Option<Plan> {
        for entry in &self.entries {
            let (first, last, sides) = entry.counted()?;
            let size = entry.size()?;
            if n < size {
                let per_signal = last - first + 1;
                let signal = n / (per_signal * sides);
                let nth = first + n / sides % per_signal;
                let when = n % sides;
                return Some(Plan {
                    strikes: vec![entry.strike(signal as usize, nth, when as usize)],
                });
            }
            n -= size;
        }
        None
    }

    /// Every single-strike plan, in the order of [`StrikeSpace::point`]. `None` when the
    /// space has delays.
    #[cfg(test)]
    pub fn every_point(&self) -> Option<Vec<Plan>> {
        (0..self.size()?).map(|n| self.point(n)).collect()
    }
}

/// The programs the uninterrupted run exec'd, for an error that says what it ran instead.
fn programs_run(census: &Census) -> String {
    let mut names: Vec<&str> = census
        .syscalls
        .iter()
        .flat_map(|s| s.execs.iter().map(|e| e.program.as_str()))
        .collect();
    names.dedup();
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(*n));
    if names.is_empty() {
        "no program was seen".into()
    } else {
        format!("it ran {}", names.join(", "))
    }
}

/// The points one strike entry allows, per signal.
fn points(
    at: &PointSpec,
    process: Option<&ProcessSelector>,
    signals: &[Signal],
    census: &Census,
) -> Result<PointSpace, String> {
    match at {
        PointSpec::Delay {
            after,
            after_handler,
            after_exec,
            after_ready,
        } => {
            if *after_ready {
                let Some(ready) = census.run.ready_at else {
                    return Err(
                        "`after_ready`, but the uninterrupted run has no ready moment: add `ready = { … }` to the scenario"
                            .into(),
                    );
                };
                let range = after.unwrap_or(DelayRange {
                    start: Duration::ZERO,
                    end: census.duration().saturating_sub(ready),
                });
                return Ok(PointSpace::Delay(
                    signals.iter().map(|_| (Clock::Ready, range)).collect(),
                ));
            }
            if let Some(handler) = after_handler
                && !census.handlers.contains_key(handler)
            {
                return Err(format!(
                    "`after_handler = \"{handler}\"`, but the uninterrupted run never installed a {handler} handler in its main process"
                ));
            }
            let untraced =
                || "the census was not traced, so it cannot tell which programs ran".to_string();
            if let Some(ProcessSelector::Program(glob)) = process {
                let syscalls = census.syscalls.as_ref().ok_or_else(untraced)?;
                if !syscalls.ran(glob) {
                    return Err(format!(
                        "`process = \"{glob}\"`, but the uninterrupted run never ran a program matching it ({})",
                        programs_run(census)
                    ));
                }
            }
            let exec_at = match after_exec {
                Some(glob) => {
                    let syscalls = census.syscalls.as_ref().ok_or_else(untraced)?;
                    let Some(exec) = syscalls.first_exec(glob) else {
                        return Err(format!(
                            "`after_exec = \"{glob}\"`, but the uninterrupted run never exec'd a program matching it ({})",
                            programs_run(census)
                        ));
                    };
                    Some((glob, exec.at))
                }
                None => None,
            };
            let per_signal = signals
                .iter()
                .map(|&signal| {
                    let clock = match (exec_at, after_handler) {
                        (Some((glob, _)), _) => Clock::Exec(glob.clone()),
                        (None, Some(handler)) => Clock::Handler(*handler),
                        (None, None)
                            if signal.is_catchable() && census.handlers.contains_key(&signal) =>
                        {
                            Clock::Handler(signal)
                        }
                        (None, None) => Clock::Spawn,
                    };
                    // By default, the rest of the census's run from where the clock starts.
                    let span = match (&clock, exec_at) {
                        (Clock::Exec(_), Some((_, at))) => census
                            .duration()
                            .saturating_sub(at)
                            .max(Duration::from_millis(1)),
                        (Clock::Handler(s), _) => census.default_span(*s),
                        _ => census.default_span(signal),
                    };
                    let range = after.unwrap_or(DelayRange {
                        start: Duration::ZERO,
                        end: span,
                    });
                    (clock, range)
                })
                .collect();
            Ok(PointSpace::Delay(per_signal))
        }
        PointSpec::Syscall(p) => {
            let Some(syscalls) = &census.syscalls else {
                return Err(
                    "the census was not traced, so syscall points cannot be planned".into(),
                );
            };
            let count = syscalls.count_in(p.syscall, p.path.as_ref(), process);
            let what = |calls: &str| {
                let mut what = match &p.path {
                    Some(path) => format!("{} {calls} naming `{path}`", p.syscall),
                    None => format!("{} {calls}", p.syscall),
                };
                match process {
                    None => {}
                    Some(ProcessSelector::Main) => what.push_str(" in its main process"),
                    Some(ProcessSelector::Program(glob)) => {
                        what.push_str(&format!(" in a `{glob}` process"))
                    }
                }
                what
            };
            let Some((first, last)) = p.nth.resolve(count) else {
                return Err(if count == 0 {
                    format!(
                        "the uninterrupted run made no {}: nothing to strike (`killpoint trace -- COMMAND` lists the calls it makes)",
                        what("call")
                    )
                } else {
                    format!(
                        "`nth = \"{}\"` selects no call: the uninterrupted run made {count} {}",
                        p.nth,
                        what(if count == 1 { "call" } else { "calls" })
                    )
                });
            };
            Ok(PointSpace::Syscall {
                syscall: p.syscall,
                path: p.path.clone(),
                first,
                last,
                whens: p.when.all().to_vec(),
            })
        }
        PointSpec::Probe(p) => {
            let count = census.mark_counts.get(&p.name).copied().unwrap_or(0);
            let Some((first, last)) = p.nth.resolve(count) else {
                return Err(if count == 0 {
                    format!(
                        "the uninterrupted run made no `{}` probe mark: the target marks through {} (see the scenario reference, \"Probe marks\")",
                        p.name,
                        crate::outcome::PROBE_FD_VAR
                    )
                } else {
                    format!(
                        "`nth = \"{}\"` selects no mark: the uninterrupted run made {count} `{}` mark{}",
                        p.nth,
                        p.name,
                        if count == 1 { "" } else { "s" }
                    )
                });
            };
            Ok(PointSpace::Probe {
                name: p.name.clone(),
                first,
                last,
            })
        }
        PointSpec::Request(nth) => {
            let count = census.run.requests_sent();
            let Some((first, last)) = nth.resolve(count) else {
                return Err(if count == 0 {
                    "the uninterrupted run's clients sent no request: nothing to strike (`killpoint census` shows each client's requests)".to_string()
                } else {
                    format!(
                        "`request = \"{nth}\"` selects no request: the uninterrupted run's clients sent {count} request{}",
                        if count == 1 { "" } else { "s" }
                    )
                });
            };
            Ok(PointSpace::Request { first, last })
        }
        PointSpec::AfterExit => Ok(PointSpace::AfterExit),
    }
}

/// What the cases of a scenario draw their plans from: the strike space and its
/// strategy.
pub struct Plans {
    pub strategy: SBoxedStrategy<Plan>,
    pub space: StrikeSpace,
}

impl Plans {
    pub fn new(space: StrikeSpace) -> Plans {
        Plans {
            strategy: space.strategy(),
            space,
        }
    }

    /// The plan of case `id`: drawn from its seed (and moved along its shrink path), or
    /// point N of the exhaustive space.
    pub fn plan(&self, id: &CaseId) -> Result<Plan, String> {
        match id {
            CaseId::Seeded { seed, moves } => Ok(tree(&self.strategy, *seed, moves).current()),
            CaseId::Census => Ok(Plan { strikes: vec![] }),
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

/// A plan's value tree, as drawn from `seed` and moved along `moves`.
pub fn tree(
    strategy: &SBoxedStrategy<Plan>,
    seed: u64,
    moves: &Moves,
) -> Box<dyn ValueTree<Value = Plan>> {
    let mut runner = TestRunner::new_with_rng(Config::default(), rng(seed));
    let mut tree = strategy
        .new_tree(&mut runner)
        .expect("plan strategies never reject");
    for m in &moves.0 {
        match m {
            Move::Simplify => tree.simplify(),
            Move::Complicate => tree.complicate(),
        };
    }
    tree
}

/// The plan of the case with this seed, before any shrinking.
#[cfg(test)]
pub fn generate(strategy: &SBoxedStrategy<Plan>, case_seed: u64) -> Plan {
    tree(strategy, case_seed, &Moves::default()).current()
}

fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&splitmix64(seed.wrapping_add(i as u64)).to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Scenarios and censuses for the tests of plans and shrinking.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::census::HandlerSeen;
    use crate::invariants::testing::clean_outcome;
    use std::path::Path;

    pub fn scenario(strikes: &str) -> Scenario {
        let text = format!("name = \"p\"\ncommand = [\"true\"]\n{strikes}");
        Scenario::parse(&text, Path::new("p.toml")).unwrap()
    }

    pub fn census(duration_ms: u64, term_handler_ms: Option<u64>) -> Census {
        let mut run = clean_outcome();
        run.exited_at = Duration::from_millis(duration_ms);
        let mut census = Census::of(run);
        if let Some(ms) = term_handler_ms {
            census.handlers.insert(
                Signal::SIGTERM,
                HandlerSeen {
                    at: Duration::from_millis(ms),
                },
            );
        }
        census
    }

    pub fn traced(calls: &[(SyscallClass, &str, u64)]) -> Census {
        let by_main: Vec<_> = calls
            .iter()
            .map(|&(class, path, count)| (class, path, count, MAIN, "target"))
            .collect();
        traced_tree(&by_main)
    }

    /// The main process's pid in [`traced_tree`].
    pub const MAIN: i32 = 100;

    /// A census of calls made by processes (pid, program); pid [`MAIN`] is the target's
    /// main process, exec'd as `target`, and every program is exec'd at 10 ms times the
    /// order it first appears in.
    pub fn traced_tree(calls: &[(SyscallClass, &str, u64, i32, &str)]) -> Census {
        use crate::syscalls::{ExecSeen, TracedProcess};
        let mut census = census(100, Some(1));
        let mut syscalls = crate::syscalls::SyscallCensus::default();
        let process = |pid: i32, program: &str| TracedProcess {
            pid,
            parent: (pid != MAIN).then_some(MAIN),
            command: program.into(),
            program: program.into(),
            threads: 0,
            status: None,
            started_at: Duration::ZERO,
            exited_at: None,
            signals: Vec::new(),
        };
        syscalls.processes.push(process(MAIN, "target"));
        syscalls.execs.push(ExecSeen {
            pid: MAIN,
            program: "target".into(),
            at: Duration::ZERO,
        });
        let mut seq = 0;
        for &(class, path, count, pid, program) in calls {
            if !syscalls.processes.iter().any(|p| p.pid == pid) {
                syscalls.processes.push(process(pid, program));
            }
            if !syscalls.execs.iter().any(|e| e.program == program) {
                let at = Duration::from_millis(10 * syscalls.execs.len() as u64);
                syscalls.execs.push(ExecSeen {
                    pid,
                    program: program.into(),
                    at,
                });
            }
            for _ in 0..count {
                seq += 1;
                syscalls.add_call(
                    &crate::syscalls::Call::naming(class, path),
                    seq,
                    pid,
                    program,
                );
            }
        }
        census.syscalls = Some(syscalls);
        census
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{census, scenario, traced};
    use super::*;
    use crate::plan::case_seed;
    use std::collections::BTreeSet;

    fn space(s: &Scenario, census: &Census) -> SBoxedStrategy<Plan> {
        StrikeSpace::new(s, census).unwrap().strategy()
    }

    fn delay(strike: &PlannedStrike) -> (Duration, Clock) {
        match &strike.point {
            Point::Delay { after, clock } => (*after, clock.clone()),
            _ => panic!("a delay: {strike}"),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let s = scenario("[[strike]]\nsignal = [\"SIGTERM\", \"SIGINT\"]\n");
        let strategy = space(&s, &census(200, Some(2)));
        let plans: Vec<Plan> = (0..32)
            .map(|i| generate(&strategy, case_seed(7, i)))
            .collect();
        let again: Vec<Plan> = (0..32)
            .map(|i| generate(&strategy, case_seed(7, i)))
            .collect();
        assert_eq!(plans, again);
        let other: Vec<Plan> = (0..32)
            .map(|i| generate(&strategy, case_seed(8, i)))
            .collect();
        assert_ne!(plans, other, "another master seed gives other plans");
    }

    #[test]
    fn default_delays_span_the_census_from_the_handler() {
        let s = scenario("[[strike]]\nsignal = [\"SIGTERM\", \"SIGKILL\"]\n");
        let strategy = space(&s, &census(200, Some(50)));
        let plans: Vec<Plan> = (0..200)
            .map(|i| generate(&strategy, case_seed(1, i)))
            .collect();
        for plan in &plans {
            let strike = &plan.strikes[0];
            let (after, clock) = delay(strike);
            match strike.signal {
                Signal::SIGTERM => {
                    assert_eq!(clock, Clock::Handler(Signal::SIGTERM));
                    assert!(after <= Duration::from_millis(150), "{strike}");
                }
                _ => {
                    assert_eq!(clock, Clock::Spawn, "SIGKILL cannot wait for a handler");
                    assert!(after <= Duration::from_millis(200), "{strike}");
                }
            }
        }
        let sigkills = plans
            .iter()
            .filter(|p| p.strikes[0].signal == Signal::SIGKILL)
            .count();
        assert!(
            (40..160).contains(&sigkills),
            "both signals are chosen: {sigkills} of 200"
        );
    }

    #[test]
    fn a_declared_range_bounds_the_delay() {
        let s = scenario("[[strike]]\nsignal = \"SIGINT\"\nat = { after = \"10ms..20ms\" }\n");
        let strategy = space(&s, &census(500, None));
        for i in 0..100 {
            let strike = &generate(&strategy, case_seed(3, i)).strikes[0];
            let (after, clock) = delay(strike);
            assert_eq!(clock, Clock::Spawn, "the census saw no SIGINT handler");
            assert!((Duration::from_millis(10)..=Duration::from_millis(20)).contains(&after));
        }
    }

    #[test]
    fn syscall_points_range_over_the_census_calls() {
        let s = scenario(
            "[[strike]]\nsignal = \"SIGTERM\"\nat = { syscall = \"write\", path = \"out*\", when = \"exit\" }\n",
        );
        let census = traced(&[
            (SyscallClass::Write, "out.json", 5),
            (SyscallClass::Write, "<stdout pipe:[1]>", 9),
        ]);
        let strategy = space(&s, &census);
        let nths: BTreeSet<u64> = (0..200)
            .map(
                |i| match &generate(&strategy, case_seed(5, i)).strikes[0].point {
                    Point::Syscall { nth, when, .. } => {
                        assert_eq!(*when, When::Exit);
                        *nth
                    }
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert_eq!(
            nths,
            (1..=5).collect(),
            "every one of the 5 writes to out*, no other"
        );
        let plan = generate(&strategy, case_seed(5, 0));
        assert!(
            plan.to_string()
                .starts_with("SIGTERM at the exit of write #"),
            "{plan}"
        );
    }

    #[test]
    fn probe_points_range_over_the_census_marks_of_their_name() {
        let s = scenario(
            "[[strike]]\nsignal = [\"SIGTERM\", \"SIGKILL\"]\nat = { probe = \"unit\", nth = \"2..\" }\n",
        );
        let mut census = census(100, Some(1));
        census.mark_counts.insert("unit".into(), 4);
        census.mark_counts.insert("ack".into(), 9);
        let space = StrikeSpace::new(&s, &census).unwrap();
        assert_eq!(space.size(), Some(2 * 3), "2 signals × marks 2, 3 and 4");
        let listed: Vec<String> = space
            .every_point()
            .unwrap()
            .iter()
            .map(Plan::to_string)
            .collect();
        assert_eq!(
            listed,
            [
                "SIGTERM at probe mark `unit` #2",
                "SIGTERM at probe mark `unit` #3",
                "SIGTERM at probe mark `unit` #4",
                "SIGKILL at probe mark `unit` #2",
                "SIGKILL at probe mark `unit` #3",
                "SIGKILL at probe mark `unit` #4",
            ]
        );
        let none = scenario("[[strike]]\nsignal = \"SIGTERM\"\nat = { probe = \"flush-begin\" }\n");
        let e = StrikeSpace::new(&none, &census).unwrap_err();
        assert!(
            e.starts_with("strike[0]: the uninterrupted run made no `flush-begin` probe mark"),
            "{e}"
        );
        let beyond =
            scenario("[[strike]]\nsignal = \"SIGTERM\"\nat = { probe = \"unit\", nth = 5 }\n");
        let e = StrikeSpace::new(&beyond, &census).unwrap_err();
        assert!(e.contains("made 4 `unit` marks"), "{e}");
    }

    #[test]
    fn a_syscall_point_the_census_never_reached_is_an_error() {
        let census = traced(&[(SyscallClass::Write, "out.json", 3)]);
        let none = scenario("[[strike]]\nsignal = \"SIGTERM\"\nat = { syscall = \"rename\" }\n");
        let e = StrikeSpace::new(&none, &census).unwrap_err();
        assert!(
            e.starts_with("strike[0]: the uninterrupted run made no rename call"),
            "{e}"
        );
        let beyond = scenario(
            "[[strike]]\nsignal = \"SIGTERM\"\nat = { syscall = \"write\", nth = \"4..\" }\n",
        );
        let e = StrikeSpace::new(&beyond, &census).unwrap_err();
        assert!(e.contains("made 3 write calls"), "{e}");
        let handler =
            scenario("[[strike]]\nsignal = \"SIGTERM\"\nat = { after_handler = \"SIGINT\" }\n");
        let e = StrikeSpace::new(&handler, &census).unwrap_err();
        assert!(e.contains("never installed a SIGINT handler"), "{e}");
    }

    #[test]
    fn a_syscall_point_limited_to_a_program_ranges_over_that_programs_calls() {
        use super::testing::{MAIN, traced_tree};
        let s = scenario(
            "[[strike]]\nsignal = \"SIGTERM\"\nprocess = \"sh\"\nat = { syscall = \"write\", path = \"*.out\" }\n",
        );
        let census = traced_tree(&[
            (SyscallClass::Write, "main.out", 2, MAIN, "target"),
            (SyscallClass::Write, "sh.out", 3, 101, "sh"),
            (SyscallClass::Write, "perl.out", 3, 102, "perl"),
        ]);
        let space = StrikeSpace::new(&s, &census).unwrap();
        assert_eq!(space.size(), Some(3), "sh's 3 writes, not the tree's 8");
        let listed: Vec<String> = space
            .every_point()
            .unwrap()
            .iter()
            .map(Plan::to_string)
            .collect();
        assert_eq!(
            listed,
            [
                "SIGTERM at the entry of write #1 to *.out in `sh`",
                "SIGTERM at the entry of write #2 to *.out in `sh`",
                "SIGTERM at the entry of write #3 to *.out in `sh`",
            ]
        );
        // A seeded case draws the process with its point, and draws it again from its id.
        let plans = Plans::new(space);
        let plan = plans.plan(&CaseId::seeded(42)).unwrap();
        let sh = Some(ProcessSelector::Program("sh".parse().unwrap()));
        assert_eq!(plan.strikes[0].process, sh, "{plan}");
        let again = Plans::new(StrikeSpace::new(&s, &census).unwrap());
        assert_eq!(again.plan(&CaseId::seeded(42)).unwrap(), plan);

        let main = scenario(
            "[[strike]]\nsignal = \"SIGTERM\"\nprocess = \"main\"\nto = \"group\"\nat = { syscall = \"write\", nth = 3 }\n",
        );
        let e = StrikeSpace::new(&main, &census).unwrap_err();
        assert_eq!(
            e,
            "strike[0]: `nth = \"3\"` selects no call: the uninterrupted run made 2 write calls in its main process"
        );
        let none = scenario(
            "[[strike]]\nsignal = \"SIGTERM\"\nprocess = \"rsync\"\nat = { syscall = \"write\" }\n",
        );
        let e = StrikeSpace::new(&none, &census).unwrap_err();
        assert!(
            e.starts_with(
                "strike[0]: the uninterrupted run made no write call in a `rsync` process"
            ),
            "{e}"
        );
        let group = scenario(
            "[[strike]]\nsignal = \"SIGTERM\"\nprocess = \"perl\"\nto = \"group\"\nat = { syscall = \"write\", nth = 2 }\n",
        );
        let plan = StrikeSpace::new(&group, &census).unwrap().point(0).unwrap();
        assert_eq!(
            plan.to_string(),
            "SIGTERM to the process group of the `perl` process at the entry of write #2 in `perl`"
        );
    }

    #[test]
    fn a_delay_limited_to_a_program_or_counted_from_its_exec_needs_the_census_to_have_run_it() {
        use super::testing::traced_tree;
        // sh is exec'd at 10 ms (traced_tree), the census ran 100 ms.
        let tree = traced_tree(&[(SyscallClass::Write, "sh.out", 3, 101, "sh")]);
        let s = scenario(
            "[[strike]]\nsignal = \"SIGINT\"\nprocess = \"sh\"\nat = { after_exec = \"s?\" }\n",
        );
        let strategy = space(&s, &tree);
        for i in 0..50 {
            let strike = &generate(&strategy, case_seed(9, i)).strikes[0];
            let (after, clock) = delay(strike);
            assert_eq!(clock, Clock::Exec("s?".parse().unwrap()));
            assert!(
                after <= Duration::from_millis(90),
                "the rest of the census: {strike}"
            );
            assert_eq!(
                strike.process,
                Some(ProcessSelector::Program("sh".parse().unwrap()))
            );
        }
        let plan = generate(&strategy, case_seed(9, 0));
        assert!(
            plan.to_string()
                .starts_with("SIGINT to the first `sh` process alive ")
                && plan
                    .to_string()
                    .ends_with(" ms after the first exec of `s?`"),
            "{plan}"
        );
        let main = scenario(
            "[[strike]]\nsignal = \"SIGINT\"\nprocess = \"main\"\nat = { after = \"5ms\" }\n",
        );
        let plan = StrikeSpace::new(&main, &tree).unwrap().strategy();
        assert_eq!(
            generate(&plan, 1).to_string(),
            "SIGINT to the main process 5.000 ms after spawn"
        );
        let never =
            scenario("[[strike]]\nsignal = \"SIGINT\"\nat = { after_exec = \"python*\" }\n");
        assert_eq!(
            StrikeSpace::new(&never, &tree).unwrap_err(),
            "strike[0]: `after_exec = \"python*\"`, but the uninterrupted run never exec'd a program matching it (it ran target, sh)"
        );
        let absent = scenario("[[strike]]\nsignal = \"SIGINT\"\nprocess = \"perl\"\n");
        assert_eq!(
            StrikeSpace::new(&absent, &tree).unwrap_err(),
            "strike[0]: `process = \"perl\"`, but the uninterrupted run never ran a program matching it (it ran target, sh)"
        );
        assert!(
            StrikeSpace::new(&absent, &census(100, None))
                .unwrap_err()
                .contains("not traced"),
        );
    }

    #[test]
    fn case_ids_read_back_as_they_are_written() {
        let moves = |pattern: &[bool]| {
            Moves(
                pattern
                    .iter()
                    .map(|&s| if s { Move::Simplify } else { Move::Complicate })
                    .collect(),
            )
        };
        let long: Vec<bool> = (0..131).map(|i| i % 3 != 1).collect();
        let ids = [
            CaseId::seeded(0),
            CaseId::seeded(u64::MAX),
            CaseId::Seeded {
                seed: 42,
                moves: moves(&[true]),
            },
            CaseId::Seeded {
                seed: 42,
                moves: moves(&[false, false, false]),
            },
            CaseId::Seeded {
                seed: 7,
                moves: moves(&long),
            },
            CaseId::Point(17),
        ];
        for id in ids {
            let text = id.to_string();
            assert_eq!(text.parse::<CaseId>(), Ok(id.clone()), "{text}");
        }
        assert_eq!(CaseId::seeded(5).to_string(), "5");
        assert_eq!(
            CaseId::Seeded {
                seed: 5,
                moves: moves(&[true, false, true])
            }
            .to_string(),
            "5-d",
            "1 (the lead) then 101"
        );
        for bad in ["", "p", "x1", "12-", "12-zz", "-5", "p-1"] {
            assert!(bad.parse::<CaseId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_point_lists_the_space_simplest_first() {
        let s = scenario(
            "[[strike]]\nsignal = [\"SIGKILL\", \"SIGTERM\"]\nat = { syscall = \"write\", when = \"both\" }\n[[strike]]\nsignal = \"SIGINT\"\nat = { syscall = \"rename\" }\n",
        );
        let census = traced(&[
            (SyscallClass::Write, "out.json", 2),
            (SyscallClass::Rename, "out.json", 1),
        ]);
        let space = StrikeSpace::new(&s, &census).unwrap();
        assert_eq!(space.size(), Some(2 * 2 * 2 + 1));
        let listed: Vec<String> = space
            .every_point()
            .unwrap()
            .iter()
            .map(Plan::to_string)
            .collect();
        assert_eq!(
            listed,
            [
                "SIGTERM at the entry of write #1",
                "SIGTERM at the exit of write #1",
                "SIGTERM at the entry of write #2",
                "SIGTERM at the exit of write #2",
                "SIGKILL at the entry of write #1",
                "SIGKILL at the exit of write #1",
                "SIGKILL at the entry of write #2",
                "SIGKILL at the exit of write #2",
                "SIGINT at the entry of rename #1",
            ]
        );
        let delays = scenario("[[strike]]\nsignal = \"SIGTERM\"\n");
        let space = StrikeSpace::new(&delays, &census).unwrap();
        assert_eq!((space.size(), space.every_point()), (None, None));
    }

    #[test]
    fn case_seeds_are_distinct() {
        let seeds: BTreeSet<u64> = (0..10_000).map(|i| case_seed(42, i)).collect();
        assert_eq!(seeds.len(), 10_000);
    }
}
