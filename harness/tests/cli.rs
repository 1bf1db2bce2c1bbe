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

#[test]
fn sigint_to_killpoint_with_a_server_and_its_client_running_leaves_neither_behind() {
    // A server that never stops by itself and a client in an endless (bounded) loop: the
    // client is no child of the server's tree, and must go too.
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("server.py"),
        "import socket, sys\ns = socket.socket()\ns.bind(('127.0.0.1', int(sys.argv[1])))\ns.listen()\nprint('READY', flush=True)\nwhile True:\n    s.accept()[0].close()\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("client.py"),
        "import socket, sys\nfor _ in range(10 ** 9):\n    socket.create_connection(('127.0.0.1', int(sys.argv[1]))).close()\n",
    )
    .unwrap();
    let file = dir.path().join("serve.toml");
    fs::write(
        &file,
        r#"name = "endless-server"
command = ["{python}", "{dir}/server.py", "{port}"]
ready = { stdout = '^READY' }
stop = { after = "clients" }
timeout = "60s"
[[client]]
command = ["{python}", "{dir}/client.py", "{port}"]
[[strike]]
signal = "SIGTERM"
at = { after_ready = "30s" }
"#,
    )
    .unwrap();
    let child = killpoint(&["run", file.to_str().unwrap(), "--cases", "4"], tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = format!("{}/client.py", dir.path().display());
    let until = Instant::now() + Duration::from_secs(60);
    while processes_mentioning(&client).is_empty() {
        assert!(Instant::now() < until, "no client started");
        std::thread::yield_now();
    }
    let (status, stdout) = interrupt(child);
    assert_eq!(status.code(), Some(130), "{stdout}");
    let needle = dir.path().to_str().unwrap();
    assert!(
        processes_mentioning(needle).is_empty(),
        "a server or a client outlived the campaign: {:?}",
        processes_mentioning(needle)
    );
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}

// ---------------------------------------------------------------------------------------
// `killpoint new`: drafts of real programs from every Debian base install (gzip, sed,
// coreutils' sort, tar), checked and run as written.

