//! The bundled scenarios through the library API: every correct scenario holds and every
//! planted bug is caught with the invariant its file declares.

use std::path::Path;

use killpoint::campaign::{Campaign, CampaignOptions, ScenarioResult};
use killpoint::scenario::Scenario;

#[test]
fn every_bundled_scenario_meets_its_expectation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.ends_with("Cargo.toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "the bundled scenarios: {files:?}");
    for seed in [11, 12] {
        let campaign = Campaign::new(CampaignOptions {
            cases: Some(32),
            seed,
            jobs: 2,
            case: None,
        });
        for file in &files {
            let scenario = Scenario::load(file).unwrap();
            let report = campaign.run_scenario(&scenario);
            let expected = if scenario.expect.violation.is_empty() {
                ScenarioResult::Passed
            } else {
                ScenarioResult::CaughtAsExpected
            };
            assert_eq!(
                report.result,
                expected,
                "{}: {}",
                file.display(),
                killpoint::report::scenario_text(&report)
            );
            if let Some(failure) = &report.failure {
                let names: Vec<_> = failure.violations.iter().map(|(n, _)| *n).collect();
                assert_eq!(names, scenario.expect.violation, "{}", file.display());
            }
        }
    }
}
