//! The bundled scenarios, one test each, named after the scenario: every correct scenario
//! holds and every planted bug is caught with the invariant its file declares.
//!
//! `KILLPOINT_SEED` sets the master seed (default: a fixed one, so CI is repeatable), or
//! names a case to run first, as a failure report prints it:
//! `KILLPOINT_SEED=<case> cargo nextest run -E 'test(=<scenario>)'`. `KILLPOINT_CASES`
//! sets the number of new cases per scenario (default 32).

use std::path::Path;

use killpoint::campaign::{Campaign, CampaignOptions, ScenarioResult};
use killpoint::plan::CaseId;
use killpoint::scenario::Scenario;
use libtest_mimic::{Arguments, Failed, Trial};

/// The master seed when `KILLPOINT_SEED` is not set.
const DEFAULT_SEED: u64 = 11;
const DEFAULT_CASES: u32 = 32;

fn main() {
    let args = Arguments::from_args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the scenarios directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.ends_with("Cargo.toml"))
        .collect();
    files.sort();
    let trials = files
        .into_iter()
        .map(|file| {
            let scenario = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
            Trial::test(scenario.name.clone(), move || check(&scenario))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn options() -> Result<CampaignOptions, Failed> {
    let mut options = CampaignOptions::new(DEFAULT_SEED);
    if let Ok(text) = std::env::var("KILLPOINT_SEED") {
        let id: CaseId = text.parse().map_err(|e: String| Failed::from(e))?;
        match id {
            CaseId::Seeded { seed, moves } if moves.0.is_empty() => options.seed = seed,
            CaseId::Seeded { seed, .. } => {
                options.seed = seed;
                options.first = Some(id);
            }
            CaseId::Point(_) => options.first = Some(id),
        }
    }
    options.cases = Some(match std::env::var("KILLPOINT_CASES") {
        Ok(n) => n
            .parse()
            .map_err(|_| Failed::from(format!("KILLPOINT_CASES=`{n}` is not a number")))?,
        Err(_) => DEFAULT_CASES,
    });
    options.jobs = 2;
    Ok(options)
}

fn check(scenario: &Scenario) -> Result<(), Failed> {
    let options = options()?;
    let seed = options.seed;
    let report = Campaign::new(options).run_scenario(scenario);
    let text = killpoint::report::scenario_text(&report);
    // The report, with the seed and the rerun commands, is in the test's output (and so
    // in nextest's JUnit file) whether it passes or not.
    println!("seed {seed}\n{text}");
    let expected = if scenario.expect.violation.is_empty() {
        ScenarioResult::Passed
    } else {
        ScenarioResult::CaughtAsExpected
    };
    if report.result != expected {
        return Err(format!(
            "expected {expected:?}, got {:?} (seed {seed})\n{text}",
            report.result
        )
        .into());
    }
    if let Some(failure) = &report.failure {
        let names: Vec<_> = failure.violations.iter().map(|(n, _)| *n).collect();
        if names != scenario.expect.violation {
            return Err(format!(
                "caught with {names:?}, not {:?}\n{text}",
                scenario.expect.violation
            )
            .into());
        }
    }
    Ok(())
}
