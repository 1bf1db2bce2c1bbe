//! Plans: the strikes of one case, in order, and the ids that name cases.
//!
//! A plan is plain data: where each strike lands ([`Point`]) and with which signal. The
//! strike space it is drawn from, and how it shrinks, are in `space.rs`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::strike::{ProcessSelector, Recipient};
use crate::syscalls::{SyscallClass, When};
use crate::values::{PathGlob, ProgramGlob, Signal};

/// The strikes of one case, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub strikes: Vec<PlannedStrike>,
}

/// One signal delivered at one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStrike {
    pub signal: Signal,
    pub to: Recipient,
    pub point: Point,
    /// The process it hits, from its `[[strike]]` entry: whose calls a syscall point
    /// counts, which process a delay's signal goes to. `None`: the whole tree's calls, the
    /// main process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSelector>,
    /// A power loss (`signal = "POWER"`): the tree is killed with SIGKILL (`signal`) and
    /// the sandbox is put in a state a power failure could have left (see `power.rs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub power: bool,
}

/// Where a strike lands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Point {
    /// `after` from the start of `clock`.
    Delay {
        #[serde(with = "crate::units::millis")]
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
    /// The `nth` probe mark named `name`: the target waits in its `mark` call until the
    /// signal has been delivered.
    Probe { name: String, nth: u64 },
    /// When killpoint's own clients have sent their `nth` request (all clients counted
    /// together): its last byte is written, its response not yet read.
    Request { nth: u64 },
    /// Once the tree had gone by itself (a power loss after the run: never sent).
    AfterExit,
}

/// What a delay is counted from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clock {
    /// From the spawn of the target.
    Spawn,
    /// From the moment the target has a handler for this signal. The census saw it install
    /// one; counting from there keeps strikes out of the exec-to-main window, where no
    /// program can have a handler yet.
    Handler(Signal),
    /// From the first exec of a program whose name matches, anywhere in the tree, as the
    /// tracer sees its exec event.
    Exec(ProgramGlob),
    /// From the moment the target was ready (`ready`).
    Ready,
    /// From the moment the strike before it in the plan was sent.
    Previous,
}

impl PlannedStrike {
    /// Whether the tracer must deliver this strike.
    pub fn is_syscall(&self) -> bool {
        matches!(self.point, Point::Syscall { .. })
    }
}

impl fmt::Display for PlannedStrike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.power {
            f.write_str("POWER")?;
        } else {
            write!(f, "{}", self.signal)?;
        }
        // A syscall point's process is the one that made the call, named after the call.
        let syscall = self.is_syscall();
        let chosen = match (&self.process, syscall) {
            (None, _) => None,
            (Some(ProcessSelector::Main), _) => Some("the main process".to_string()),
            (Some(ProcessSelector::Program(glob)), true) => Some(format!("the `{glob}` process")),
            (Some(ProcessSelector::Program(glob)), false) => {
                Some(format!("the first `{glob}` process alive"))
            }
        };
        match (self.to, chosen) {
            (Recipient::Group, None) => f.write_str(" to the process group")?,
            (Recipient::Group, Some(chosen)) => write!(f, " to the process group of {chosen}")?,
            (Recipient::Process, Some(chosen)) if !syscall => write!(f, " to {chosen}")?,
            (Recipient::Process, _) => {}
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
                    Clock::Exec(glob) => write!(f, "after the first exec of `{glob}`"),
                    Clock::Previous => f.write_str("after the strike before"),
                    Clock::Ready => f.write_str("after the target was ready"),
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
                match &self.process {
                    None => Ok(()),
                    Some(ProcessSelector::Main) => f.write_str(" in the main process"),
                    Some(ProcessSelector::Program(glob)) => write!(f, " in `{glob}`"),
                }
            }
            Point::Probe { name, nth } => write!(f, " at probe mark `{name}` #{nth}"),
            Point::Request { nth } => write!(f, " once the clients had sent request #{nth}"),
            Point::AfterExit => f.write_str(" after the tree had exited"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.strikes.is_empty() {
            return f.write_str("no strike");
        }
        for (i, strike) in self.strikes.iter().enumerate() {
            if i > 0 {
                f.write_str(", then ")?;
            }
            write!(f, "{strike}")?;
        }
        Ok(())
    }
}

