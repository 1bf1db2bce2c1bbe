//! Each promise caught breaking on the bug it is for, with the evidence a user acts on,
//! and holding on the correct target: a stacking supervisor (drain-deadline, with the
//! timeline showing the stacked drains), a supervisor that does not forward
//! (signal-forwarded), a teardown that runs twice (idempotent-teardown), a checkpoint saved
//! without `finally` (acked-survives), a handler that writes (handler-no-io), and Python's
//! reentrant print (no-crash-output), a resume that redoes work (no-duplicate-work) or
//! cannot resume (resume-completes); and probe strikes landing exactly at the marked point.
//! The bundled scenario files are the inputs; the campaign test runs all of them, these
//! assert what their reports say.

use std::path::Path;

use killpoint::invariants::InvariantName;
use killpoint::plan::CaseId;
use killpoint::scenario::{ExitStatus, Scenario, Signal};
use killpoint::{Campaign, CampaignOptions, JudgedCase, ScenarioReport, ScenarioResult};

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
fn caught(report: &ScenarioReport, invariant: InvariantName) -> (&JudgedCase, String) {
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
    // killpoint_probe.py marked every acknowledgement, each one a probe point.
    let census = report.census.as_ref().expect("a census");
    assert_eq!(census.mark_counts.get("ack"), Some(&200), "{text}");
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

#[test]
fn a_probe_strike_lands_at_the_marked_unit_in_20_of_20_reruns() {
    // The runner marks `unit N` before unit N and looks at its stop flag right after; its
    // handler notes the unit of the last mark, and a stopped run prints it. Point pK of
    // this space is SIGTERM at the (K+1)-th mark.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let text = r#"
name = "probe-landing"
command = ["{bin:batch-runner}", "--checkpoint", "{work}/checkpoint.json", "--results", "{work}/results", "--units", "30", "--unit-time", "2ms"]
[[strike]]
signal = "SIGTERM"
at = { probe = "unit" }
[expect]
interrupted = [14]
"#;
    let file = dir.join("probe-landing.toml");
    let mut scenario = Scenario::parse(text, &file).unwrap();
    scenario.source = Some(file);
    for point in 0..20u64 {
        let unit = point + 1;
        let mut options = CampaignOptions::new(1);
        options.regressions = false;
        options.case = Some(CaseId::Point(point));
        let report = Campaign::new(options).run_scenario(&scenario);
        let text = killpoint::report::repro_text(&report);
        let case = report.case.as_ref().unwrap_or_else(|| panic!("{text}"));
        // A rerun keeps its sandbox for inspection; this one is not needed.
        let sandbox = case.sandbox.as_ref().expect("a rerun keeps its sandbox");
        std::fs::remove_dir_all(sandbox).unwrap();
        assert_eq!(
            case.plan.to_string(),
            format!("SIGTERM at probe mark `unit` #{unit}"),
            "{text}"
        );
        let outcome = &case.outcome;
        assert_eq!(outcome.status, ExitStatus::Code(14), "{text}");
        assert!(
            outcome
                .stderr
                .text
                .contains(&format!("the stop signal arrived at unit {unit}\n")),
            "rerun {point}: the target says it was elsewhere\n{text}"
        );
        // And it stopped there: the units before it done, none after.
        let done: Vec<String> = (1..unit).map(|u| format!("DONE unit={u}\n")).collect();
        assert_eq!(outcome.stdout.text, done.concat(), "{text}");
        assert!(case.violations.is_empty(), "{text}");
    }
}

#[test]
fn acknowledgements_made_as_probe_marks_are_checked_and_a_kill_at_one_finds_the_lost_unit() {
    let report = run(&scenario("batch-runner-ack-before-save"));
    let (failure, evidence) = caught(&report, InvariantName::AckedSurvives);
    assert_eq!(failure.plan.to_string(), "SIGKILL at probe mark `ack` #1");
    assert!(
        evidence.starts_with("1 of 1 acknowledged id(s) did not survive: 1\n"),
        "{evidence}"
    );
    let acks: Vec<&str> = failure
        .outcome
        .marks
        .iter()
        .filter(|m| m.name == "ack")
        .map(|m| m.arg.as_str())
        .collect();
    assert_eq!(acks, ["1"]);
}

#[test]
fn a_resume_that_redoes_a_reported_unit_is_caught_and_the_correct_resume_passes() {
    let report = run(&scenario("batch-runner-resume-redo-last"));
    let (failure, evidence) = caught(&report, InvariantName::NoDuplicateWork);
    // Stopped at unit N, the case reported 1..N-1; the resume starts again at N-1.
    let resume = failure.outcome.resume.as_ref().expect("the resume ran");
    let last = failure
        .outcome
        .stdout
        .text
        .lines()
        .last()
        .expect("a unit was reported")
        .to_string();
    assert_eq!(resume.stdout.text.lines().next(), Some(last.as_str()));
    let unit = last.trim_start_matches("DONE unit=");
    assert!(
        evidence.starts_with(&format!(
            "1 unit(s) the case reported done were done again by the resume: {unit}\n"
        )),
        "{evidence}"
    );
    assert_eq!(resume.status, ExitStatus::Code(0));
    // Its checkpoint still comes out right: only the repeated report shows the bug.
    assert!(
        !failure
            .violations
            .iter()
            .any(|(n, _)| *n == InvariantName::ResumeCompletes)
    );

    let report = run(&scenario("batch-runner"));
    let text = killpoint::report::scenario_text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{text}");
    for name in [
        InvariantName::ResumeCompletes,
        InvariantName::NoDuplicateWork,
    ] {
        assert!(report.checked.contains(&name), "{text}");
    }
}

#[test]
fn a_torn_checkpoint_cannot_be_resumed() {
    let report = run(&scenario("batch-runner-checkpoint-inplace"));
    let (failure, evidence) = caught(&report, InvariantName::ResumeCompletes);
    let resume = failure.outcome.resume.as_ref().expect("the resume ran");
    assert_ne!(resume.status, ExitStatus::Code(0));
    assert!(
        evidence.contains(&format!(
            "the resume ended with {}, not as a clean run does (exit 0)",
            resume.status
        )) && evidence.contains("not a checkpoint"),
        "{evidence}"
    );
}

/// A target that works for a while, without children, and stops with exit 14 on SIGTERM.
fn stops_on_sigterm() -> Scenario {
    use killpoint::{Expect, Strike};
    use std::time::Duration;
    Scenario::command("sh")
        .arg("-c")
        .arg("trap 'exit 14' TERM; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo done")
        .strike(Strike::after(Duration::ZERO..Duration::from_millis(50)).signal(Signal::SIGTERM))
        .expect(Expect::exit_codes().interrupted([14]))
        .cases(5)
}

#[test]
fn a_user_invariant_is_judged_on_every_case_and_fails_the_scenario_under_its_own_name() {
    use killpoint::{Invariant, Verdict};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    // Holding: judged on the census and once per case, and listed among the invariants
    // checked.
    let judged = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&judged);
    let holds = stops_on_sigterm().invariant(Invariant::new("counted", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Verdict::Held
    }));
    let report = run(&holds);
    let text = killpoint::report::scenario_text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{text}");
    assert_eq!(report.cases_run, 5);
    assert_eq!(
        judged.load(Ordering::SeqCst),
        6,
        "once for the uninterrupted run, then once per case"
    );
    assert!(
        report
            .checked
            .contains(&InvariantName::Custom("counted".into())),
        "{:?}",
        report.checked
    );
    assert!(text.contains("every invariant held (exit-code, no-leftover-processes, no-crash-output, handler-no-io, counted)"), "{text}");

    // Broken: the scenario fails with the invariant's own name and evidence.
    let breaks = stops_on_sigterm().invariant(Invariant::new("no-cancel-exit", |ctx| {
        match ctx.outcome.status {
            ExitStatus::Code(14) => Verdict::violated(vec![format!(
                "exit 14 after {} delivered",
                ctx.outcome.first_delivered().map(|s| s.signal).unwrap()
            )]),
            _ => Verdict::Held,
        }
    }));
    let report = run(&breaks);
    let text = killpoint::report::scenario_text(&report);
    assert_eq!(report.result, ScenarioResult::Violated, "{text}");
    let failure = report.failure.as_ref().expect("a failing case");
    assert_eq!(
        failure.violations,
        [(
            InvariantName::Custom("no-cancel-exit".into()),
            vec!["exit 14 after SIGTERM delivered".to_string()]
        )]
    );
    assert!(
        text.contains("VIOLATED: no-cancel-exit at case 1"),
        "{text}"
    );
    assert!(
        text.contains("    no-cancel-exit:\n      exit 14 after SIGTERM delivered"),
        "{text}"
    );

    // Declared as a planted bug, it is caught as expected.
    let expected = breaks.expect(killpoint::Expect::violation(InvariantName::Custom(
        "no-cancel-exit".into(),
    )));
    assert_eq!(run(&expected).result, ScenarioResult::CaughtAsExpected);
}
