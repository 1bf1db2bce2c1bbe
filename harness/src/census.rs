//! The Census: the uninterrupted reference run of a scenario.
//!
//! Its exit status and duration say what a clean run looks like, its final outputs are the
//! golden every case is compared with, and the moments it installed its signal handlers
//! tell the planner where strikes can land.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outcome::{
    Capture, CheckRecord, ClientRecord, Outcome, ProcessInfo, ResumeRecord, StopRecord,
    SurvivorsRead, sha256_hex,
};
use crate::syscalls::{Event, SyscallCensus};
use crate::values::{ExitStatus, Signal, WorkPath};

/// The census: the uninterrupted run's own [`Outcome`], and what only a census records.
#[derive(Debug, Clone, PartialEq)]
pub struct Census {
    /// The run itself, observed as any case is (with no strike, nothing is struck).
    pub run: Outcome,
    /// For each strike signal the target came to catch, when its handler was first seen.
    pub handlers: BTreeMap<Signal, HandlerSeen>,
    /// The final content of each declared output (`None`: the run left it absent).
    pub golden: BTreeMap<WorkPath, Option<Golden>>,
    /// Every file in the outputs' directories after the run (sandbox-relative): files a
    /// case leaves beyond these are strays.
    pub files_after: BTreeSet<String>,
    /// What the tracer saw, when the scenario has syscall points: calls per class and
    /// path (the strike space), the process tree and the handlers installed.
    pub syscalls: Option<SyscallCensus>,
    /// The trapped events in order (up to the tracer's cap), to tell what a case did not
    /// do that the uninterrupted run did.
    pub events: Vec<Event>,
    /// How many probe marks of each name the run made: the probe strike space.
    pub mark_counts: BTreeMap<String, u64>,
    /// Why a scenario that would be traced ran untraced (ptrace refused here).
    pub untraced: Option<String>,
}

/// The census as reports write it: the run's status, duration, streams, survivors,
/// leftovers and resume beside the census's own records.
impl Serialize for Census {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            status: ExitStatus,
            #[serde(with = "crate::units::millis")]
            duration: Duration,
            handlers: &'a BTreeMap<Signal, HandlerSeen>,
            golden: &'a BTreeMap<WorkPath, Option<Golden>>,
            files_after: &'a BTreeSet<String>,
            leftovers: &'a [ProcessInfo],
            stdout: &'a Capture,
            stderr: &'a Capture,
            #[serde(skip_serializing_if = "Option::is_none")]
            survivors: &'a Option<SurvivorsRead>,
            #[serde(skip_serializing_if = "Option::is_none")]
            syscalls: &'a Option<SyscallCensus>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            mark_counts: &'a BTreeMap<String, u64>,
            #[serde(
                with = "crate::units::opt_millis",
                skip_serializing_if = "Option::is_none"
            )]
            ready_at: Option<Duration>,
            #[serde(skip_serializing_if = "Option::is_none")]
            stop: &'a Option<StopRecord>,
            #[serde(skip_serializing_if = "<[ClientRecord]>::is_empty")]
            clients: &'a [ClientRecord],
            #[serde(skip_serializing_if = "<[CheckRecord]>::is_empty")]
            checks: &'a [CheckRecord],
            #[serde(skip_serializing_if = "Option::is_none")]
            resume: &'a Option<ResumeRecord>,
            #[serde(skip_serializing_if = "Option::is_none")]
            untraced: &'a Option<String>,
        }
        View {
            status: self.run.status,
            duration: self.run.exited_at,
            handlers: &self.handlers,
            golden: &self.golden,
            files_after: &self.files_after,
            leftovers: &self.run.leftovers,
            stdout: &self.run.stdout,
            stderr: &self.run.stderr,
            survivors: &self.run.survivors,
            syscalls: &self.syscalls,
            mark_counts: &self.mark_counts,
            ready_at: self.run.ready_at,
            stop: &self.run.stop,
            clients: &self.run.clients,
            checks: &self.run.checks,
            resume: &self.run.resume,
            untraced: &self.untraced,
        }
        .serialize(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerSeen {
    #[serde(with = "crate::units::millis")]
    pub at: Duration,
}

/// An output's content after the census.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Golden {
    pub size: u64,
    pub sha256: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

impl Golden {
    pub fn new(bytes: Vec<u8>) -> Golden {
        Golden {
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            bytes,
        }
    }
}

impl Census {
    /// The census of a run that recorded nothing more: no golden, handlers or counts.
    pub fn of(run: Outcome) -> Census {
        Census {
            run,
            handlers: BTreeMap::new(),
            golden: BTreeMap::new(),
            files_after: BTreeSet::new(),
            syscalls: None,
            events: Vec::new(),
            mark_counts: BTreeMap::new(),
            untraced: None,
        }
    }

    /// When the uninterrupted run's main process exited.
    pub fn duration(&self) -> Duration {
        self.run.exited_at
    }

    /// The golden bytes of an output, if the census left one.
    pub fn golden_bytes(&self, path: &WorkPath) -> Option<&[u8]> {
        self.golden.get(path)?.as_ref().map(|g| g.bytes.as_slice())
    }

    /// The span in which strikes of `signal` land by default: from the moment its handler
    /// exists (or from spawn) to the census's exit, and never empty.
    pub fn default_span(&self, signal: Signal) -> Duration {
        let from = self.handlers.get(&signal).map(|h| h.at).unwrap_or_default();
        self.run
            .exited_at
            .saturating_sub(from)
            .max(Duration::from_millis(1))
    }
}
