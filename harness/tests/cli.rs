//! End-to-end tests of the `killpoint` command against real processes: the bundled
//! atomic-writer scenarios, bad scenario files, process-tree tracking and interruption.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{campaign, interrupt, killpoint, processes_mentioning, root, scenario_dir};

#[test]
fn correct_atomic_writer_holds_for_64_cases() {
    let ran = campaign(&[
        "scenarios/atomic-writer.toml",
        "--cases",
        "64",
        "--seed",
        "1",
    ]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let scenario = &ran.json["scenarios"][0];
    assert_eq!(scenario["result"]["result"], "passed");
    assert_eq!(scenario["cases_run"], 64);
    assert!(
        ran.stdout
            .contains("PASSED: 64 of 64 cases run, every invariant held"),
        "{}",
        ran.stdout
    );
}

#[test]
fn inplace_bug_is_caught_as_atomic_output_with_the_truncated_file_as_evidence() {
    for seed in ["1", "2", "3"] {
        let ran = campaign(&["scenarios/atomic-writer-inplace.toml", "--seed", seed]);
        assert_eq!(
            ran.code, 0,
            "caught as expected exits 0\n{}{}",
            ran.stdout, ran.stderr
        );
        let scenario = &ran.json["scenarios"][0];
        assert_eq!(scenario["result"]["result"], "caught-as-expected");
        let failure = &scenario["failure"];
        assert_eq!(failure["violations"][0][0], "atomic-output");
        let evidence = failure["violations"][0][1][0].as_str().unwrap();
        assert!(
            evidence.starts_with("out.json is truncated: its ")
                || evidence.starts_with("out.json is empty: truncated to 0 of"),
            "{evidence}"
        );
        let after = &failure["outcome"]["outputs"][0]["after"];
        assert_eq!(after["state"], "other");
        let size = after["size"].as_u64().unwrap();
        assert!(
            size < 4 << 20,
            "a truncated file is shorter than the complete 4 MiB: {size}"
        );
        assert_eq!(
            after["difference"]["offset"].as_u64().unwrap(),
            size,
            "it is a prefix of the golden"
        );
        assert!(
            ran.stdout.contains("CAUGHT as expected: atomic-output"),
            "{}",
            ran.stdout
        );
        let case = failure["case_id"].as_str().unwrap();
        let rerun = format!(
            "    rerun: killpoint repro scenarios/atomic-writer-inplace.toml --case {case}\n       or: KILLPOINT_SEED={case} cargo nextest run -E 'test(=scenarios/atomic-writer-inplace.toml)'\n"
        );
        assert!(ran.stdout.contains(&rerun), "{}", ran.stdout);
    }
}

#[test]
fn exit0_bug_is_caught_as_an_exit_code_violation() {
    for seed in ["1", "2", "3"] {
        let ran = campaign(&["scenarios/atomic-writer-exit0.toml", "--seed", seed]);
        assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
        let failure = &ran.json["scenarios"][0]["failure"];
        assert_eq!(failure["violations"][0][0], "exit-code");
        assert_eq!(failure["outcome"]["status"], 0, "it exited 0");
        let evidence: Vec<&str> = failure["violations"][0][1]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(evidence[1], "documented when interrupted: exit 14");
        assert!(
            evidence[2].starts_with("exit 0 claims success, but out.json is"),
            "{evidence:?}"
        );
    }
}

#[test]
fn a_planted_bug_run_as_a_correct_scenario_fails_with_exit_1() {
    let tmp = scenario_dir();
    let text = fs::read_to_string(root().join("scenarios/atomic-writer-inplace.toml")).unwrap();
    let file = tmp.path().join("no-expectation.toml");
    fs::write(&file, text.replace("violation = \"atomic-output\"\n", "")).unwrap();
    let ran = campaign(&[file.to_str().unwrap(), "--seed", "5"]);
    assert_eq!(ran.code, 1, "{}", ran.stdout);
    assert_eq!(ran.json["scenarios"][0]["result"]["result"], "violated");
    // An unexpected violation keeps its sandbox, with the truncated file in it.
    let kept = PathBuf::from(
        ran.json["scenarios"][0]["failure"]["sandbox"]
            .as_str()
            .unwrap(),
    );
    let size = fs::metadata(kept.join("out.json")).unwrap().len();
    assert!(size < 4 << 20);
}

#[test]
fn a_malformed_scenario_exits_2_naming_the_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.toml");
    fs::write(
        &file,
        "name = \"bad\"\ncommand = [\"true\"]\n\n[[strike]]\nsignal = \"SIGTERM\"\n\n[expect]\ndeadlin = \"2s\"\n",
    )
    .unwrap();
    for verb in ["check", "run"] {
        let out = killpoint(&[verb, file.to_str().unwrap()], tmp.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{verb}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!(
            "error: {}:8:1: key `expect.deadlin`: unknown field `deadlin`",
            file.display()
        );
        assert!(stderr.starts_with(&expected), "{verb}: {stderr}");
    }
    fs::write(
        &file,
        "name = \"bad\"\ncommand = [\"true\"]\n[[strike]]\nsignal = \"SIGTREM\"\n",
    )
    .unwrap();
    let out = killpoint(&["check", file.to_str().unwrap()], tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("bad.toml:4:10: key `strike[0].signal`: `SIGTREM` is not a signal name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_accepts_every_bundled_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let out = killpoint(
        &[
            "check",
            "scenarios/atomic-writer.toml",
            "scenarios/atomic-writer-inplace.toml",
            "scenarios/atomic-writer-exit0.toml",
        ],
        tmp.path(),
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with(')'))
            .count(),
        3
    );
}

fn scenario_file(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("s.toml");
    fs::write(&file, text).unwrap();
    file
}

/// A target that leaves a daemonized grandchild behind (setsid escapes the process group).
/// It exits only once the grandchild has become `sleep`, so that the leftover is named by
/// its command line, not caught between fork and exec.
fn daemonizing(tag: &str) -> String {
    format!(
        "name = \"daemonizing\"\ncommand = [\"/bin/sh\", \"-c\", \"setsid sh -c 'exec sleep 3{tag}' </dev/null >/dev/null 2>&1 & while read c </proc/$!/comm; [ \\\"$c\\\" != sleep ]; do :; done; exit 0\"]\n\
         [[strike]]\nsignal = \"SIGTERM\"\n"
    )
}

#[test]
fn a_daemonized_grandchild_is_found_and_killed_with_a_cgroup() {
    leftover_is_found_and_killed("1", None);
}

#[test]
fn a_daemonized_grandchild_is_found_and_killed_without_a_cgroup() {
    leftover_is_found_and_killed("2", Some("1"));
}

fn leftover_is_found_and_killed(tag: &str, no_cgroup: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    // A distinctive duration names our sleep among the machine's processes.
    let tag = format!("{tag}{}", std::process::id() % 1000);
    let file = scenario_file(tmp.path(), &daemonizing(&tag));
    let mut command = killpoint(&["run", file.to_str().unwrap(), "--cases", "1"], tmp.path());
    if let Some(v) = no_cgroup {
        command.env("KILLPOINT_NO_CGROUP", v);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a process left by the uninterrupted run is a violation found by it: {stdout}"
    );
    assert!(
        stdout.contains(
            "VIOLATED: no-leftover-processes, found by the uninterrupted run: no strike reached it"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 process(es) still running 500.0 ms after the main process exited at "),
        "{stdout}"
    );
    assert!(
        stdout.contains("killed by the harness at ")
            && stdout.contains(
                "(processes of the tree were still running after the main process had ended)"
            ),
        "{stdout}"
    );
    assert!(
        stdout.contains("rerun: killpoint repro ") && stdout.contains(" --case census"),
        "{stdout}"
    );
    // Caught mid-exec, a process has its new name but no arguments yet: `[sleep]`.
    assert!(
        stdout.contains(&format!("sleep 3{tag}")) || stdout.contains("([sleep])"),
        "the grandchild, after setsid, is named: {stdout}"
    );
    assert!(
        processes_mentioning(&format!("sleep 3{tag}")).is_empty(),
        "the grandchild was killed"
    );
}

#[test]
fn a_slow_drain_is_caught_at_the_deadline_and_the_tree_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario_file(
        tmp.path(),
        r#"
name = "slow-drain"
# Works for ~300 ms; on SIGTERM it takes 30 s to drain, far past the 300 ms deadline.
command = ["/bin/sh", "-c", "trap 'sleep 30; exit 14' TERM; i=0; while [ $i -lt 30 ]; do sleep 0.01; i=$((i+1)); done"]
[[strike]]
signal = "SIGTERM"
[expect]
interrupted = [14]
deadline = "300ms"
violation = "drain-deadline"
"#,
    );
    let started = Instant::now();
    let ran = campaign(&[file.to_str().unwrap(), "--seed", "9", "--jobs", "1"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let failure = &ran.json["scenarios"][0]["failure"];
    assert_eq!(failure["violations"][0][0], "drain-deadline");
    assert_eq!(failure["outcome"]["killed"]["reason"], "drain-overran");
    let evidence = failure["violations"][0][1][0].as_str().unwrap();
    assert!(evidence.contains("and was killed at"), "{evidence}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the drain was cut at the deadline, not waited out"
    );
}

#[test]
fn sigint_to_killpoint_stops_the_campaign_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = killpoint(
        &[
            "run",
            "scenarios/atomic-writer.toml",
            "--cases",
            "100000",
            "--seed",
            "4",
        ],
        tmp.path(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The first line is printed before the census starts. Then wait until a case is
    // running: a target is seen by its command line, which names its sandbox inside our
    // temp dir, and a second sandbox means the census is over and cases have begun.
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("killpoint: seed 4"), "{first}");
    let needle = tmp.path().to_str().unwrap().to_string();
    let sandboxes = |needle: &str| -> Vec<String> {
        processes_mentioning(&format!("{needle}/killpoint-"))
            .iter()
            .filter_map(|(_, c)| {
                c.split_whitespace()
                    .find(|w| w.starts_with(needle))
                    .map(|w| w[..needle.len() + 17].to_string())
            })
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(60);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        assert!(Instant::now() < until, "no case started: {seen:?}");
        seen.extend(sandboxes(&needle));
        std::thread::yield_now();
    }
    let (status, stdout) = interrupt(child);
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    assert!(
        processes_mentioning(&needle).is_empty(),
        "a target outlived the campaign"
    );
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}
