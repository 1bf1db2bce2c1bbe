//! The report's data: what a campaign found for each scenario, named for the reader (its
//! file or test, what it checked), as the text and JSON reports show it.

use std::path::PathBuf;

use serde::Serialize;

use crate::campaign::{Coverage, Found};
use crate::census::Census;
use crate::expect::InvariantName;
use crate::invariants;
use crate::judged::{CaseSummary, JudgedCase, ScenarioResult, Warning};
use crate::scenario::Scenario;
use crate::shrink::ShrinkReport;

/// What a campaign found for one scenario.
#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub name: String,
    /// The command line of the file to rerun it, e.g. `scenarios/x.toml`.
    pub file: Option<PathBuf>,
    /// For a scenario built in a test rather than loaded from a file: that test, which
    /// reruns it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<TestId>,
    pub expected: Vec<InvariantName>,
    pub checked: Vec<InvariantName>,
    pub result: ScenarioResult,
    pub census: Option<Census>,
    pub cases_run: u64,
    pub cases_planned: u64,
    /// How many of the planned cases came from the regressions file.
    pub regressions_replayed: u64,
    pub coverage: Option<Coverage>,
    /// Every case run, in order.
    pub cases: Vec<CaseSummary>,
    /// The reported case: the simplest failing plan shrinking found.
    pub failure: Option<JudgedCase>,
    /// The other cases that failed, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_failed: Vec<CaseSummary>,
    /// How the reported failure was shrunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrink: Option<ShrinkReport>,
    /// With `case`: that case, judged, whatever its verdict (a reproduction shows it all;
    /// a failing one is also `failure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<JudgedCase>,
    /// Things the reader should know: a stale regression entry, a file not written.
    pub notes: Vec<String>,
    /// Advisory promises broken (`handler_io = "warn"`): the first case per invariant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

impl ScenarioReport {
    /// The report of `scenario` from what its campaign found: the one place a report is
    /// built.
    pub fn new(scenario: &Scenario, found: Found) -> ScenarioReport {
        ScenarioReport {
            scenario: scenario.label(),
            name: scenario.name.clone(),
            file: scenario.source.clone(),
            test: scenario.source.is_none().then(TestId::current).flatten(),
            expected: scenario.expect.violation.clone(),
            checked: invariants::checked(&scenario.expect, &scenario.invariants),
            result: found.result,
            census: found.census,
            cases_run: found.cases_run,
            cases_planned: found.cases_planned,
            regressions_replayed: found.regressions_replayed,
            coverage: found.coverage,
            cases: found.cases,
            failure: found.failure,
            also_failed: found.also_failed,
            shrink: found.shrink,
            case: found.case,
            notes: found.notes,
            warnings: found.warnings,
        }
    }

    /// The report of a scenario that could not even start: `result`, nothing run.
    pub fn unrun(scenario: &Scenario, result: ScenarioResult) -> ScenarioReport {
        ScenarioReport::new(scenario, Found::nothing(result))
    }
}

/// The test a scenario was built and run in: what `cargo nextest run` filters on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestId {
    /// nextest's binary id: `crate` for unit tests, `crate::name` for `tests/name.rs`.
    pub binary_id: String,
    /// The test's name within its binary: `module::test_fn`.
    pub name: String,
}

impl TestId {
    /// The test running on this thread: nextest says so in its environment; `cargo test`
    /// names each test's thread after it, and the test binary after its target.
    pub fn current() -> Option<TestId> {
        if let (Ok(binary_id), Ok(name)) = (
            std::env::var("NEXTEST_BINARY_ID"),
            std::env::var("NEXTEST_TEST_NAME"),
        ) {
            return Some(TestId { binary_id, name });
        }
        let name = std::thread::current().name()?.to_string();
        if name == "main" {
            return None;
        }
        let package = std::env::var("CARGO_PKG_NAME").ok()?;
        let exe = std::env::current_exe().ok()?;
        // `target/debug/deps/<target>-<hash>`.
        let stem = exe.file_stem()?.to_string_lossy();
        let target = stem.rsplit_once('-').map_or(&*stem, |(t, _)| t);
        let binary_id = if target == package.replace('-', "_") {
            package
        } else {
            format!("{package}::{target}")
        };
        Some(TestId { binary_id, name })
    }
}

/// A whole campaign, as written to `--json`.
#[derive(Debug, Serialize)]
pub struct CampaignReport {
    pub seed: u64,
    pub cases: Option<u32>,
    pub jobs: usize,
    pub scenarios: Vec<ScenarioReport>,
    pub interrupted: bool,
}
