//! Plans: the strikes of one case, generated from a seed over the census's strike space.
//!
//! Plans come from a proptest `Strategy`, so they are reproducible from a seed and
//! shrinkable (earlier entries, plainer signals, shorter delays) with proptest's own
//! machinery. The RNG is ChaCha seeded from the case seed: the same seed means the same
//! plan on every platform.

use std::fmt;
use std::time::Duration;

use proptest::strategy::{SBoxedStrategy, Strategy, Union, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};

use crate::census::Census;
use crate::scenario::{DelayRange, PathGlob, PointSpec, Recipient, Scenario, Signal};
use crate::syscalls::{SyscallClass, When};

/// The strikes of one case, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub strikes: Vec<Strike>,
}

/// One signal delivered at one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strike {
    pub signal: Signal,
    pub to: Recipient,
    pub point: Point,
}

/// Where a strike lands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Point {
    /// `after` from the start of `clock`.
    Delay {
        #[serde(with = "crate::report::millis")]
        after: Duration,
        clock: Clock,
    },
    /// The entry or exit of the `nth` call of `syscall` naming a path that matches `path`.
    Syscall {
        syscall: SyscallClass,
        path: Option<PathGlob>,
        nth: u64,
        when: When,
    },
}

/// What a delay is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clock {
    /// From the spawn of the target.
    Spawn,
    /// From the moment the target has a handler for this signal. The census saw it install
    /// one; counting from there keeps strikes out of the exec-to-main window, where no
    /// program can have a handler yet.
    Handler(Signal),
}

impl Strike {
    /// Whether the tracer must deliver this strike.
    pub fn is_syscall(&self) -> bool {
        matches!(self.point, Point::Syscall { .. })
    }
}

