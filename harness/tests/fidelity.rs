//! Verdicts on real programs that the harness once got wrong, each through a defect of
//! its own, never of the program: a setup file taken for a temp leftover (gzip), a temp
//! file excused after a death the program could have prevented (sed -i) or after a
//! worker's kill the main process lived through, children judged at the instant their
//! parent exited, evidence that contradicted the timeline, an undeclared violation hidden
//! behind a declared one, and a promise broken with no strike called a scenario error.
//!
//! Each test runs a scenario file as a user writes it, with the real program or a target
//! written to reproduce the situation exactly, and asserts the verdict and its evidence.

use std::fs;
use std::path::{Path, PathBuf};

use killpoint::invariants::InvariantName;
use killpoint::scenario::Scenario;
use killpoint::{Campaign, CampaignOptions, JudgedCase, ScenarioReport, ScenarioResult};

mod common;
use common::killpoint;

/// Writes `text` as `s.toml` in `dir` and loads it.
fn scenario(dir: &Path, text: &str) -> Scenario {
    let file = dir.join("s.toml");
    fs::write(&file, text).unwrap();
    Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

/// One campaign of `seed`, `jobs` at once, failures reported as found (not shrunk), no
/// regressions file.
fn run(scenario: &Scenario, seed: u64, jobs: usize) -> ScenarioReport {
    let mut options = CampaignOptions::new(seed);
    options.jobs = jobs;
    options.shrink_iterations = Some(0);
    options.regressions = false;
    Campaign::new(options).run_scenario(scenario)
}

fn text(report: &ScenarioReport) -> String {
    killpoint::report::scenario_text(report)
}

/// The evidence of `invariant` in the reported failure, one line each.
fn evidence(failure: &JudgedCase, invariant: InvariantName) -> Vec<String> {
    failure
        .violations
        .iter()
        .find(|(n, _)| *n == invariant)
        .map(|(_, e)| e.clone())
        .unwrap_or_else(|| panic!("{invariant} not violated: {:?}", failure.violations))
}

/// A text of `lines` numbered lines of pseudo-random hex, which compresses to about half:
/// an input that takes gzip a moment.
fn numbered(lines: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (1..=lines)
        .map(|i| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            format!("line {i}: {:016x}\n", x)
        })
        .collect()
}

#[test]
fn gzip_keeping_its_input_when_interrupted_is_not_a_temp_leftover() {
    let dir = tempfile::tempdir().unwrap();
    // gzip removes big.txt only on success, so the census leaves no big.txt; a case it
    // interrupts keeps it, as gzip documents. It was there before the run: prior state.
    let s = scenario(
        dir.path(),
        &format!(
            r#"name = "gzip-keeps-input"
command = ["gzip", "big.txt"]
[setup]
"big.txt" = """{}"""
[[strike]]
signal = ["SIGTERM", "SIGINT"]
at = {{ syscall = "write", path = "big.txt.gz", when = "both" }}
[expect]
outputs = ["big.txt.gz"]
interrupted = ["SIGTERM", "SIGINT"]
"#,
            numbered(4_000)
        ),
    );
    let report = run(&s, 1, 2);
    let census = report.census.as_ref().expect("a census");
    let writes = census
        .syscalls
        .as_ref()
        .expect("traced")
        .calls
        .iter()
        .find(|c| c.paths == ["big.txt.gz"] && c.class.name() == "write")
        .expect("gzip writes big.txt.gz")
        .count;
    assert_eq!(report.result, ScenarioResult::Passed, "{}", text(&report));
    // Every point: each write, both sides, both signals.
    assert_eq!(report.cases_run, writes * 4, "{}", text(&report));
}

#[test]
fn sed_dying_of_sigterm_without_a_handler_owes_its_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    // GNU sed -i writes a ./sedXXXXXX temp file and renames it over the input; it installs
    // no handler, so SIGTERM kills it with the temp file left beside the input.
    let s = scenario(
        dir.path(),
        &format!(
            r#"name = "sed-in-place"
command = ["sed", "-i", "s/line/LINE/", "in.txt"]
[setup]
"in.txt" = """{}"""
[[strike]]
signal = "SIGTERM"
at = {{ syscall = "write", path = "sed*", nth = 1 }}
[expect]
outputs = ["in.txt"]
interrupted = ["SIGTERM"]
violation = "atomic-output"
"#,
            numbered(20_000)
        ),
    );
    let report = run(&s, 1, 1);
    assert_eq!(
        report.result,
        ScenarioResult::CaughtAsExpected,
        "{}",
        text(&report)
    );
    let failure = report.failure.as_ref().unwrap();
    let lines = evidence(failure, InvariantName::AtomicOutput);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("left behind: sed"), "{}", lines[0]);
    assert!(
        lines[0].ends_with(
            " (not there before the run, nor after the uninterrupted one); the main process died of SIGTERM, a signal it could have caught to remove them"
        ),
        "{}",
        lines[0]
    );
}

