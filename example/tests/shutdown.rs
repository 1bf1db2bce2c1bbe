//! The report writer's shutdown promises, checked the way a user of killpoint checks
//! their own tool: a scenario built next to the binary, through the public API only.

use std::path::Path;
use std::process::Command;

use killpoint::{Expect, InvariantName, Scenario, ScenarioResult, Signal, Strike, SyscallClass};

/// The report writer, struck at any write to its report (or the temp file beside it) by
/// SIGTERM, SIGINT or SIGKILL: the report is never torn, and a stop exits 14.
fn report_writer(extra: &[&str]) -> Scenario {
    Scenario::command(env!("CARGO_BIN_EXE_report-writer"))
        .name("report-writer")
        .arg("--output")
        .arg_work("report.json")
        .args(extra.iter().copied())
        .strike(
            Strike::syscall(SyscallClass::Write)
                .path("report.json*")
                .signals([Signal::SIGTERM, Signal::SIGINT, Signal::SIGKILL]),
        )
        .expect(Expect::atomic_output("report.json"))
        .expect(Expect::exit_codes().clean([0]).interrupted([14]))
        .cases(64)
}

#[test]
fn the_report_writer_keeps_its_promises() {
    report_writer(&[]).check();
}

/// `check()` on the in-place writer fails with the whole report, and its rerun line,
/// run as it is printed, makes the same failing case again.
#[test]
fn the_inplace_writer_is_caught_with_a_rerun_line_that_reproduces_it() {
    let caught = std::panic::catch_unwind(|| report_writer(&["--inplace"]).check())
        .expect_err("check() fails on the in-place writer");
    let message = caught
        .downcast_ref::<String>()
        .expect("the panic carries the report");
    assert!(message.contains("VIOLATED: atomic-output"), "{message}");
    assert!(
        message.contains("report.json partial") || message.contains("report.json is empty"),
        "the evidence names the torn report: {message}"
    );
    let plan = line_after(message, "plan: ");
    let rerun = line_after(message, "rerun: ");
    assert!(
        rerun.starts_with("KILLPOINT_SEED=")
            && rerun.ends_with(
                "cargo nextest run --workspace -E 'binary_id(killpoint-example::shutdown) & test(=the_inplace_writer_is_caught_with_a_rerun_line_that_reproduces_it)'"
            ),
        "{rerun}"
    );
    // The rerun runs this very test with KILLPOINT_SEED set: it stops here, having caught
    // the bug, and its output shows which case it ran.
    if std::env::var_os("KILLPOINT_SEED").is_some() {
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // Where the rerun leaves its JSON report, as a CI job would collect it.
    let reports = std::env::temp_dir().join(format!("killpoint-example-{}", std::process::id()));
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{rerun} --no-capture"))
        .env("KILLPOINT_REPORT_DIR", &reports)
        .current_dir(workspace);
    // The outer test run's own settings (profile, JUnit path) are not the rerun's.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NEXTEST") {
            command.env_remove(key);
        }
    }
    let out = command.output().expect("run the rerun line");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The one case named runs first, and fails as it did: same invariant, same plan.
    assert!(
        stdout.contains("VIOLATED: atomic-output at case 1 "),
        "{stdout}\n{stderr}"
    );
    assert_eq!(line_after(&stdout, "plan: "), plan, "{stdout}");
    let saved: Vec<_> = std::fs::read_dir(&reports)
        .expect("the report directory")
        .map(|e| e.unwrap().path())
        .collect();
    let json = std::fs::read_to_string(&saved[0]).unwrap();
    std::fs::remove_dir_all(&reports).unwrap();
    let name = saved[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(
        name.starts_with("killpoint-example__shutdown__the_inplace_writer_is_caught_with_a_rerun_line_that_reproduces_it.seed-")
            && name.ends_with(".json"),
        "{name}"
    );
    assert!(json.contains(r#""result": "violated""#), "{json}");
}

/// The same bug, declared: a scenario that expects `atomic-output` to break passes when
/// it does (a regression test that the tool still has the bug it is known to have, or a
/// check that killpoint still sees it).
#[test]
fn the_inplace_writer_declared_as_a_planted_bug_passes_when_caught() {
    let report = report_writer(&["--inplace"])
        .expect(Expect::violation(InvariantName::AtomicOutput))
        .run();
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected);
    let failure = report.failure.expect("the failing case");
    assert_eq!(failure.violations[0].0, InvariantName::AtomicOutput);
}

/// The plans in a proptest runner of one's own: the in-place writer fails, and proptest's
/// shrinking brings the failure down to the plainest signal at the first write.
#[test]
fn the_plan_strategy_composes_with_a_proptest_runner_of_ones_own() {
    use killpoint::proptest::test_runner::{
        Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
    };
    let cases = report_writer(&["--inplace"]).prepare().expect("the census");
    let config = Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&cases.plans(), |plan| {
        let case = cases.run(&plan).map_err(TestCaseError::fail)?;
        if case.held() {
            Ok(())
        } else {
            Err(TestCaseError::fail(cases.text(&case)))
        }
    });
    let Err(TestError::Fail(reason, minimal)) = result else {
        panic!("the in-place writer passed: {result:?}");
    };
    assert_eq!(
        minimal.to_string(),
        "SIGTERM at the entry of write #1 to report.json*",
        "{reason}"
    );
    assert!(reason.message().contains("atomic-output"), "{reason}");
}

fn line_after<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"))
}
