//! The field suite's figures: every field bug found within 64 cases for each of the
//! master seeds 1 to 10 (the case that found it, per seed), and every correct field
//! behaviour holding for 500 cases (with the time it took).
//!
//! `cargo bench -p killpoint-e2e --bench field` prints one row per scenario of
//! `scenarios/field/`, and exits 1 if a bug was missed on any seed or a correct behaviour
//! failed. Environment: `KILLPOINT_FIELD_CASES` (cases for the correct ones, default 500),
//! `KILLPOINT_BENCH_JOBS` (cases at once, default 2), `KILLPOINT_FIELD_ONLY` (run only the
//! scenarios whose file name contains one of these comma-separated words). Failures are reported as found, not
//! shrunk; no regressions file is read or written.

use std::path::Path;
use std::time::Instant;

use killpoint::scenario::Scenario;
use killpoint::{Campaign, CampaignOptions, ScenarioResult};

const SEEDS: std::ops::RangeInclusive<u64> = 1..=10;
const BUG_CASES: u32 = 64;

fn options(seed: u64, cases: u32, jobs: usize) -> CampaignOptions {
    let mut options = CampaignOptions::new(seed);
    options.cases = Some(cases);
    options.jobs = jobs;
    options.shrink_iterations = Some(0);
    options.regressions = false;
    options
}

fn main() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let correct_cases = env("KILLPOINT_FIELD_CASES", 500) as u32;
    let jobs = env("KILLPOINT_BENCH_JOBS", 2) as usize;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/field");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/field")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| match std::env::var("KILLPOINT_FIELD_ONLY") {
            Ok(only) => {
                let name = p.file_name().unwrap().to_string_lossy();
                only.split(',').any(|word| name.contains(word.trim()))
            }
            Err(_) => true,
        })
        .collect();
    files.sort();
    let mut bad = 0;
    println!(
        "field suite: bugs over seeds 1-10 ({BUG_CASES} cases each), correct behaviours over {correct_cases} cases, {jobs} job(s)"
    );
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let scenario = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        if let Some((program, package)) = scenario.missing_programs().first() {
            println!("{name:<36} skipped: {program} is not installed (apt-get install {package})");
            continue;
        }
        let started = Instant::now();
        if scenario.expect.violation.is_empty() {
            let report = Campaign::new(options(1, correct_cases, jobs)).run_scenario(&scenario);
            let held = report.result == ScenarioResult::Passed;
            bad += !held as u32;
            println!(
                "{name:<36} holds: {} of {} cases, {:.1} s{}",
                report.cases_run,
                report.cases_planned,
                started.elapsed().as_secs_f64(),
                if held {
                    String::new()
                } else {
                    format!(" — FAILED: {:?}", report.result)
                }
            );
            if !held {
                println!("{}", killpoint::report::scenario_text(&report));
            }
            continue;
        }
        let mut found = Vec::new();
        for seed in SEEDS {
            let report = Campaign::new(options(seed, BUG_CASES, jobs)).run_scenario(&scenario);
            match (&report.result, &report.failure) {
                (ScenarioResult::CaughtAsExpected, Some(failure)) => {
                    found.push(failure.case_index + 1)
                }
                _ => {
                    bad += 1;
                    println!("{name:<36} seed {seed}: {:?}", report.result);
                    println!("{}", killpoint::report::scenario_text(&report));
                }
            }
        }
        let listed: Vec<String> = found.iter().map(u64::to_string).collect();
        let mean = found.iter().sum::<u64>() as f64 / found.len().max(1) as f64;
        println!(
            "{name:<36} caught on {}/10 seeds at case {} (mean {mean:.1}, max {}), {:.1} s",
            found.len(),
            listed.join(","),
            found.iter().max().unwrap_or(&0),
            started.elapsed().as_secs_f64()
        );
    }
    if bad > 0 {
        println!("{bad} failure(s)");
        std::process::exit(1);
    }
}
