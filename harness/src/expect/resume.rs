//! `[expect.resume]`: the command that picks up interrupted work, and what it must achieve.

use serde::{Deserialize, Serialize};

use super::acked::Reports;
use super::values::{Arg, WorkPath};

/// `[expect.resume]`: after every case, `command` runs in the case's sandbox. It must end
/// as a clean run does, with the outputs the uninterrupted run left (`resume-completes`),
/// and must not do again a unit of work the case reported done (`no-duplicate-work`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeSpec {
    /// The resume command, with the same placeholders as `command`.
    pub command: Vec<Arg>,
    /// Where the target reports a unit of work done (a stdout pattern or probe marks);
    /// default: `[expect.acked] ack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Reports>,
    /// Files that must hold the uninterrupted run's content after the resume; default:
    /// `[expect] outputs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<WorkPath>>,
}
