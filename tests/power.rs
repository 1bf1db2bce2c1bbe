//! Power loss, end to end: the zoo's durability bugs pass every SIGKILL — the page cache
//! keeps what they wrote — and are caught by a power strike at the same points, with the
//! lost operations in the evidence; the correct writer holds under both.

use std::path::Path;

use killpoint::invariants::InvariantName;
use killpoint::plan::Point;
use killpoint::scenario::{PointSpec, Scenario, Signal, SignalSet};
use killpoint::{Campaign, CampaignOptions, ScenarioReport, ScenarioResult};

fn scenario(name: &str) -> Scenario {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn run(scenario: &Scenario) -> ScenarioReport {
    let mut options = CampaignOptions::new(11);
    options.shrink_iterations = Some(0);
    Campaign::new(options).run_scenario(scenario)
}

/// The same scenario with SIGKILL where it has POWER (and no point after the exit, which
/// only a power loss has), declaring no bug.
fn killed_instead(mut scenario: Scenario) -> Scenario {
    scenario.strikes.retain(|s| s.at != PointSpec::AfterExit);
    for strike in &mut scenario.strikes {
        strike.power = false;
        strike.signal = SignalSet(vec![Signal::SIGKILL]);
    }
    scenario.expect.violation.clear();
    scenario
}

/// The evidence of `invariant` in the caught case, one string.
fn evidence(report: &ScenarioReport, invariant: InvariantName) -> String {
    let text = killpoint::report::scenario_text(report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{text}");
    let failure = report.failure.as_ref().expect("a failing case");
    assert_eq!(
        failure.plan.strikes[0].point,
        Point::AfterExit,
        "only after the exit: {text}"
    );
    failure
        .violations
        .iter()
        .find(|(n, _)| *n == invariant)
        .unwrap_or_else(|| panic!("{invariant} not among the violations:\n{text}"))
        .1
        .join("\n")
}

#[test]
fn a_rename_of_an_unsynced_file_survives_every_kill_and_comes_back_empty_after_a_power_loss() {
    let bug = scenario("atomic-writer-no-fsync");
    let report = run(&killed_instead(bug.clone()));
    let text = killpoint::report::scenario_text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{text}");
    assert!(text.contains("(exhaustive)"), "every kill point: {text}");

    let report = run(&bug);
    let durable = evidence(&report, InvariantName::DurableOutput);
    let lines: Vec<&str> = durable.lines().collect();
    assert!(
        lines[0].starts_with(
            "out.json is incomplete (0 bytes) after a power loss after the run, once the target had exit 0 at "
        ),
        "{durable}"
    );
    assert!(
        lines[1].starts_with(
            "lost with the power: 16 writes of 262144 byte(s) in all, from offset 0, to .out.json.tmp-"
        ) && lines[1].ends_with(
            " (renamed out.json): not durable, the file was not fsynced after them"
        ),
        "{durable}"
    );
    let atomic = evidence(&report, InvariantName::AtomicOutput);
    assert!(
        atomic.starts_with("out.json is empty: truncated to 0 of the complete 262144 bytes"),
        "{atomic}"
    );
}

#[test]
fn a_rename_whose_directory_is_never_fsynced_survives_every_kill_and_is_lost_with_the_power() {
    let bug = scenario("atomic-writer-no-dir-fsync");
    let report = run(&killed_instead(bug.clone()));
    let text = killpoint::report::scenario_text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{text}");

    let report = run(&bug);
    let durable = evidence(&report, InvariantName::DurableOutput);
    let lines: Vec<&str> = durable.lines().collect();
    assert!(
        lines[0]
            .starts_with("out.json is back to its prior content after a power loss after the run"),
        "{durable}"
    );
    let temp = lines[1]
        .strip_prefix("lost with the power: creation of ")
        .and_then(|rest| rest.strip_suffix(": not durable, directory . was not fsynced after it"))
        .unwrap_or_else(|| panic!("{durable}"));
    assert!(temp.starts_with(".out.json.tmp-"), "{durable}");
    assert_eq!(
        lines[2],
        format!(
            "lost with the power: rename of {temp} → out.json: not durable, directory . was not fsynced after it"
        )
    );
    assert_eq!(
        lines.len(),
        3,
        "the data was synced: only the names are lost"
    );
}

#[test]
fn the_correct_writer_is_durable_at_every_power_loss() {
    let report = run(&scenario("atomic-writer-power"));
    let text = killpoint::report::scenario_text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{text}");
    assert!(text.contains("durable-output"), "judged: {text}");
    // Every write, the rename and after the exit: 16 + 1 + 1 points.
    assert!(text.contains("tried 18/18 points (exhaustive)"), "{text}");
}
