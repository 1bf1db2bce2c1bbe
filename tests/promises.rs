//! Each promise caught breaking on the bug it is for, with the evidence a user acts on,
//! and holding on the correct target: a stacking supervisor (drain-deadline, with the
//! timeline showing the stacked drains), a supervisor that does not forward
//! (signal-forwarded), a teardown that runs twice (idempotent-teardown), a checkpoint saved
//! without `finally` (acked-survives), a handler that writes (handler-no-io), and Python's
//! reentrant print (no-crash-output). The bundled scenario files are the inputs; the
//! campaign test runs all of them, these assert what their reports say.

use std::path::Path;

use killpoint::campaign::{Campaign, CampaignOptions, Failure, ScenarioReport, ScenarioResult};
use killpoint::invariants::InvariantName;
use killpoint::scenario::{ExitStatus, Scenario, Signal};

fn scenario(name: &str) -> Scenario {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

/// One campaign, one target at a time, the failure reported as found (not shrunk).
fn run(scenario: &Scenario) -> ScenarioReport {
    let mut options = CampaignOptions::new(11);
    options.jobs = 1;
    options.shrink_iterations = Some(0);
    Campaign::new(options).run_scenario(scenario)
}

/// The evidence of `invariant` in the caught bug's failing case.
fn caught(report: &ScenarioReport, invariant: InvariantName) -> (&Failure, String) {
    let text = killpoint::report::scenario_text(report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{text}");
    let failure = report.failure.as_ref().expect("a failing case");
    let evidence = failure
        .violations
        .iter()
        .find(|(n, _)| *n == invariant)
        .unwrap_or_else(|| panic!("{invariant} not among the violations:\n{text}"))
        .1
        .join("\n");
    (failure, evidence)
}

fn passes(name: &str) {
    let report = run(&scenario(name));
    let text = killpoint::report::scenario_text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{text}");
}

#[test]
fn a_stacking_supervisor_overruns_and_its_timeline_shows_the_drains_one_after_another() {
    let report = run(&scenario("supervisor-stacked"));
    let (failure, evidence) = caught(&report, InvariantName::DrainDeadline);
    assert!(evidence.contains("timeline from the strike"), "{evidence}");
    // Each child is told to stop only once the one before it has gone.
    let main = failure.outcome.processes[0].pid;
    let mut children: Vec<_> = failure
        .outcome
        .processes
        .iter()
        .filter(|p| p.parent == Some(main) && !p.signals.is_empty())
        .collect();
    children.sort_by_key(|p| p.signals[0].at);
    assert!(children.len() >= 2, "{evidence}");
    for pair in children.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        assert_eq!(earlier.signals[0].signal, Signal::SIGTERM);
        let gone = earlier.exited_at.expect("the earlier child exited");
        assert!(
            later.signals[0].at >= gone,
            "pid {} was signalled at {:?}, before pid {} was gone at {gone:?}: not stacked\n{evidence}",
            later.pid,
            later.signals[0].at,
            earlier.pid
        );
    }
}

#[test]
fn the_correct_supervisor_forwards_and_overlaps_its_drains() {
    passes("supervisor");
}

#[test]
fn a_supervisor_that_does_not_forward_orphans_its_children() {
    let report = run(&scenario("supervisor-no-forward"));
    let (failure, evidence) = caught(&report, InvariantName::SignalForwarded);
    let main = &failure.outcome.processes[0];
    let parent_exit = main.exited_at.expect("the supervisor exited");
    let orphans: Vec<_> = failure
        .outcome
        .processes
        .iter()
        .filter(|p| p.parent == Some(main.pid))
        .collect();
    assert_eq!(orphans.len(), 3, "{evidence}");
    for child in orphans {
        assert!(
            child.signals.iter().all(|d| d.at > parent_exit),
            "pid {} was signalled before its parent exited\n{evidence}",
            child.pid
        );
        assert!(
            evidence.contains(&format!(
                "pid {} ({}) was still running when its parent pid {} exited",
                child.pid, child.command, main.pid
            )),
            "{evidence}"
        );
    }
}

#[test]
fn a_teardown_that_runs_twice_leaves_its_marks_twice() {
    let report = run(&scenario("py-flush-store-seal-in-handler"));
    let (failure, evidence) = caught(&report, InvariantName::IdempotentTeardown);
    assert_eq!(failure.outcome.status, ExitStatus::Code(14));
    assert!(
        evidence.contains("`^FLUSHED ` appears 2 times in stdout, once expected:"),
        "{evidence}"
    );
    assert!(
        evidence.contains("`^END ` appears 2 times in store.log, once expected:"),
        "{evidence}"
    );
}

#[test]
fn the_correct_store_seals_once_through_signal_storms() {
    let report = run(&scenario("py-flush-store"));
    let text = killpoint::report::scenario_text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{text}");
    assert!(report.checked.contains(&InvariantName::IdempotentTeardown));
    // Storms were really tried: cases in which two signals reached the target.
    let storms = report.cases.iter().filter(|c| c.landed == 2).count();
    assert!(
        storms >= 5,
        "only {storms} cases had two strikes land\n{text}"
    );
}

#[test]
fn a_checkpoint_saved_without_finally_loses_acknowledged_units() {
    let report = run(&scenario("py-batch-runner-no-finally"));
    let (failure, evidence) = caught(&report, InvariantName::AckedSurvives);
    assert_eq!(failure.outcome.status, ExitStatus::Code(14));
    assert!(evidence.contains("acknowledged"), "{evidence}");
    passes("py-batch-runner");
}

#[test]
fn a_handler_that_writes_to_the_store_is_caught() {
    let report = run(&scenario("flush-store-handler-write"));
    let (_, evidence) = caught(&report, InvariantName::HandlerNoIo);
    assert!(
        evidence.contains("handler (entered at")
            && evidence.contains("write 17 bytes to store.log")
            && evidence.contains("fdatasync store.log"),
        "{evidence}"
    );
}

#[test]
fn the_correct_store_does_no_io_in_its_handler() {
    let report = run(&scenario("flush-store"));
    let text = killpoint::report::scenario_text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{text}");
    assert!(report.checked.contains(&InvariantName::HandlerNoIo));
    assert!(report.warnings.is_empty(), "{text}");
}

#[test]
fn a_python_handler_that_prints_crashes_with_a_reentrant_call() {
    let report = run(&scenario("py-flush-store-handler-print"));
    let (_, evidence) = caught(&report, InvariantName::NoCrashOutput);
    assert!(
        evidence
            .contains("RuntimeError: reentrant call inside <_io.BufferedWriter name='<stdout>'>"),
        "{evidence}"
    );
    assert!(
        evidence.contains("Traceback (most recent call last):"),
        "{evidence}"
    );
}
