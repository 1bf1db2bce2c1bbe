//! killpoint: a property-based, fault-injection test harness for shutdown correctness.
//!
//! A [`Scenario`] says what to run, which strikes may hit it and what must hold. A
//! campaign runs the uninterrupted [`Census`], then many cases, each under a [`Plan`]
//! generated from a seed; the OS layer turns each case into an [`Outcome`], and the
//! [`invariants`] judge it. See `DESIGN.md` in the repository for the whole picture.

pub mod campaign;
pub mod census;
pub mod check;
pub mod invariants;
pub mod os;
pub mod outcome;
pub mod plan;
pub mod regressions;
pub mod report;
pub mod resume;
pub mod scenario;
pub mod shrink;
pub mod survivors;
pub mod syscalls;
pub mod targets;
pub mod trace;

pub use campaign::{Campaign, CampaignOptions, ScenarioReport, ScenarioResult};
pub use census::Census;
pub use check::{CaseReport, Cases};
pub use invariants::{InvariantName, Verdict};
pub use outcome::Outcome;
pub use plan::Plan;
/// The proptest that [`Cases::plans`] is a strategy of, for `proptest!` blocks.
pub use proptest;
pub use scenario::{
    ExitCodes, Expect, Expectation, Nth, Scenario, ScenarioError, Severity, Signal,
    StrikeSpec as Strike,
};
pub use syscalls::{SyscallClass, When};
