//! The bundled scenarios (the target zoo), one test per file, named after its path from
//! the workspace root (`scenarios/atomic-writer.toml`), so that nextest can filter
//! (`-E 'test(atomic)'`), run in parallel and partition (`--partition hash:1/4`) them: every
//! correct scenario holds for its default number of cases, and every planted bug is
//! caught, with an invariant its file declares, within that budget for each of five
//! master seeds (no lucky seed).
//!
//! `KILLPOINT_SEED` sets the one master seed to use (default: fixed ones, so CI is
//! repeatable), or names a case to run first, as a failure report prints it:
//! `KILLPOINT_SEED=<case> cargo nextest run -E 'test(=scenarios/<file>.toml)'`. `KILLPOINT_CASES`
//! sets the number of new cases per campaign (default: the scenario's `cases`, else 64).
//! `KILLPOINT_REPORT_DIR` names a directory to leave each campaign's JSON report in.
//!
//! The field suite (`scenarios/field/`) runs real programs from Debian packages: a planted
//! bug there is a real program's bug, and must be caught within 64 cases for each of the
//! master seeds 1 to 10. A field scenario whose `[requires]` programs are not installed is
//! skipped — listed as `[missing PROGRAM: apt-get install PACKAGE] scenarios/field/…` and
//! counted as skipped, never as passed (`.ci/run` installs them).

use std::path::{Path, PathBuf};

use killpoint::scenario::Scenario;
use killpoint::{Campaign, CampaignOptions, ScenarioResult};
use libtest_mimic::{Arguments, Failed, Trial};

/// The master seeds when `KILLPOINT_SEED` is not set: the first for correct scenarios,
/// all five for planted bugs.
const DEFAULT_SEEDS: [u64; 5] = [11, 12, 13, 14, 15];

/// The master seeds of the field suite's bugs: a real program's bug is found by any seed.
const FIELD_SEEDS: [u64; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/// The most cases a field bug may take to be found, per seed.
const FIELD_CASES: u32 = 64;

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    scenario_files(&root.join("scenarios"), &mut files);
    files.sort();
    let trials = files
        .into_iter()
        .map(|file| {
            let name = file
                .strip_prefix(root)
                .expect("under the workspace root")
                .display()
                .to_string();
            let scenario = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
            let field = name.starts_with("scenarios/field/");
            let missing = scenario.missing_programs();
            if missing.is_empty() {
                return Trial::test(name, move || check(&scenario, field));
            }
            // Not installed here: skipped, with what to install in its listed name; run
            // anyway (`--run-ignored`), it fails saying so.
            let install: Vec<String> = missing
                .iter()
                .map(|(program, package)| format!("missing {program}: apt-get install {package}"))
                .collect();
            let why = install.join(", ");
            Trial::test(name, move || Err(why.into()))
                .with_kind(install.join(", "))
                .with_ignored_flag(true)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// Every scenario file under `dir` (`**/*.toml`), leaving out cargo's manifests and build
/// directories.
fn scenario_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("the scenarios directory")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("target") {
                scenario_files(&path, found);
            }
        } else if path.extension().is_some_and(|x| x == "toml") && !path.ends_with("Cargo.toml") {
            found.push(path);
        }
    }
}

/// The campaigns to run: one per master seed.
fn campaigns(scenario: &Scenario, field: bool) -> Result<Vec<CampaignOptions>, Failed> {
    let all: &[u64] = if field { &FIELD_SEEDS } else { &DEFAULT_SEEDS };
    let seeds: &[u64] =
        if std::env::var_os("KILLPOINT_SEED").is_some() || scenario.expect.violation.is_empty() {
            &all[..1]
        } else {
            all
        };
    let mut runs = Vec::new();
    for (i, &seed) in seeds.iter().enumerate() {
        let mut options = CampaignOptions::from_env(seed).map_err(Failed::from)?;
        // One target at a time per test: nextest runs two tests at once on two cores, and
        // the drain deadlines must not measure an oversubscribed machine.
        options.jobs = 1;
        // A planted bug is shrunk once; the other seeds show that it is found.
        if i > 0 {
            options.shrink_iterations = Some(0);
        }
        runs.push(options);
    }
    Ok(runs)
}

fn check(scenario: &Scenario, field: bool) -> Result<(), Failed> {
    let expected = if scenario.expect.violation.is_empty() {
        ScenarioResult::Passed
    } else {
        ScenarioResult::CaughtAsExpected
    };
    for mut options in campaigns(scenario, field)? {
        if field && !scenario.expect.violation.is_empty() && options.cases.is_none() {
            options.cases = Some(FIELD_CASES);
        }
        let seed = options.seed;
        let report = Campaign::new(options).run_scenario(scenario);
        if let Some(Err(e)) = killpoint::report::save_in_report_dir(&report, seed) {
            return Err(format!("cannot write the JSON report: {e}").into());
        }
        let text = killpoint::report::scenario_text(&report);
        // The report, with the seed and the rerun commands, is in the test's output (and
        // so in nextest's JUnit file) whether it passes or not.
        println!("seed {seed}\n{text}");
        if report.result != expected {
            return Err(format!(
                "expected {expected:?}, got {:?} (seed {seed})\n{text}",
                report.result
            )
            .into());
        }
        if let Some(failure) = &report.failure {
            let names: Vec<_> = failure.violations.iter().map(|(n, _)| n.clone()).collect();
            if names.is_empty() || !names.iter().all(|n| scenario.expect.violation.contains(n)) {
                return Err(format!(
                    "caught with {names:?}, not {:?} (seed {seed})\n{text}",
                    scenario.expect.violation
                )
                .into());
            }
        }
    }
    Ok(())
}