/// A main process that runs a worker; the worker writes `part.tmp` and renames it to
/// `out.txt`; when the worker fails, the main process exits 3 and leaves `part.tmp`.
const WORKER_PARENT: &str = r#"
import subprocess, sys
worker = r'''
import os
fd = os.open("part.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for i in range(8):
    os.write(fd, (str(i) * 4096).encode())
os.close(fd)
os.rename("part.tmp", "out.txt")
'''
if subprocess.run([sys.executable, "-c", worker]).returncode != 0:
    sys.exit(3)
"#;

#[test]
fn a_worker_killed_under_a_main_process_that_lives_on_does_not_excuse_its_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("parent.py"), WORKER_PARENT).unwrap();
    // The strike lands in the worker (the process making the write): SIGKILL. The main
    // process lives on, exits 3 as documented, and could have removed part.tmp.
    let s = scenario(
        dir.path(),
        r#"name = "worker-killed"
command = ["{python}", "{dir}/parent.py"]
[[strike]]
signal = "SIGKILL"
at = { syscall = "write", path = "part.tmp", nth = 3 }
[expect]
outputs = ["out.txt"]
killed = ["SIGKILL", 3]
violation = "atomic-output"
"#,
    );
    let report = run(&s, 1, 1);
    assert_eq!(
        report.result,
        ScenarioResult::CaughtAsExpected,
        "{}",
        text(&report)
    );
    let failure = report.failure.as_ref().unwrap();
    assert_eq!(
        failure.outcome.status,
        killpoint::scenario::ExitStatus::Code(3)
    );
    assert_eq!(
        evidence(failure, InvariantName::AtomicOutput),
        [
            "left behind: part.tmp (not there before the run, nor after the uninterrupted one); after SIGKILL, the main process lived on and exited 3 without removing them"
        ]
    );
}