/// A project directory with an input in `fixtures/` and a `scenarios/` directory to draft
/// into, plus a TMPDIR of its own, which must be empty after every command.
struct Project {
    dir: tempfile::TempDir,
    tmp: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("fixtures/src")).unwrap();
        fs::create_dir_all(dir.path().join("scenarios")).unwrap();
        // 100 kB of words, one per line, in no order: something to compress, sort and edit.
        let words: String = (0..20_000u64)
            .map(|i| format!("w{:05}a\n", (i * 7919) % 20_000))
            .collect();
        fs::write(dir.path().join("fixtures/words.txt"), &words).unwrap();
        fs::write(dir.path().join("fixtures/src/a.txt"), &words).unwrap();
        fs::write(dir.path().join("fixtures/src/b.txt"), "banana\n").unwrap();
        Project {
            dir,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `killpoint ARGS…` run in the project directory; asserts that it leaves nothing in
    /// its TMPDIR but the sandboxes of unexpected violations, which `run` keeps (none for
    /// `new`, `check`).
    fn killpoint(&self, args: &[&str]) -> std::process::Output {
        let out = killpoint(args, self.tmp.path())
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        if args[0] != "run" {
            let left: Vec<_> = fs::read_dir(self.tmp.path()).unwrap().flatten().collect();
            assert!(left.is_empty(), "`killpoint {args:?}` left {left:?}");
        }
        out
    }

    /// `killpoint new NAME --out scenarios/NAME.toml --setup SETUP… -- COMMAND…`, which must
    /// succeed; then `killpoint check` on the file. Returns what it printed and the file.
    fn draft(&self, name: &str, setup: &[&str], command: &[&str]) -> (String, String) {
        let file = format!("scenarios/{name}.toml");
        let mut args = vec!["new", name, "--out", &file];
        if !setup.is_empty() {
            args.push("--setup");
            args.extend_from_slice(setup);
        }
        args.push("--");
        args.extend_from_slice(command);
        let out = self.killpoint(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.starts_with(&format!("killpoint new: wrote {file}\n")),
            "{stdout}"
        );
        assert!(
            stdout.ends_with(&format!(
                "  killpoint check {file}\n  killpoint run {file}\n"
            )),
            "{stdout}"
        );
        let check = self.killpoint(&["check", &file]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let text = fs::read_to_string(self.path(&file)).unwrap();
        (stdout, text)
    }

    /// The drafted scenario, as `killpoint run` loads it.
    fn scenario(&self, name: &str) -> killpoint::Scenario {
        killpoint::Scenario::load(&self.path(&format!("scenarios/{name}.toml"))).unwrap()
    }

    /// `killpoint run` on the drafted file as written: a small campaign with a fixed seed,
    /// which must end in a verdict (0: every invariant held, 1: a violation), never in an
    /// error (2). Returns the exit code and the JSON report of the scenario.
    fn run(&self, name: &str) -> (i32, serde_json::Value) {
        let report = self.tmp.path().join("report.json");
        let file = format!("scenarios/{name}.toml");
        let out = self.killpoint(&[
            "run",
            &file,
            "--cases",
            "16",
            "--seed",
            "1",
            "--no-regressions",
            "--json",
            report.to_str().unwrap(),
        ]);
        let code = out.status.code().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            code == 0 || code == 1,
            "a verdict, not an error: exit {code}\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
        fs::remove_file(&report).unwrap();
        let scenario = json["scenarios"][0].clone();
        let result = scenario["result"]["result"].as_str().unwrap().to_string();
        assert_eq!(
            result,
            if code == 0 { "passed" } else { "violated" },
            "{stdout}"
        );
        (code, scenario)
    }
}

/// Each strike point of a scenario as `CLASS PATH WHEN`, with its signals.
fn points(scenario: &killpoint::Scenario) -> Vec<String> {
    use killpoint::scenario::PointSpec;
    scenario
        .strikes
        .iter()
        .map(|s| {
            let signals: Vec<&str> = s.signal.0.iter().map(|s| s.name()).collect();
            let at = match &s.at {
                PointSpec::Syscall(p) => format!(
                    "{} {} {} {}",
                    p.syscall,
                    p.path.as_ref().unwrap().as_str(),
                    p.nth,
                    p.when
                ),
                other => format!("{other:?}"),
            };
            format!("{at} {}", signals.join("/"))
        })
        .collect()
}

fn outputs(scenario: &killpoint::Scenario) -> Vec<&str> {
    scenario
        .expect
        .outputs
        .iter()
        .map(|o| o.path.as_str())
        .collect()
}

#[test]
fn new_drafts_gzip_k_with_its_output_and_strikes_at_its_open_and_write() {
    let project = Project::new();
    let (stdout, text) = project.draft(
        "gzip-keep",
        &["fixtures/words.txt"],
        &["gzip", "-k", "words.txt"],
    );
    let scenario = project.scenario("gzip-keep");
    assert_eq!(scenario.name, "gzip-keep");
    let command: Vec<&str> = scenario.command.iter().map(|a| a.raw.as_str()).collect();
    assert_eq!(command, ["gzip", "-k", "words.txt"]);
    assert_eq!(outputs(&scenario), ["words.txt.gz"]);
    assert_eq!(
        scenario.expect.clean,
        [killpoint::scenario::ExitStatus::Code(0)]
    );
    assert_eq!(
        scenario.expect.interrupted, None,
        "left for the user to decide"
    );
    assert_eq!(
        points(&scenario),
        [
            "open words.txt.gz 1.. exit SIGTERM/SIGINT/SIGKILL",
            "write words.txt.gz 1.. both SIGTERM/SIGINT/SIGKILL",
        ]
    );
    // The input is copied from where it is, relative to the scenario file.
    assert!(
        text.contains("\n[setup]\n\"words.txt\" = { from = \"../fixtures/words.txt\" }\n"),
        "{text}"
    );
    assert!(
        text.starts_with(
            "# Drafted by\n#   killpoint new gzip-keep --out scenarios/gzip-keep.toml --setup fixtures/words.txt -- gzip -k words.txt\n# which ran the command twice"
        ),
        "{text}"
    );
    // gzip installs its handlers: the comment on `interrupted` names them.
    assert!(
        text.contains("# interrupted = [\"SIGTERM\", \"SIGINT\"]\n"),
        "{text}"
    );
    assert!(text.contains(" SIGINT, SIGPIPE, SIGTERM"), "{text}");
    assert!(
        stdout.contains("  outputs: words.txt.gz (created, ")
            && stdout.contains(
                "  strikes: 2 entries, SIGTERM/SIGINT/SIGKILL at open words.txt.gz, write words.txt.gz\n"
            ),
        "{stdout}"
    );
    let (code, report) = project.run("gzip-keep");
    // gzip removes its partial output on SIGTERM and SIGINT, but nothing can after
    // SIGKILL: at the exit of the open that created it, words.txt.gz is left empty. The
    // space (9 points) is smaller than the cases, so every point is tried.
    assert_eq!(code, 1);
    assert_eq!(report["failure"]["violations"][0][0], "atomic-output");
    let evidence = report["failure"]["violations"][0][1][0].as_str().unwrap();
    assert!(
        evidence.starts_with("words.txt.gz is empty: truncated to 0 of the complete "),
        "{evidence}"
    );
}

#[test]
fn new_drafts_sed_i_with_its_input_as_output_and_a_glob_for_its_temp_file() {
    let project = Project::new();
    let (stdout, text) = project.draft(
        "sed-in-place",
        &["fixtures/words.txt"],
        &["sed", "-i", "s/a/b/", "words.txt"],
    );
    let scenario = project.scenario("sed-in-place");
    // sed -i replaces its input: a setup file, so the output has prior content.
    assert_eq!(outputs(&scenario), ["words.txt"]);
    assert_eq!(
        scenario.expect.clean,
        [killpoint::scenario::ExitStatus::Code(0)]
    );
    // It writes ./sedXXXXXX (mkstemp) and renames it over the input: the temp file is
    // struck through a glob, the input at its rename; it only reads the input, so no open
    // of it is struck.
    assert_eq!(
        points(&scenario),
        [
            "open sed* 1.. exit SIGTERM/SIGINT/SIGKILL",
            "write sed* 1.. both SIGTERM/SIGINT/SIGKILL",
            "rename words.txt 1.. both SIGTERM/SIGINT/SIGKILL",
        ]
    );
    assert!(
        text.contains("    \"words.txt\",  # replaced: a setup file of 160000 bytes, 160000 bytes after the run, renamed into place from sed*\n"),
        "{text}"
    );
    assert!(
        text.contains("# --- words.txt: written to a temp file, sed* (`sed"),
        "{text}"
    );
    assert!(
        text.contains("The trace saw no signal handler installed"),
        "{text}"
    );
    assert!(stdout.contains("  strikes: 3 entries, SIGTERM/SIGINT/SIGKILL at open sed*, write sed*, rename words.txt\n"), "{stdout}");
    let (code, report) = project.run("sed-in-place");
    // sed has no handler: SIGTERM at a write leaves its temp file (the field suite's
    // sed-in-place verdict). 15 points, every one tried.
    assert_eq!(code, 1);
    assert_eq!(report["failure"]["violations"][0][0], "atomic-output");
}

#[test]
fn new_drafts_sort_o_with_strikes_at_its_open_truncate_and_writes() {
    let project = Project::new();
    let (_, text) = project.draft(
        "sort-output",
        &["fixtures/words.txt"],
        &["sort", "-o", "out.txt", "words.txt"],
    );
    let scenario = project.scenario("sort-output");
    assert_eq!(outputs(&scenario), ["out.txt"]);
    assert_eq!(
        scenario.expect.clean,
        [killpoint::scenario::ExitStatus::Code(0)]
    );
    assert_eq!(
        points(&scenario),
        [
            "open out.txt 1.. exit SIGTERM/SIGINT/SIGKILL",
            "truncate out.txt 1.. exit SIGTERM/SIGINT/SIGKILL",
            "write out.txt 1.. both SIGTERM/SIGINT/SIGKILL",
        ]
    );
    assert!(
        text.contains("    \"out.txt\",  # created, 160000 bytes\n"),
        "{text}"
    );
    let (code, report) = project.run("sort-output");
    // sort writes out.txt in place and its handler removes only its own temp files.
    assert_eq!(code, 1);
    assert_eq!(report["failure"]["violations"][0][0], "atomic-output");
}

#[test]
fn new_drafts_tar_cf_of_a_setup_directory() {
    let project = Project::new();
    let (_, text) = project.draft(
        "tar-create",
        &["fixtures/src"],
        &["tar", "cf", "out.tar", "src"],
    );
    let scenario = project.scenario("tar-create");
    assert_eq!(outputs(&scenario), ["out.tar"]);
    assert!(
        text.contains("\"src\" = { from = \"../fixtures/src\" }\n"),
        "{text}"
    );
    assert_eq!(
        points(&scenario),
        [
            "open out.tar 1.. exit SIGTERM/SIGINT/SIGKILL",
            "write out.tar 1.. both SIGTERM/SIGINT/SIGKILL",
        ]
    );
    let (code, _) = project.run("tar-create");
    assert!(code == 0 || code == 1);
}

#[test]
fn new_drafts_a_script_beside_the_user_and_leaves_out_a_file_that_differs_between_runs() {
    let project = Project::new();
    // A temp file from mktemp (a random name), synced, renamed into place; and a stamp
    // that no two runs write alike.
    let script = project.path("bin/writer.sh");
    fs::create_dir_all(script.parent().unwrap()).unwrap();
    fs::write(
        &script,
        "#!/bin/sh\nt=$(mktemp ./out.json.XXXXXX)\nseq 1 20000 > \"$t\"\nsync \"$t\"\nmv \"$t\" out.json\ndate +%s%N > stamp.txt\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let (stdout, text) = project.draft("writer", &[], &["./bin/writer.sh"]);
    let scenario = project.scenario("writer");
    // Run from the scenario's directory, whatever the working directory.
    assert_eq!(scenario.command[0].raw, "{dir}/../bin/writer.sh");
    assert_eq!(outputs(&scenario), ["out.json"]);
    assert_eq!(
        points(&scenario),
        [
            "open out.json.* 1.. exit SIGTERM/SIGINT/SIGKILL",
            "write out.json.* 1.. both SIGTERM/SIGINT/SIGKILL",
            "fsync out.json.* 1.. both SIGTERM/SIGINT/SIGKILL",
            "rename out.json 1.. both SIGTERM/SIGINT/SIGKILL",
        ]
    );
    assert!(
        stdout.contains("  not an output: stamp.txt: the two runs wrote different bytes, "),
        "{stdout}"
    );
    assert!(
        text.contains("# Not declared as outputs: stamp.txt: "),
        "{text}"
    );
    let (code, _) = project.run("writer");
    assert!(code == 0 || code == 1);
}

#[test]
fn new_without_outputs_strikes_after_a_delay_and_the_file_passes() {
    let project = Project::new();
    let (stdout, text) = project.draft("true", &[], &["true"]);
    let scenario = project.scenario("true");
    assert!(scenario.expect.outputs.is_empty());
    assert!(matches!(
        scenario.strikes[..],
        [killpoint::scenario::Strike {
            at: killpoint::scenario::PointSpec::Delay { .. },
            ..
        }]
    ));
    assert!(text.contains("\n# outputs = [\"FILE\"]\n"), "{text}");
    assert!(
        stdout.contains("  outputs: none (the runs created or replaced no file)\n"),
        "{stdout}"
    );
    let (code, _) = project.run("true");
    assert_eq!(
        code, 0,
        "true holds every promise a scenario without outputs checks"
    );
}

#[test]
fn new_refuses_an_existing_file_without_force() {
    let project = Project::new();
    fs::write(project.path("gzip-keep.toml"), "mine\n").unwrap();
    let args = [
        "new",
        "gzip-keep",
        "--setup",
        "fixtures/words.txt",
        "--",
        "gzip",
        "-k",
        "words.txt",
    ];
    let out = project.killpoint(&args);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: gzip-keep.toml already exists: give --force to replace it, or --out PATH to write elsewhere\n"
    );
    assert_eq!(
        fs::read_to_string(project.path("gzip-keep.toml")).unwrap(),
        "mine\n"
    );
    let mut forced = args.to_vec();
    forced.insert(2, "--force");
    let out = project.killpoint(&forced);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(project.path("gzip-keep.toml")).unwrap();
    assert!(text.contains("\nname = \"gzip-keep\"\n"), "{text}");
    // Beside the file it wrote, nothing: no temp file of its own.
    let mut names: Vec<String> = fs::read_dir(project.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["fixtures", "gzip-keep.toml", "scenarios"]);
}

#[test]
fn new_fails_with_exit_2_on_a_missing_setup_file_an_unknown_command_a_timeout_or_a_bad_name() {
    let project = Project::new();
    let cases: [(&[&str], &str); 4] = [
        (
            &["new", "x", "--setup", "nope.txt", "--", "cat", "nope.txt"],
            "error: setup file nope.txt: No such file or directory (os error 2)\n",
        ),
        (
            &["new", "x", "--", "no-such-program-kp"],
            "error: cannot run `no-such-program-kp`: not found on PATH\n",
        ),
        (
            &["new", "x", "--timeout", "300ms", "--", "sleep", "7.3"],
            "error: `sleep` ran past the timeout (300ms) and was killed: a scenario needs a command that finishes by itself; give --timeout a longer time if it needs one\n",
        ),
        (
            &["new", "a/b", "--", "true"],
            "error: `a/b` is not a scenario name: letters, digits, `.`, `_` and `-`, beginning with a letter or digit, e.g. gzip-keep\n",
        ),
    ];
    for (args, error) in cases {
        let out = project.killpoint(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), error, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!project.path("x.toml").exists(), "{args:?}");
    }
    assert!(
        processes_mentioning("sleep 7.3").is_empty(),
        "the timed-out command was killed"
    );
}

#[test]
fn sigint_to_killpoint_new_writes_nothing_and_leaves_no_sandbox() {
    let project = Project::new();
    let tag = format!("3{}", std::process::id() % 1000);
    let child = killpoint(&["new", "slow", "--", "sleep", &tag], project.tmp.path())
        .current_dir(project.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command itself, not killpoint, whose command line names it too.
    let sleeping = || {
        processes_mentioning(&format!("sleep {tag}"))
            .into_iter()
            .filter(|(_, c)| c.starts_with("sleep "))
            .count()
    };
    let until = Instant::now() + Duration::from_secs(30);
    while sleeping() == 0 {
        assert!(Instant::now() < until, "the command never started");
        std::thread::yield_now();
    }
    let (status, stdout) = interrupt(child);
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(!project.path("slow.toml").exists());
    assert_eq!(sleeping(), 0, "the command was killed");
    let left: Vec<_> = fs::read_dir(project.tmp.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}