impl fmt::Display for Strike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.signal)?;
        if self.to == Recipient::Group {
            f.write_str(" to the process group")?;
        }
        match &self.point {
            Point::Delay { after, clock } => {
                write!(f, " {:.3} ms ", after.as_secs_f64() * 1000.0)?;
                match clock {
                    Clock::Spawn => f.write_str("after spawn"),
                    Clock::Handler(s) if *s == self.signal => {
                        f.write_str("after its handler was installed")
                    }
                    Clock::Handler(s) => write!(f, "after the {s} handler was installed"),
                }
            }
            Point::Syscall {
                syscall,
                path,
                nth,
                when,
            } => {
                write!(f, " at the {when} of {syscall} #{nth}")?;
                if let Some(path) = path {
                    write!(f, " to {path}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, strike) in self.strikes.iter().enumerate() {
            if i > 0 {
                f.write_str(", then ")?;
            }
            write!(f, "{strike}")?;
        }
        Ok(())
    }
}

/// The strategy of plans for a scenario, given its census. Fails when a strike point
/// selects nothing the census saw (no such syscall, an `nth` beyond the count, a handler
/// that never appeared).
pub fn strategy(scenario: &Scenario, census: &Census) -> Result<SBoxedStrategy<Plan>, String> {
    let mut options: Vec<SBoxedStrategy<Strike>> = Vec::new();
    for (i, spec) in scenario.strikes.iter().enumerate() {
        let to = spec.to;
        let mut per_signal: Vec<SBoxedStrategy<Strike>> = Vec::new();
        for &signal in &spec.signal.0 {
            let point =
                points(&spec.at, signal, census).map_err(|e| format!("strike[{i}]: {e}"))?;
            per_signal.push(
                point
                    .prop_map(move |point| Strike { signal, to, point })
                    .sboxed(),
            );
        }
        options.push(Union::new(per_signal).sboxed());
    }
    Ok(Union::new(options)
        .prop_map(|strike| Plan {
            strikes: vec![strike],
        })
        .sboxed())
}

/// The points one strike entry allows for one signal.
fn points(
    at: &PointSpec,
    signal: Signal,
    census: &Census,
) -> Result<SBoxedStrategy<Point>, String> {
    match at {
        PointSpec::Delay {
            after,
            after_handler,
        } => {
            let clock = match after_handler {
                Some(handler) => {
                    if !census.handlers.contains_key(handler) {
                        return Err(format!(
                            "`after_handler = \"{handler}\"`, but the uninterrupted run never installed a {handler} handler in its main process"
                        ));
                    }
                    Clock::Handler(*handler)
                }
                None if signal.is_catchable() && census.handlers.contains_key(&signal) => {
                    Clock::Handler(signal)
                }
                None => Clock::Spawn,
            };
            let from = match clock {
                Clock::Spawn => signal,
                Clock::Handler(s) => s,
            };
            let range = after.unwrap_or(DelayRange {
                start: Duration::ZERO,
                end: census.default_span(from),
            });
            let nanos = range.start.as_nanos() as u64..=range.end.as_nanos() as u64;
            Ok(nanos
                .prop_map(move |n| Point::Delay {
                    after: Duration::from_nanos(n),
                    clock,
                })
                .sboxed())
        }
        PointSpec::Syscall(p) => {
            let Some(syscalls) = &census.syscalls else {
                return Err(
                    "the census was not traced, so syscall points cannot be planned".into(),
                );
            };
            let count = syscalls.count(p.syscall, p.path.as_ref());
            let what = match &p.path {
                Some(path) => format!("{} call naming `{path}`", p.syscall),
                None => format!("{} call", p.syscall),
            };
            let Some((first, last)) = p.nth.resolve(count) else {
                return Err(if count == 0 {
                    format!(
                        "the uninterrupted run made no {what}: nothing to strike (`killpoint trace -- COMMAND` lists the calls it makes)"
                    )
                } else {
                    format!(
                        "`nth = \"{}\"` selects no call: the uninterrupted run made {count} {what}{}",
                        p.nth,
                        if count == 1 { "" } else { "s" }
                    )
                });
            };
            let (syscall, path, when) = (p.syscall, p.path.clone(), p.when);
            Ok((first..=last)
                .prop_map(move |nth| Point::Syscall {
                    syscall,
                    path: path.clone(),
                    nth,
                    when,
                })
                .sboxed())
        }
    }
}

/// The plan of the case with this seed.
pub fn generate(strategy: &SBoxedStrategy<Plan>, case_seed: u64) -> Plan {
    let mut runner = TestRunner::new_with_rng(Config::default(), rng(case_seed));
    strategy
        .new_tree(&mut runner)
        .expect("plan strategies never reject")
        .current()
}

fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&splitmix64(seed.wrapping_add(i as u64)).to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// The seed of case `index` of the campaign with `master` seed.
pub fn case_seed(master: u64, index: u64) -> u64 {
    splitmix64(master ^ splitmix64(index))
}

/// SplitMix64: a fixed, well-mixed function of a 64-bit value.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::census::HandlerSeen;
    use crate::outcome::Capture;
    use crate::scenario::ExitStatus;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    fn scenario(strikes: &str) -> Scenario {
        let text = format!("name = \"p\"\ncommand = [\"true\"]\n{strikes}");
        Scenario::parse(&text, Path::new("p.toml")).unwrap()
    }

    fn census(duration_ms: u64, term_handler_ms: Option<u64>) -> Census {
        let mut handlers = BTreeMap::new();
        if let Some(ms) = term_handler_ms {
            handlers.insert(
                Signal::SIGTERM,
                HandlerSeen {
                    at: Duration::from_millis(ms),
                },
            );
        }
        Census {
            status: ExitStatus::Code(0),
            duration: Duration::from_millis(duration_ms),
            handlers,
            golden: BTreeMap::new(),
            files_after: BTreeSet::new(),
            leftovers: vec![],
            stdout: Capture::default(),
            stderr: Capture::default(),
            syscalls: None,
            events: vec![],
        }
    }

    fn delay(strike: &Strike) -> (Duration, Clock) {
        match strike.point {
            Point::Delay { after, clock } => (after, clock),
            _ => panic!("a delay: {strike}"),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let s = scenario("[[strike]]\nsignal = [\"SIGTERM\", \"SIGINT\"]\n");
        let strategy = strategy(&s, &census(200, Some(2))).unwrap();
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
        let strategy = strategy(&s, &census(200, Some(50))).unwrap();
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
        let strategy = strategy(&s, &census(500, None)).unwrap();
        for i in 0..100 {
            let strike = &generate(&strategy, case_seed(3, i)).strikes[0];
            let (after, clock) = delay(strike);
            assert_eq!(clock, Clock::Spawn, "the census saw no SIGINT handler");
            assert!((Duration::from_millis(10)..=Duration::from_millis(20)).contains(&after));
        }
    }

    fn traced(calls: &[(SyscallClass, &str, u64)]) -> Census {
        let mut census = census(100, Some(1));
        let mut syscalls = crate::syscalls::SyscallCensus::default();
        let mut seq = 0;
        for &(class, path, count) in calls {
            for _ in 0..count {
                seq += 1;
                syscalls.add_call(&crate::syscalls::Call::naming(class, path), seq);
            }
        }
        census.syscalls = Some(syscalls);
        census
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
        let strategy = strategy(&s, &census).unwrap();
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
    fn a_syscall_point_the_census_never_reached_is_an_error() {
        let census = traced(&[(SyscallClass::Write, "out.json", 3)]);
        let none = scenario("[[strike]]\nsignal = \"SIGTERM\"\nat = { syscall = \"rename\" }\n");
        let e = strategy(&none, &census).unwrap_err();
        assert!(
            e.starts_with("strike[0]: the uninterrupted run made no rename call"),
            "{e}"
        );
        let beyond = scenario(
            "[[strike]]\nsignal = \"SIGTERM\"\nat = { syscall = \"write\", nth = \"4..\" }\n",
        );
        let e = strategy(&beyond, &census).unwrap_err();
        assert!(e.contains("made 3 write calls"), "{e}");
        let handler =
            scenario("[[strike]]\nsignal = \"SIGTERM\"\nat = { after_handler = \"SIGINT\" }\n");
        let e = strategy(&handler, &census).unwrap_err();
        assert!(e.contains("never installed a SIGINT handler"), "{e}");
    }

    #[test]
    fn case_seeds_are_distinct() {
        let seeds: BTreeSet<u64> = (0..10_000).map(|i| case_seed(42, i)).collect();
        assert_eq!(seeds.len(), 10_000);
    }
}