/// An init-style parent: on SIGTERM it forwards the signal to its child and exits 14 at
/// once, without waiting; the child takes `linger` seconds to finish its own shutdown.
/// Without a signal, the child works 300 ms and both exit 0. The parent installs its
/// handler (from which the strikes' delays count) only once the child has said on a pipe
/// that its own is installed, so a strike never finds a child still starting up, however
/// slow the machine.
fn forwarding_parent(linger: &str) -> String {
    format!(
        r#"
import os, signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", '''
import signal, sys, time
def stop(*_):
    time.sleep({linger})
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
sys.stdout.write("ready\\n")
sys.stdout.flush()
for _ in range(30):
    time.sleep(0.01)
'''], stdout=subprocess.PIPE)
child.stdout.readline()
def forward(*_):
    child.send_signal(signal.SIGTERM)
    os._exit(14)
signal.signal(signal.SIGTERM, forward)
child.wait()
"#
    )
}

#[test]
fn a_child_that_ends_within_the_grace_after_its_parent_is_part_of_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("parent.py"), forwarding_parent("0.05")).unwrap();
    let s = scenario(
        dir.path(),
        r#"name = "forwards-and-exits"
command = ["{python}", "{dir}/parent.py"]
cases = 6
[[strike]]
signal = "SIGTERM"
at = { after = "50ms..200ms" }
[expect]
interrupted = [14]
deadline = "3s"
"#,
    );
    let report = run(&s, 1, 1);
    assert_eq!(report.result, ScenarioResult::Passed, "{}", text(&report));
    assert_eq!(report.cases_run, 6);
}

#[test]
fn a_leftover_that_ends_by_itself_after_the_grace_is_said_to_have_done_so() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("parent.py"), forwarding_parent("1.0")).unwrap();
    let s = scenario(
        dir.path(),
        r#"name = "forwards-and-exits-slow-child"
command = ["{python}", "{dir}/parent.py"]
cases = 2
[[strike]]
signal = "SIGTERM"
at = { after = "50ms..200ms" }
[expect]
interrupted = [14]
deadline = "3s"
leftover_grace = "100ms"
violation = "no-leftover-processes"
"#,
    );
    let report = run(&s, 1, 1);
    assert_eq!(
        report.result,
        ScenarioResult::CaughtAsExpected,
        "{}",
        text(&report)
    );
    let failure = report.failure.as_ref().unwrap();
    let lines = evidence(failure, InvariantName::NoLeftoverProcesses);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0]
            .starts_with("1 process(es) still running 100.0 ms after the main process exited at "),
        "{}",
        lines[0]
    );
    // The child went by itself, before the deadline: the evidence says so, and never
    // that the harness killed it.
    assert!(
        lines[1].contains(" — then ended by itself: exit 0 at "),
        "{}",
        lines[1]
    );
    assert!(
        failure.outcome.killed.is_none(),
        "{:?}",
        failure.outcome.killed
    );
}

/// Writes out.txt in place in 8 writes. SIGTERM (at the first write): exit 14 with it
/// partial, once the SIGINT case runs beside it. SIGINT: finish out.txt, start a
/// `sleep` that outlives it, and exit 14.
const TWO_BUGS: &str = r#"
import os, signal, subprocess, sys, time
rendezvous = os.path.join(os.environ["RENDEZVOUS"], "sigint")
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append("TERM"))
signal.signal(signal.SIGINT, lambda *_: stop.append("INT"))
fd = os.open("out.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for i in range(8):
    os.write(fd, (str(i) * 4096).encode())
    if stop == ["TERM"]:
        # Fails only while the other case runs, so both are in the campaign.
        while not os.path.exists(rendezvous):
            time.sleep(0.001)
        os._exit(14)
os.close(fd)
if stop == ["INT"]:
    open(rendezvous, "w").close()
    subprocess.Popen(["sleep", "0.9"])
    os._exit(14)
"#;

#[test]
fn an_undeclared_violation_beside_a_declared_one_fails_the_scenario_and_both_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let rendezvous = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("two.py"), TWO_BUGS).unwrap();
    let s = scenario(
        dir.path(),
        &format!(
            r#"name = "two-bugs"
command = ["{{python}}", "{{dir}}/two.py"]
env = {{ RENDEZVOUS = "{}" }}
[[strike]]
signal = ["SIGTERM", "SIGINT"]
at = {{ syscall = "write", path = "out.txt", nth = 1 }}
[expect]
outputs = ["out.txt"]
interrupted = [14]
deadline = "2s"
violation = "atomic-output"
"#,
            rendezvous.path().display()
        ),
    );
    // Two points, run exhaustively, both at once: p0 (SIGTERM) fails as declared, p1
    // (SIGINT) leaves a process, which the scenario does not declare.
    let report = run(&s, 1, 2);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Violated, "{shown}");
    let failure = report.failure.as_ref().unwrap();
    assert_eq!(failure.case_id.to_string(), "p1", "{shown}");
    assert_eq!(
        failure.violated(),
        [InvariantName::NoLeftoverProcesses],
        "{shown}"
    );
    assert_eq!(report.also_failed.len(), 1, "{shown}");
    assert_eq!(report.also_failed[0].id.to_string(), "p0");
    assert_eq!(
        report.also_failed[0].violated,
        [InvariantName::AtomicOutput]
    );
    assert!(
        shown.contains("VIOLATED: no-leftover-processes at case 2"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "also failed: atomic-output at case 1, plan SIGTERM at the entry of write #1 to out.txt"
        ),
        "{shown}"
    );
}

/// A supervisor whose worker crashes and which exits 0 anyway, where 3 is documented.
fn hides_a_crash(dir: &Path) -> PathBuf {
    let file = dir.join("s.toml");
    fs::write(
        &file,
        r#"name = "hides-a-crash"
command = ["sh", "-c", "sh -c 'echo worker failed >&2; exit 3'; exit 0"]
[[strike]]
signal = "SIGTERM"
[expect]
clean = [3]
"#,
    )
    .unwrap();
    file
}

#[test]
fn a_promise_broken_with_no_strike_is_a_violation_found_by_the_census() {
    let dir = tempfile::tempdir().unwrap();
    let file = hides_a_crash(dir.path());
    let out = killpoint(
        &["run", file.to_str().unwrap(), "--no-regressions"],
        dir.path(),
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .contains("VIOLATED: exit-code, found by the uninterrupted run: no strike reached it"),
        "{stdout}"
    );
    assert!(
        stdout.contains("      no strike reached it, and it ended with exit 0 at "),
        "{stdout}"
    );
    assert!(
        stdout.contains("      documented for a clean run: exit 3"),
        "{stdout}"
    );
    assert!(stdout.contains(" --case census"), "{stdout}");
    assert!(
        stdout.contains("0 passed, 0 caught as expected, 1 failed, 0 could not run"),
        "{stdout}"
    );

    // The rerun it prints reruns it.
    let out = killpoint(
        &["repro", file.to_str().unwrap(), "--case", "census"],
        dir.path(),
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("exit-code"), "{stdout}");

    // A census that cannot serve as the reference is still an error: exit 2.
    let unusable = dir.path().join("u.toml");
    fs::write(
        &unusable,
        "name = \"no-output\"\ncommand = [\"true\"]\n[[strike]]\nsignal = \"SIGTERM\"\n[expect]\noutputs = [\"out.txt\"]\n",
    )
    .unwrap();
    let out = killpoint(
        &["run", unusable.to_str().unwrap(), "--no-regressions"],
        dir.path(),
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("ERROR: the uninterrupted run did not write the output `out.txt`"),
        "{stdout}"
    );
}

#[test]
fn trace_says_a_detached_descendant_was_killed_because_it_outlived_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    // The command ends at once; the sleep it detached would run for a minute.
    let out = killpoint(
        &[
            "trace",
            "--",
            "sh",
            "-c",
            "setsid sleep 61 </dev/null >/dev/null 2>&1 & while read c </proc/$!/comm; [ \"$c\" != sleep ]; do :; done",
        ],
        tmp.path(),
    )
    .current_dir(tmp.path())
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let first = stdout
        .lines()
        .find(|l| l.starts_with("killpoint trace: "))
        .unwrap_or_default();
    assert!(
        first.contains("→ exit 0 in ")
            && first.contains(
                "; 1 process(es) it started still ran 500.0 ms later and were killed at "
            ),
        "{first}"
    );
    assert!(!stdout.contains("timeout"), "{stdout}");
    assert!(
        stdout.contains(
            "sleep 61  (left running after the command ended; killed by SIGKILL, by killpoint)"
        ),
        "{stdout}"
    );
}

/// Writes out.txt atomically with a SIGTERM handler in place, then gives the handler up
/// (`SIG_DFL`) and marks `gave-up`; with `--early`, it gives it up and marks before
/// writing anything.
const GIVES_UP: &str = r#"
import os, signal, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import killpoint_probe
signal.signal(signal.SIGTERM, lambda *_: sys.exit(14))
def give_up():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    killpoint_probe.mark("gave-up")
if "--early" in sys.argv:
    give_up()
with open("out.tmp", "w") as f:
    f.write("complete\n")
os.replace("out.tmp", "out.txt")
if "--early" not in sys.argv:
    give_up()
"#;

fn gives_up(dir: &Path, early: bool) -> Scenario {
    fs::write(dir.join("gives_up.py"), GIVES_UP).unwrap();
    fs::copy(
        common::root().join("scenarios/python/killpoint_probe.py"),
        dir.join("killpoint_probe.py"),
    )
    .unwrap();
    scenario(
        dir,
        &format!(
            r#"name = "gives-up-its-handler"
command = ["{{python}}", "{{dir}}/gives_up.py"{}]
[[strike]]
signal = "SIGTERM"
at = {{ probe = "gave-up" }}
[expect]
outputs = ["out.txt"]
interrupted = [14]
no_temp_leftovers = false
deadline = "2s"
"#,
            if early { r#", "--early""# } else { "" }
        ),
    )
}

#[test]
fn a_signal_after_the_program_gave_up_its_handler_is_told_as_such_and_after_the_work_holds() {
    let dir = tempfile::tempdir().unwrap();
    // Struck after the work, once the handler is given up: its default action, held.
    let report = run(&gives_up(dir.path(), false), 1, 1);
    assert_eq!(report.result, ScenarioResult::Passed, "{}", text(&report));
    assert_eq!(report.cases_run, 1);

    // Struck with the work not done: a violation, and the evidence says the handler had
    // been given up, not that it was not there yet.
    let report = run(&gives_up(dir.path(), true), 1, 1);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Violated, "{shown}");
    let lines = evidence(report.failure.as_ref().unwrap(), InvariantName::ExitCode);
    assert!(
        lines[0].starts_with("SIGTERM sent at ")
            && lines[0].contains(" (it no longer had a handler for it: one was installed at ")
            && lines[0].contains(
                ", and SIGTERM was back to its default action); it ended with killed by SIGTERM at "
            ),
        "{shown}"
    );
}
