//! Snapshots of reports, human and JSON, for the report kinds users read most: an
//! atomic-output violation, an exit-code violation, a drain overrun with its timeline, and
//! a clean pass. A change to what a report says, or how, shows up as a snapshot diff in
//! review. What varies from run to run (pids, durations, temp paths, random seeds) is
//! redacted first, so the snapshots hold on any machine.
//!
//! Update them with `cargo insta review` (or `INSTA_UPDATE=always`), after checking the
//! diff is what you meant; CI runs with `INSTA_UPDATE=no`, so a stale snapshot fails.

use std::sync::LazyLock;
use std::time::Duration;

use killpoint::scenario::Arg;
use killpoint::{Campaign, CampaignOptions, ScenarioReport};
use killpoint::{Scenario, Signal, Strike, SyscallClass};
use regex::Regex;
use serde_json::Value;

/// A bundled scenario, by its path from the workspace root (the tests' directory), as
/// reports name it.
fn scenario(name: &str) -> Scenario {
    Scenario::load(format!("scenarios/{name}.toml").as_ref()).unwrap_or_else(|e| panic!("{e}"))
}

/// A campaign of fixed seed and size, one target at a time, reported as found.
fn run(scenario: &Scenario, cases: u32) -> ScenarioReport {
    let mut options = CampaignOptions::new(11);
    options.jobs = 1;
    options.cases = Some(cases);
    options.regressions = false;
    options.shrink_iterations = Some(0);
    Campaign::new(options).run_scenario(scenario)
}

/// What varies between runs of the same case, and what stands in for it.
static REDACTIONS: LazyLock<Vec<(Regex, &str)>> = LazyLock::new(|| {
    [
        // A case's sandbox: a fresh temp directory.
        (r"/[\w./-]*/killpoint-\w+", "[sandbox]"),
        // Where cargo put the targets.
        (r"(?:/[\w.+-]+)+/(atomic-writer|supervisor)\b", "[bin]/$1"),
        (r"\bpid \d+", "pid [pid]"),
        // Temp files named after the writer's pid.
        (r"\.tmp-\d+", ".tmp-[pid]"),
        // Measured times; a plan's delays, drawn from the seed, have three decimals.
        (r"\b\d+\.\d ms\b", "[ms]"),
    ]
    .into_iter()
    .map(|(pattern, with)| (Regex::new(pattern).unwrap(), with))
    .collect()
});

fn redact(text: &str) -> String {
    REDACTIONS
        .iter()
        .fold(text.to_string(), |text, (pattern, with)| {
            pattern.replace_all(&text, *with).into_owned()
        })
}

/// The JSON report with its measured times (the fractional milliseconds) and pids
/// replaced, then its strings redacted as the text is.
fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if matches!(key.as_str(), "pid" | "parent" | "tid") && v.is_number() {
                    *v = Value::from("[pid]");
                } else {
                    redact_json(v);
                }
            }
        }
        Value::Array(all) => all.iter_mut().for_each(redact_json),
        Value::Number(n) if n.is_f64() => *value = Value::from("[ms]"),
        Value::String(s) => *s = redact(s),
        _ => {}
    }
}

/// Compares with (or, under `INSTA_UPDATE`, writes) `snapshots/NAME.snap`.
fn assert_snapshot(name: &str, contents: String) {
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, contents);
    });
}

fn snapshot_text(name: &str, report: &ScenarioReport) {
    assert_snapshot(name, redact(&killpoint::report::scenario_text(report)));
}

fn snapshot_json(name: &str, report: &ScenarioReport) {
    let mut json = serde_json::to_value(report).unwrap();
    redact_json(&mut json);
    assert_snapshot(
        &format!("{name}.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    );
}

/// The in-place writer, struck at its first writes: the truncated output as evidence.
#[test]
fn atomic_output_violation() {
    let mut scenario = scenario("atomic-writer-inplace-syscalls");
    scenario.expect.violation.clear();
    let report = run(&scenario, 16);
    snapshot_text("atomic-output-violation", &report);
    snapshot_json("atomic-output-violation", &report);
}

/// A writer that exits 0 when cancelled, struck at its first writes: the documented
/// status beside the one it gave, and why 0 is wrong.
#[test]
fn exit_code_violation() {
    let mut scenario = scenario("atomic-writer-exit0");
    scenario.expect.violation.clear();
    scenario.strikes = vec![
        Strike::syscall(SyscallClass::Write)
            .path(".out.json.tmp-*")
            .nth(1..=4)
            .signal(Signal::SIGTERM),
    ];
    let report = run(&scenario, 16);
    snapshot_text("exit-code-violation", &report);
    snapshot_json("exit-code-violation", &report);
}

/// A supervisor that stops its three children one after another, each draining 300 ms,
/// against a 750 ms deadline: the timeline shows the drains stacking. The margins (the
/// second child is gone 150 ms before the deadline, the third would be 150 ms after it)
/// keep the timeline's shape the same on a busy machine.
#[test]
fn drain_overrun_with_timeline() {
    let mut scenario = scenario("supervisor-stacked");
    scenario.expect.violation.clear();
    for arg in &mut scenario.command {
        if arg.raw == "200ms" {
            *arg = Arg::text("300ms");
        }
    }
    scenario.expect.deadline = Some(Duration::from_millis(750));
    scenario.strikes = vec![Strike::after(Duration::from_millis(300)).signal(Signal::SIGTERM)];
    snapshot_text("drain-overrun-with-timeline", &run(&scenario, 1));
}

/// The correct writer, struck at its writes, syncs and renames: the pass summary with
/// what was checked and the coverage.
#[test]
fn clean_pass_summary() {
    let report = run(&scenario("atomic-writer-syscalls"), 16);
    snapshot_text("clean-pass-summary", &report);
    snapshot_json("clean-pass-summary", &report);
}