/// A shrink path: the moves (simplify, complicate) that take a case's plan from the one
/// its seed draws to a simpler one. Replaying them needs no runs: the value tree is a
/// deterministic function of the seed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Moves(pub Vec<Move>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Move {
    Simplify,
    Complicate,
}

impl Moves {
    /// Hex digits of the moves as bits (simplify = 1) behind a leading 1.
    fn to_hex(&self) -> String {
        let mut bits: Vec<bool> = vec![true];
        bits.extend(self.0.iter().map(|m| *m == Move::Simplify));
        // Pad at the front to whole hex digits with zeros, which the leading 1 delimits.
        let pad = (4 - bits.len() % 4) % 4;
        let bits: Vec<bool> = std::iter::repeat_n(false, pad).chain(bits).collect();
        bits.chunks(4)
            .map(|c| {
                let digit = c.iter().fold(0u32, |acc, &b| acc << 1 | b as u32);
                char::from_digit(digit, 16).expect("a hex digit")
            })
            .collect()
    }

    fn from_hex(text: &str) -> Option<Moves> {
        let mut bits = Vec::new();
        for c in text.chars() {
            let digit = c.to_digit(16)?;
            bits.extend((0..4).rev().map(|i| digit >> i & 1 == 1));
        }
        let lead = bits.iter().position(|&b| b)?;
        Some(Moves(
            bits[lead + 1..]
                .iter()
                .map(|&b| if b { Move::Simplify } else { Move::Complicate })
                .collect(),
        ))
    }
}

/// Which case: one drawn from a seed (and maybe shrunk), one point of an exhaustive run,
/// or the uninterrupted run itself. Written `SEED`, `SEED-MOVES` (a shrunk case), `pN`
/// (exhaustive point N, from 0) or `census`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CaseId {
    Seeded {
        seed: u64,
        moves: Moves,
    },
    Point(u64),
    /// The run under the empty plan: a promise broken with no strike at all.
    Census,
}

impl CaseId {
    pub fn seeded(seed: u64) -> CaseId {
        CaseId::Seeded {
            seed,
            moves: Moves::default(),
        }
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseId::Seeded { seed, moves } if moves.0.is_empty() => write!(f, "{seed}"),
            CaseId::Seeded { seed, moves } => write!(f, "{seed}-{}", moves.to_hex()),
            CaseId::Point(n) => write!(f, "p{n}"),
            CaseId::Census => f.write_str("census"),
        }
    }
}

impl std::str::FromStr for CaseId {
    type Err = String;

    fn from_str(text: &str) -> Result<CaseId, String> {
        let bad = || {
            format!(
                "`{text}` is not a case: expected a seed (`1234`), a shrunk case (`1234-5b`), an exhaustive point (`p17`) or `census`"
            )
        };
        let text = text.trim();
        if text == "census" {
            return Ok(CaseId::Census);
        }
        if let Some(n) = text.strip_prefix('p') {
            return n.parse().map(CaseId::Point).map_err(|_| bad());
        }
        let (seed, moves) = match text.split_once('-') {
            Some((seed, moves)) => (seed, Moves::from_hex(moves).ok_or_else(bad)?),
            None => (text, Moves::default()),
        };
        Ok(CaseId::Seeded {
            seed: seed.parse().map_err(|_| bad())?,
            moves,
        })
    }
}

impl Serialize for CaseId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The seed of case `index` of the campaign with `master` seed. Case 0's is the master
/// seed itself, so a case seed given as the master seed reruns that case first.
pub fn case_seed(master: u64, index: u64) -> u64 {
    if index == 0 {
        return master;
    }
    splitmix64(master ^ splitmix64(index))
}

/// SplitMix64: a fixed, well-mixed function of a 64-bit value.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
