//! Hand-built outcomes for the invariants' unit tests.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::census::{Census, Golden};
use crate::outcome::{Capture, FileState, Outcome, OutputRecord, StrikeRecord, Tracking};
use crate::plan::{Clock, Plan, Point};
use crate::strike::Recipient;
use crate::values::{ExitStatus, Signal};

pub fn at_ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A census that wrote `out.json` with `golden` and exited 0 after 100 ms.
pub fn census(golden: &[u8]) -> Census {
    let mut census = Census::of(clean_outcome());
    census.golden.insert(
        "out.json".parse().unwrap(),
        Some(Golden::new(golden.to_vec())),
    );
    census.files_after.insert("out.json".to_string());
    census
}

/// An outcome in which nothing was struck and the target exited 0 at 100 ms, its tree
/// gone with it, `out.json` golden.
pub fn clean_outcome() -> Outcome {
    Outcome {
        status: ExitStatus::Code(0),
        exited_at: at_ms(100),
        strikes: vec![],
        tree_gone_at: Some(at_ms(100)),
        killed: None,
        leftovers: vec![],
        outputs: vec![OutputRecord {
            path: "out.json".parse().unwrap(),
            before: FileState::Absent,
            after: FileState::Golden,
        }],
        stray_files: vec![],
        stdout: Capture::default(),
        stderr: Capture::default(),
        survivors: None,
        tracking: Tracking::Cgroup,
        trace: vec![],
        processes: vec![],
        handler_io: vec![],
        marker_files: BTreeMap::new(),
        marks: vec![],
        ready_at: None,
        stop: None,
        clients: Vec::new(),
        checks: Vec::new(),
        resume: None,
        power: None,
    }
}

/// `signal` sent at `at`, to a target that had a handler for it.
pub fn struck(signal: Signal, at: Duration) -> StrikeRecord {
    StrikeRecord {
        signal,
        to: Recipient::Process,
        point: Point::Delay {
            after: at,
            clock: Clock::Spawn,
        },
        process: None,
        clock_started_at: Some(Duration::ZERO),
        sent_at: Some(at),
        caught: signal.is_catchable(),
        handler_seen_at: None,
        hit: None,
        struck: None,
        unmatched: false,
        power: false,
    }
}

pub fn no_plan() -> Plan {
    Plan { strikes: vec![] }
}

/// `[expect.acked]` with `ACK <n>` lines on stdout and survivors one per line in
/// `store.log`.
pub fn acked_spec() -> crate::expect::AckedSpec {
    #[derive(serde::Deserialize)]
    struct Wrap {
        acked: crate::expect::AckedSpec,
    }
    let text = r#"acked = { ack = '^ACK (\d+)$', survivors = { file = "store.log" } }"#;
    toml::from_str::<Wrap>(text).unwrap().acked
}
