//! killpoint: a property-based, fault-injection test harness for shutdown correctness.
//!
//! A [`Scenario`] says what to run, which strikes may hit it and what must hold. A
//! campaign runs the uninterrupted [`Census`], then many cases, each under a [`Plan`]
//! generated from a seed; the OS layer turns each case into an [`Outcome`], and the
//! [`invariants`] judge it. `docs/DESIGN.md` in the repository follows one case through the code, file by file.

mod api;
pub mod campaign;
pub(crate) mod case;
pub mod census;
pub mod client;
pub mod draft;
pub(crate) mod expect;
pub mod history;
pub mod invariants;
pub mod judged;
pub(crate) mod os;
pub mod outcome;
pub mod plan;
pub mod power;
pub mod regressions;
pub mod report;
pub mod scenario;
pub mod server;
pub mod setup;
pub(crate) mod shrink;
pub(crate) mod space;
pub(crate) mod strike;
pub(crate) mod survivors;
pub mod syscalls;
pub(crate) mod targets;
pub mod trace;
pub(crate) mod units;
pub(crate) mod values;

pub use api::{Cases, DEFAULT_SEED};
pub use campaign::{Campaign, CampaignOptions};
pub use census::Census;
pub use invariants::{Context, Invariant, InvariantName, Verdict};
pub use judged::{JudgedCase, ScenarioResult};
pub use outcome::Outcome;
pub use plan::Plan;
/// The proptest that [`Cases::plans`] is a strategy of, for `proptest!` blocks.
pub use proptest;
pub use report::ScenarioReport;
pub use scenario::{
    ExitCodes, Expect, Expectation, Nth, Scenario, ScenarioError, Severity, Signal, Strike,
};
pub use syscalls::{SyscallClass, When};

/// killpoint's own interruption: a program that runs campaigns installs the handler once;
/// SIGINT or SIGTERM then stops every case cleanly (its process tree killed, its sandbox
/// removed) instead of killing the program.
pub mod interrupt {
    pub use crate::os::interrupt::{install, requested};
}

/// The built-in load clients (`client::HttpClientSpec`, `client::TcpClientSpec`) run
/// against a server on loopback, each request recorded in a `history::History`.
pub mod load {
    pub use crate::os::client::{Running, SentCount, Stop, run, run_http, run_tcp, start};
}
