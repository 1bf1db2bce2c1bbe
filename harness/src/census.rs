//! The Census: the uninterrupted reference run of a scenario.
//!
//! Its exit status and duration say what a clean run looks like, its final outputs are the
//! golden every case is compared with, and the moments it installed its signal handlers
//! tell the planner where strikes can land.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outcome::{Capture, Mark, ProcessInfo, ResumeRecord, sha256_hex};
use crate::scenario::{ExitStatus, Signal, WorkPath};
use crate::survivors::SurvivorsRead;
use crate::syscalls::{Event, SyscallCensus};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Census {
    pub status: ExitStatus,
    /// From spawn to the main process's exit.
    #[serde(with = "crate::report::millis")]
    pub duration: Duration,
    /// For each strike signal the target came to catch, when its handler was first seen.
    pub handlers: BTreeMap<Signal, HandlerSeen>,
    /// The final content of each declared output (`None`: the run left it absent).
    pub golden: BTreeMap<WorkPath, Option<Golden>>,
    /// Every file in the outputs' directories after the run (sandbox-relative): files a
    /// case leaves beyond these are strays.
    pub files_after: BTreeSet<String>,
    pub leftovers: Vec<ProcessInfo>,
    pub stdout: Capture,
    pub stderr: Capture,
    /// What survived, when the scenario declares `[expect.acked]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survivors: Option<SurvivorsRead>,
    /// What the tracer saw, when the scenario has syscall points: calls per class and
    /// path (the strike space), the process tree and the handlers installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<SyscallCensus>,
    /// The trapped events in order (up to the tracer's cap), to tell what a case did not
    /// do that the uninterrupted run did.
    #[serde(skip)]
    pub events: Vec<Event>,
    /// The files `[[expect.once]]` markers are counted in, as text.
    #[serde(skip)]
    pub marker_files: BTreeMap<WorkPath, Option<String>>,
    /// How many probe marks of each name the run made: the probe strike space.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mark_counts: BTreeMap<String, u64>,
    /// The probe marks themselves, in order (acknowledgements made as marks).
    #[serde(skip)]
    pub marks: Vec<Mark>,
    /// The resume command run after the census (`[expect.resume]`): it must find nothing
    /// to do, and leave the outputs as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeRecord>,
    /// Why a scenario that would be traced ran untraced (ptrace refused here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untraced: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerSeen {
    #[serde(with = "crate::report::millis")]
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
    /// The golden bytes of an output, if the census left one.
    pub fn golden_bytes(&self, path: &WorkPath) -> Option<&[u8]> {
        self.golden.get(path)?.as_ref().map(|g| g.bytes.as_slice())
    }

    /// The span in which strikes of `signal` land by default: from the moment its handler
    /// exists (or from spawn) to the census's exit, and never empty.
    pub fn default_span(&self, signal: Signal) -> Duration {
        let from = self.handlers.get(&signal).map(|h| h.at).unwrap_or_default();
        self.duration
            .saturating_sub(from)
            .max(Duration::from_millis(1))
    }
}
