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
use crate::scenario::{DelayRange, Recipient, Scenario, Signal};

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
    #[serde(with = "crate::report::millis")]
    pub after: Duration,
    pub clock: Clock,
}

/// What a delay is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clock {
    /// From the spawn of the target.
    Spawn,
    /// From the moment the target has a handler for the strike's signal. The census saw it
    /// install one; counting from there keeps strikes out of the exec-to-main window, where
    /// no program can have a handler yet.
    Handler,
}

impl fmt::Display for Strike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let to = match self.to {
            Recipient::Process => "",
            Recipient::Group => " to the process group",
        };
        let from = match self.clock {
            Clock::Spawn => "after spawn",
            Clock::Handler => "after its handler was installed",
        };
        write!(
            f,
            "{}{to} {:.3} ms {from}",
            self.signal,
            self.after.as_secs_f64() * 1000.0
        )
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

/// The strategy of plans for a scenario, given its census.
pub fn strategy(scenario: &Scenario, census: &Census) -> SBoxedStrategy<Plan> {
    let options: Vec<SBoxedStrategy<Strike>> = scenario
        .strikes
        .iter()
        .map(|spec| {
            let to = spec.to;
            let per_signal: Vec<SBoxedStrategy<Strike>> = spec
                .signal
                .0
                .iter()
                .map(|&signal| {
                    let clock = if signal.is_catchable() && census.handlers.contains_key(&signal) {
                        Clock::Handler
                    } else {
                        Clock::Spawn
                    };
                    let range = spec.at.after.unwrap_or(DelayRange {
                        start: Duration::ZERO,
                        end: census.default_span(signal),
                    });
                    let nanos = range.start.as_nanos() as u64..=range.end.as_nanos() as u64;
                    nanos
                        .prop_map(move |n| Strike {
                            signal,
                            to,
                            after: Duration::from_nanos(n),
                            clock,
                        })
                        .sboxed()
                })
                .collect();
            Union::new(per_signal).sboxed()
        })
        .collect();
    Union::new(options)
        .prop_map(|strike| Plan {
            strikes: vec![strike],
        })
        .sboxed()
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
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let s = scenario("[[strike]]\nsignal = [\"SIGTERM\", \"SIGINT\"]\n");
        let strategy = strategy(&s, &census(200, Some(2)));
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
        let strategy = strategy(&s, &census(200, Some(50)));
        let plans: Vec<Plan> = (0..200)
            .map(|i| generate(&strategy, case_seed(1, i)))
            .collect();
        for plan in &plans {
            let strike = &plan.strikes[0];
            match strike.signal {
                Signal::SIGTERM => {
                    assert_eq!(strike.clock, Clock::Handler);
                    assert!(strike.after <= Duration::from_millis(150), "{strike}");
                }
                _ => {
                    assert_eq!(
                        strike.clock,
                        Clock::Spawn,
                        "SIGKILL cannot wait for a handler"
                    );
                    assert!(strike.after <= Duration::from_millis(200), "{strike}");
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
        let strategy = strategy(&s, &census(500, None));
        for i in 0..100 {
            let strike = &generate(&strategy, case_seed(3, i)).strikes[0];
            assert_eq!(
                strike.clock,
                Clock::Spawn,
                "the census saw no SIGINT handler"
            );
            assert!(
                (Duration::from_millis(10)..=Duration::from_millis(20)).contains(&strike.after)
            );
        }
    }

    #[test]
    fn case_seeds_are_distinct() {
        let seeds: BTreeSet<u64> = (0..10_000).map(|i| case_seed(42, i)).collect();
        assert_eq!(seeds.len(), 10_000);
    }
}
