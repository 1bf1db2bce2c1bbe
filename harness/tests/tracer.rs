//! End-to-end tests of syscall strikes: real targets under the ptrace + seccomp tracer,
//! struck at the entry or exit of a chosen call, in the right thread and process.

use std::fs;
use std::path::Path;

use serde_json::Value;

mod common;
use common::{Ran, campaign, killpoint, repro, scenario_dir};

const CHUNK: u64 = 65536;

/// Writes a scenario file beside the scenarios crate and reproduces its case 1, whose
/// report then carries the whole outcome.
fn strike(dir: &Path, name: &str, text: &str) -> Ran {
    let file = dir.join(format!("{name}.toml"));
    fs::write(&file, format!("name = \"{name}\"\n{text}")).unwrap();
    repro(file.to_str().unwrap(), "1")
}

fn case(ran: &Ran) -> &Value {
    let case = &ran.json["case"];
    assert!(
        case.is_object(),
        "no case in the report\n{}{}",
        ran.stdout,
        ran.stderr
    );
    case
}

/// The in-place writer (truncate, then 16 writes of 64 KiB), struck at one write.
fn inplace(handlers: bool, signal: &str, nth: u64, when: &str, interrupted: &str) -> String {
    format!(
        r#"command = ["{{bin:atomic-writer}}", "--output", "{{work}}/out.json", "--size", "1MiB", "--bug", "inplace"{}]
[setup]
"out.json" = "prior\n"
[[strike]]
signal = "{signal}"
at = {{ syscall = "write", path = "out.json", nth = {nth}, when = "{when}" }}
[expect]
interrupted = [{interrupted}]
outputs = ["out.json"]
violation = "atomic-output"
"#,
        if handlers { "" } else { r#", "--no-handlers""# }
    )
}

#[test]
fn an_entry_strike_lands_before_the_write_and_an_exit_strike_after_it() {
    let dir = scenario_dir();
    // (handlers, signal, when, the status, how many chunks of write #k are in the file)
    let cases: [(bool, &str, &str, Value, u64); 4] = [
        // Default action: the process dies before write #k runs.
        (false, "SIGTERM", "entry", "SIGTERM".into(), 1),
        (true, "SIGKILL", "entry", "SIGKILL".into(), 1),
        // Dies just after write #k returned.
        (false, "SIGTERM", "exit", "SIGTERM".into(), 0),
        // A flag-setting handler runs, then write #k runs (as with a real signal arriving
        // a moment before it), and the loop stops at its next check: exit 14.
        (true, "SIGTERM", "entry", 14.into(), 0),
    ];
    for (handlers, signal, when, status, missing) in cases {
        for k in [1, 3, 16] {
            let label = format!("{signal} at the {when} of write #{k}, handlers: {handlers}");
            let ran = strike(
                dir.path(),
                "inplace-write",
                &inplace(handlers, signal, k, when, "14, \"SIGTERM\""),
            );
            let outcome = &case(&ran)["outcome"];
            // After the handler, write #16 was the last: the loop had nothing left to
            // skip and the writer finished.
            let status = if k - missing == 16 && status == 14 {
                Value::from(0)
            } else {
                status.clone()
            };
            assert_eq!(outcome["status"], status, "{label}");
            let after = &outcome["outputs"][0]["after"];
            if k - missing == 16 {
                // Struck after the last write: the file is complete, no bug to see.
                assert_eq!(after["state"], "golden", "{label}: {after}");
                assert_eq!(ran.json["result"]["result"], "passed");
                assert_eq!(ran.code, 0, "a reproduction that holds exits 0");
            } else {
                assert_eq!(
                    ran.code, 1,
                    "a reproduced violation exits 1\n{label}\n{}{}",
                    ran.stdout, ran.stderr
                );
                assert_eq!(
                    ran.json["result"]["result"], "caught-as-expected",
                    "{label}"
                );
                assert_eq!(after["state"], "other", "{label}: {after}");
                assert_eq!(after["size"], (k - missing) * CHUNK, "{label}: {after}");
            }
            let hit = &outcome["strikes"][0]["hit"]["what"];
            assert_eq!(hit["name"], "write", "{label}");
            assert_eq!(hit["paths"][0], "out.json", "{label}");
            assert_eq!(
                hit["detail"],
                format!("65536 bytes at offset {}", (k - 1) * CHUNK),
                "{label}"
            );
            let returned = if when == "exit" {
                Value::from(CHUNK)
            } else {
                Value::Null
            };
            assert_eq!(hit["result"], returned, "{label}");
        }
    }
}

#[test]
fn an_exit_strike_at_the_rename_of_the_correct_writer_leaves_the_output_complete() {
    let dir = scenario_dir();
    let writer = |when: &str, handlers: &str| {
        format!(
            r#"command = ["{{bin:atomic-writer}}", "--output", "{{work}}/out.json", "--size", "1MiB"{handlers}]
[setup]
"out.json" = "prior\n"
[[strike]]
signal = "SIGTERM"
at = {{ syscall = "rename", when = "{when}" }}
[expect]
interrupted = [14, "SIGTERM"]
outputs = ["out.json"]
"#
        )
    };
    let ran = strike(dir.path(), "rename-exit", &writer("exit", ""));
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let outcome = &case(&ran)["outcome"];
    assert_eq!(outcome["outputs"][0]["after"]["state"], "golden");
    let hit = &outcome["strikes"][0]["hit"]["what"];
    assert_eq!(hit["name"], "rename");
    assert_eq!(hit["paths"][1], "out.json");
    assert!(
        hit["paths"][0]
            .as_str()
            .unwrap()
            .starts_with(".out.json.tmp-"),
        "{hit}"
    );
    assert_eq!(hit["result"], 0);
    // At the entry, with no handler, the rename never happens: the prior content stays,
    // and so does the temp file, which a handler could have removed.
    let ran = strike(
        dir.path(),
        "rename-entry",
        &writer("entry", r#", "--no-handlers""#),
    );
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    let outcome = &case(&ran)["outcome"];
    assert_eq!(outcome["status"], "SIGTERM");
    assert_eq!(outcome["outputs"][0]["after"]["state"], "prior");
    let violations = &case(&ran)["violations"];
    assert_eq!(violations[0][0], "atomic-output", "{violations}");
    let evidence = violations[0][1][0].as_str().unwrap();
    assert!(
        evidence.starts_with("left behind: .out.json.tmp-")
            && evidence.ends_with(
                "the main process died of SIGTERM, a signal it could have caught to remove them"
            ),
        "{evidence}"
    );
    assert!(
        ran.stdout
            .contains("struck: SIGTERM at the entry of rename #1 to .out.json.tmp-"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_strike_reaches_the_thread_that_made_the_call() {
    let dir = scenario_dir();
    for (file, thread) in [("b.out", "writer-b"), ("a.out", "writer-a")] {
        let ran = strike(
            dir.path(),
            "threads",
            &format!(
                r#"command = ["{{bin:threads-writer}}", "--dir", "{{work}}", "--chunks", "16"]
[[strike]]
signal = "SIGTERM"
at = {{ syscall = "write", path = "{file}", nth = 3 }}
[expect]
interrupted = [14]
"#
            ),
        );
        assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
        let outcome = &case(&ran)["outcome"];
        assert_eq!(outcome["status"], 14);
        let stdout = outcome["stdout"]["text"].as_str().unwrap();
        assert!(
            stdout.contains(&format!("signal handled on {thread}\n")),
            "{stdout}"
        );
        let tid: i64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{thread} tid ")))
            .unwrap()
            .parse()
            .unwrap();
        let hit = &outcome["strikes"][0]["hit"];
        assert_eq!(hit["tid"], tid, "{hit}");
        assert_ne!(hit["pid"], tid, "a thread, not the main thread");
        assert_eq!(hit["what"]["paths"][0], file);
    }
}

#[test]
fn an_exit_strike_at_a_clone_fires_after_the_new_thread_is_reported() {
    // The clone's exit stop comes after the tracer has seen the new thread: the strike
    // must still land there, at the call main made.
    let dir = scenario_dir();
    let ran = strike(
        dir.path(),
        "clone-exit",
        r#"command = ["{bin:threads-writer}", "--dir", "{work}", "--chunks", "16"]
[[strike]]
signal = "SIGTERM"
at = { syscall = "fork", nth = 1, when = "exit" }
[expect]
interrupted = [14]
"#,
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let outcome = &case(&ran)["outcome"];
    assert_eq!(outcome["status"], 14, "{outcome}");
    let hit = &outcome["strikes"][0]["hit"];
    assert_eq!(hit["pid"], hit["tid"], "main made the call: {hit}");
    assert_eq!(hit["what"]["detail"], "thread");
    assert!(
        hit["what"]["result"].as_i64().unwrap() > 0,
        "the new thread's id: {hit}"
    );
    // glibc blocks every signal in the calling thread around clone, so the signal goes to
    // the process and whichever thread does not block it takes it.
    let stdout = outcome["stdout"]["text"].as_str().unwrap();
    assert!(stdout.contains("signal handled on "), "{stdout}");
}

#[test]
fn after_handler_strikes_only_once_the_handler_is_installed() {
    let dir = scenario_dir();
    let file = dir.path().join("after-handler.toml");
    fs::write(
        &file,
        r#"name = "after-handler"
command = ["{bin:atomic-writer}", "--output", "{work}/out.json", "--size", "256KiB"]
[[strike]]
signal = "SIGTERM"
at = { after_handler = "SIGTERM", after = "0ms" }
[expect]
interrupted = [14]
outputs = ["out.json"]
"#,
    )
    .unwrap();
    let ran = campaign(&[file.to_str().unwrap(), "--cases", "16", "--seed", "3"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("PASSED: 16 of 16 cases"),
        "{}",
        ran.stdout
    );
    for _ in 0..4 {
        let ran = repro(file.to_str().unwrap(), "9");
        let strike = &case(&ran)["outcome"]["strikes"][0];
        assert_eq!(strike["point"]["clock"]["handler"], "SIGTERM", "{strike}");
        assert_eq!(strike["caught"], true, "the handler existed: {strike}");
        let started = strike["clock_started_at"].as_f64().unwrap();
        assert!(strike["sent_at"].as_f64().unwrap() >= started, "{strike}");
        // The clock started when the tracer saw the rt_sigaction installing it return.
        let trace = &case(&ran)["outcome"]["trace"][0]["before"];
        let installed = trace
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["what"]["detail"] == "SIGTERM → handler")
            .unwrap_or_else(|| panic!("{trace}"));
        assert!(
            installed["at"].as_f64().unwrap() <= started,
            "{installed} {strike}"
        );
    }
}

#[test]
fn a_strike_reaches_the_child_process_that_made_the_call() {
    let dir = scenario_dir();
    let ran = strike(
        dir.path(),
        "fork",
        r#"command = ["{bin:fork-writer}", "--dir", "{work}", "--children", "2", "--chunks", "8"]
[[strike]]
signal = "SIGTERM"
at = { syscall = "write", path = "child-1.out", nth = 2 }
[expect]
interrupted = [3]
"#,
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let outcome = &case(&ran)["outcome"];
    assert_eq!(outcome["status"], 3, "one child was cancelled");
    let stdout = outcome["stdout"]["text"].as_str().unwrap();
    let child_pid = |i: usize, status: &str| -> i64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("child {i} (pid ")))
            .unwrap_or_else(|| panic!("child {i} in {stdout}"));
        assert!(line.ends_with(&format!("): {status}")), "{line}");
        line[format!("child {i} (pid ").len()..line.find(')').unwrap()]
            .parse()
            .unwrap()
    };
    child_pid(0, "exit 0");
    let struck = child_pid(1, "exit 14");
    let hit = &outcome["strikes"][0]["hit"];
    assert_eq!(hit["pid"], struck, "{hit}");
    assert_eq!(hit["tid"], struck);
    let main = outcome["trace"][0]["pid"].as_i64().unwrap();
    assert_ne!(main, struck, "the parent was not struck");
}

#[test]
fn repro_with_the_printed_case_reproduces_the_same_violation_20_of_20_times() {
    let dir = scenario_dir();
    let file = dir.path().join("rerun.toml");
    fs::write(
        &file,
        format!(
            "name = \"rerun\"\n{}",
            inplace(false, "SIGTERM", 1, "entry", "\"SIGTERM\"")
                .replace("nth = 1", "nth = \"1..\"")
        ),
    )
    .unwrap();
    // The campaign finds the bug, shrinks it and prints the command that reruns it.
    let found = campaign(&[file.to_str().unwrap(), "--seed", "424242", "--cases", "8"]);
    assert_eq!(found.code, 0, "caught as expected\n{}", found.stdout);
    let prefix = format!("rerun: killpoint repro {} --case ", file.display());
    let printed = found
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no rerun line in\n{}", found.stdout))
        .to_string();
    let reported = &found.json["scenarios"][0]["failure"];
    assert_eq!(reported["case_id"], printed.as_str());
    let mut seen = Vec::new();
    for _ in 0..20 {
        let ran = repro(file.to_str().unwrap(), &printed);
        assert_eq!(
            ran.code, 1,
            "the violation again\n{}{}",
            ran.stdout, ran.stderr
        );
        assert_eq!(ran.json["case"]["violations"], reported["violations"]);
        assert_eq!(ran.json["case"]["plan"], reported["plan"]);
        let outcome = &case(&ran)["outcome"];
        let strike = &outcome["strikes"][0];
        seen.push((
            strike["point"]["nth"].clone(),
            strike["hit"]["seq"].clone(),
            strike["hit"]["what"]["detail"].clone(),
            outcome["status"].clone(),
            outcome["outputs"][0]["after"]["size"].clone(),
            outcome["outputs"][0]["after"]["sha256"].clone(),
        ));
    }
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:#?}");
    // Every write shows the bug, so shrinking reached the first.
    assert_eq!(seen[0].0, 1, "{seen:#?}");
    assert_eq!(seen[0].4, 0, "killed before its first write: an empty file");
}

#[test]
fn trace_shows_the_writes_fsyncs_and_renames_of_a_python_program() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("trace.json");
    let code = "import os\n\
                with open('out.json.tmp', 'w') as f:\n\
                \x20   for i in range(5):\n\
                \x20       f.write('x' * 70000)\n\
                \x20       f.flush()\n\
                \x20   os.fsync(f.fileno())\n\
                os.rename('out.json.tmp', 'out.json')\n";
    let out = killpoint(
        &[
            "trace",
            "--json",
            json.to_str().unwrap(),
            "--",
            "python3",
            "-c",
            code,
        ],
        tmp.path(),
    )
    .current_dir(tmp.path())
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for row in [
        vec!["write", "5", "out.json.tmp"],
        vec!["fsync", "1", "out.json.tmp"],
        vec!["rename", "1", "out.json.tmp", "→", "out.json"],
    ] {
        assert!(rows.contains(&row), "no row {row:?} in\n{stdout}");
    }
    assert!(stdout.contains("→ exit 0 in"), "{stdout}");
    assert!(
        stdout.contains(
            r#"at = { syscall = "rename", path = "out.json", nth = "1", when = "entry" }"#
        ),
        "{stdout}"
    );
    assert_eq!(
        fs::metadata(tmp.path().join("out.json")).unwrap().len(),
        350_000
    );
    let report: Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let writes = report["syscalls"]["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "write" && c["paths"][0] == "out.json.tmp")
        .unwrap();
    assert_eq!(writes["count"], 5);
}

#[test]
fn under_another_tracer_syscall_strikes_fail_with_exit_2_and_delay_strikes_still_work() {
    let dir = scenario_dir();
    let syscall = dir.path().join("syscall.toml");
    fs::write(
        &syscall,
        format!(
            "name = \"syscall\"\n{}",
            inplace(true, "SIGTERM", 2, "entry", "14")
        ),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let me = env!("CARGO_BIN_EXE_killpoint");
    // `killpoint trace` traces killpoint itself, so its targets already have a tracer.
    let under_tracer = |args: &[&str]| {
        let mut all = vec!["trace", "--", me, "run"];
        all.extend_from_slice(args);
        let out = killpoint(&all, tmp.path()).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = under_tracer(&[syscall.to_str().unwrap(), "--cases", "2"]);
    assert_eq!(code, Some(0), "the trace itself ran\n{stdout}{stderr}");
    assert!(
        stdout.contains("→ exit 2 in"),
        "the inner run exits 2\n{stdout}"
    );
    assert!(
        stdout.contains("ERROR: cannot trace `")
            && stdout
                .contains("ptrace(PTRACE_TRACEME) failed: Operation not permitted (os error 1)")
            && stdout.contains("killpoint is itself being traced by pid "),
        "{stdout}"
    );
    let (code, stdout, stderr) = under_tracer(&["scenarios/atomic-writer.toml", "--cases", "4"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("PASSED: 4 of 4 cases"), "{stdout}");
    assert!(stdout.contains("→ exit 0 in"), "{stdout}");
}

/// The fork-signal stress (`scenarios/src/bin/fork-signal-stress.rs`) as a scenario: its
/// children each get a SIGTERM from it just after their fork. Traced, the census traps
/// every class a scenario may name and the case traps what a case does (the context
/// classes, fork among them, and `rt_sigaction` for a strike counted from a handler), with
/// signal handlers followed to their return; untraced, nothing is.
fn fork_signal_stress(children: u64, seed: u64, traced: bool) -> killpoint::Cases {
    let (strike, expect) = if traced {
        (r#"at = { syscall = "fork" }"#, "")
    } else {
        (r#"at = { after = "3600s" }"#, r#"handler_io = "off""#)
    };
    let text = format!(
        r#"name = "fork-signal-stress"
command = ["{{bin:fork-signal-stress}}", "--children", "{children}", "--seed", "{seed}"]
timeout = "120s"
[[strike]]
signal = "SIGTERM"
{strike}
[expect]
{expect}
"#
    );
    // Read as a file beside the scenarios crate, so that `{bin:…}` is found from there.
    let file = common::root()
        .join("scenarios")
        .join("fork-signal-stress.toml");
    let mut scenario = killpoint::Scenario::parse(&text, &file).unwrap();
    scenario.source = Some(file);
    scenario
        .prepare()
        .unwrap_or_else(|e| panic!("the uninterrupted run failed: {e}"))
}

/// What the stress prints when every signal did what it does untraced.
fn every_signal_accounted_for(children: u64) -> String {
    let k = children / 5;
    format!(
        "{children} children ({k} default, {k} handler, {k} thread, {k} exec, {k} spawn): {children} signals accounted for, 0 lost, 0 wrong\n"
    )
}

/// What the tracer saw of the stress's children: each got exactly one SIGTERM, caught by
/// the handler kind only, and ended as its kind says.
fn assert_one_sigterm_each(processes: &[killpoint::syscalls::TracedProcess], children: u64) {
    let main = processes[0].pid;
    let kids: Vec<_> = processes
        .iter()
        .filter(|p| p.parent == Some(main))
        .collect();
    assert_eq!(kids.len() as u64, children, "every child is in the tree");
    let mut endings = std::collections::BTreeMap::new();
    for kid in &kids {
        let signals: Vec<(String, bool)> = kid
            .signals
            .iter()
            .map(|d| (d.signal.to_string(), d.handled))
            .collect();
        let handled = kid.status.map(|s| s.to_string()) == Some("exit 3".into());
        assert_eq!(
            signals,
            vec![("SIGTERM".to_string(), handled)],
            "child {} ({})",
            kid.pid,
            kid.command
        );
        *endings
            .entry(kid.status.map(|s| s.to_string()).unwrap_or_default())
            .or_insert(0u64) += 1;
    }
    let k = children / 5;
    assert_eq!(
        endings,
        [
            ("exit 3".to_string(), k),
            ("killed by SIGTERM".to_string(), 4 * k)
        ]
        .into_iter()
        .collect()
    );
}

/// A signal that reaches a traced process does exactly what it does untraced, in the
/// window right after fork too: thousands of children, each sent a SIGTERM by its parent
/// at a drawn instant just after its fork (by kill or tgkill, at once or within 200 µs),
/// default, handled, threaded, exec'd or spawned, are each accounted for by the parent
/// (died of SIGTERM or ran the handler, never lost, never stopped) and seen by the tracer
/// to get that one SIGTERM. A SIGTERM sent to a thread can come before a new child's
/// initial SIGSTOP: that SIGSTOP is the tracer's to swallow, not a signal to pass on.
/// `KILLPOINT_STRESS_CHILDREN` sets the children per run (default 2000, three runs).
#[test]
fn every_signal_sent_just_after_a_fork_is_delivered_as_untraced() {
    let children: u64 = std::env::var("KILLPOINT_STRESS_CHILDREN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
        / 5
        * 5;
    let expected = every_signal_accounted_for(children);

    let untraced = fork_signal_stress(children, 1, false);
    let census = &untraced.census().run;
    assert_eq!(census.stdout.text, expected, "{}", census.stderr.text);
    assert_eq!(census.status.to_string(), "exit 0");
    assert!(census.processes.is_empty(), "the untraced run is untraced");

    let traced = fork_signal_stress(children, 2, true);
    let census = traced.census();
    assert_eq!(
        census.run.stdout.text, expected,
        "{}",
        census.run.stderr.text
    );
    assert_eq!(census.run.status.to_string(), "exit 0");
    assert_one_sigterm_each(&census.syscalls.as_ref().unwrap().processes, children);

    // As a case: the context classes and `rt_sigaction` trapped, no strike due.
    let plan = killpoint::Plan {
        strikes: vec![killpoint::plan::PlannedStrike {
            signal: killpoint::Signal::SIGTERM,
            to: killpoint::scenario::Recipient::Process,
            point: killpoint::plan::Point::Delay {
                after: std::time::Duration::from_secs(3600),
                clock: killpoint::plan::Clock::Handler(killpoint::Signal::SIGTERM),
            },
            process: None,
            power: false,
        }],
    };
    let case = traced.run(&plan).unwrap();
    let outcome = &case.outcome;
    assert_eq!(outcome.stdout.text, expected, "{}", outcome.stderr.text);
    assert_eq!(outcome.status.to_string(), "exit 0");
    assert_eq!(outcome.strikes[0].sent_at, None, "no strike came");
    assert_one_sigterm_each(&outcome.processes, children);
}

#[test]
fn trace_shows_copies_links_and_directories_made() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("in.txt"), "x".repeat(100_000)).unwrap();
    let out = killpoint(
        &[
            "trace",
            "--",
            "sh",
            "-c",
            "mkdir d && cp in.txt d/copy.txt && ln d/copy.txt hard.txt && ln -s in.txt soft.txt",
        ],
        tmp.path(),
    )
    .current_dir(tmp.path())
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for row in [
        vec!["mkdir", "1", "d"],
        vec!["copy", "2", "in.txt", "→", "d/copy.txt"],
        vec!["link", "1", "d/copy.txt", "→", "hard.txt"],
        vec!["link", "1", "in.txt", "→", "soft.txt"],
    ] {
        assert!(rows.contains(&row), "no row {row:?} in\n{stdout}");
    }
}

#[test]
fn a_copy_strike_on_cp_finds_the_destination_it_truncated_in_place() {
    let dir = scenario_dir();
    // cp onto an existing file opens it with O_TRUNC and moves the data with
    // copy_file_range: struck there, the prior content is gone and the copy not made.
    let ran = strike(
        dir.path(),
        "cp-copy",
        &format!(
            r#"command = ["cp", "in.txt", "out.txt"]
[setup]
"in.txt" = "{}"
"out.txt" = "prior\n"
[[strike]]
signal = "SIGTERM"
at = {{ syscall = "copy", path = "out.txt", nth = 1 }}
[expect]
outputs = ["out.txt"]
interrupted = ["SIGTERM"]
violation = "atomic-output"
"#,
            "y".repeat(50_000)
        ),
    );
    // repro exits 1 for a violation, declared or not.
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    let outcome = &case(&ran)["outcome"];
    let hit = &outcome["strikes"][0]["hit"]["what"];
    assert_eq!(hit["name"], "copy_file_range", "{hit}");
    assert_eq!(hit["paths"][0], "in.txt");
    assert_eq!(hit["paths"][1], "out.txt");
    assert_eq!(
        outcome["outputs"][0]["after"]["state"], "other",
        "{outcome}"
    );
    assert!(
        ran.stdout
            .contains("out.txt is empty: truncated to 0 of the complete 50000 bytes"),
        "{}",
        ran.stdout
    );
}

/// A three-process tree of three programs, each appending three records to a file of its
/// own, one `write` each: the main process (Python) two to `main.out` before it starts
/// its children, a `sh` child (in a process group of its own with `--own-group`) and a
/// `perl` child at the same time, then its third. It prints how each child ended and
/// exits 3 if a signal killed one.
const THREE_WRITERS: &str = r#"import os, subprocess, sys

def append(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, text.encode())
    os.close(fd)

append("main.out", "main 1\n")
append("main.out", "main 2\n")
children = [
    ("sh", subprocess.Popen(["sh", "-c", 'for i in 1 2 3; do echo "sh $i" >> sh.out; done'],
                            process_group=0 if "--own-group" in sys.argv else None)),
    ("perl", subprocess.Popen(["perl", "-e", 'open(my $f, ">>", "perl.out") or die; syswrite($f, "perl $_\n") for 1..3'])),
]
codes = [(name, child.pid, child.wait()) for name, child in children]
append("main.out", "main 3\n")
for name, pid, code in codes:
    print(f"{name} pid {pid}: {code}")
sys.exit(3 if any(code < 0 for _, _, code in codes) else 0)
"#;

/// The traced process of `outcome` whose program is `program`.
fn process_running<'a>(outcome: &'a Value, program: &str) -> &'a Value {
    let processes = outcome["processes"].as_array().unwrap();
    let found: Vec<&Value> = processes
        .iter()
        .filter(|p| p["program"] == program)
        .collect();
    assert_eq!(found.len(), 1, "one {program} process in {processes:#?}");
    found[0]
}

/// The done-when test of `process`: a syscall strike limited to one program of a
/// three-process tree counts only that program's calls and signals only it.
#[test]
fn a_syscall_strike_limited_to_a_program_lands_at_its_own_nth_call_and_strikes_only_it() {
    let dir = scenario_dir();
    fs::write(dir.path().join("three_writers.py"), THREE_WRITERS).unwrap();
    let ran = strike(
        dir.path(),
        "three-writers",
        r#"command = ["{python}", "{dir}/three_writers.py"]
[requires]
perl = "perl-base"
[[strike]]
signal = "SIGTERM"
process = "sh"
at = { syscall = "write", path = "*.out", nth = 2 }
[expect]
interrupted = [3]
"#,
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let case = case(&ran);
    let outcome = &case["outcome"];
    assert_eq!(outcome["status"], 3, "{outcome}");
    let stdout = outcome["stdout"]["text"].as_str().unwrap();
    let pid_of = |name: &str, code: &str| -> i64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} pid ")))
            .unwrap_or_else(|| panic!("{name} in {stdout}"));
        assert!(line.ends_with(&format!(": {code}")), "{line}");
        line[format!("{name} pid ").len()..line.find(':').unwrap()]
            .parse()
            .unwrap()
    };
    let sh = pid_of("sh", "-15");
    let perl = pid_of("perl", "0");

    // The plan carries the process, and so does what became of the strike.
    assert_eq!(
        case["plan"]["strikes"][0]["process"], "sh",
        "{}",
        case["plan"]
    );
    let strike = &outcome["strikes"][0];
    assert_eq!(strike["process"], "sh");
    assert_eq!(strike["struck"]["pid"], sh, "{strike}");
    assert_eq!(strike["struck"]["program"], "sh", "{strike}");
    let hit = &strike["hit"];
    assert_eq!(hit["pid"], sh, "the call sh made: {hit}");
    assert_eq!(hit["what"]["name"], "write");
    assert_eq!(hit["what"]["paths"][0], "sh.out");
    assert!(strike["sent_at"].is_number(), "{strike}");

    // sh died just before its second record; the others wrote all of theirs, the main
    // process its two before the children (the tree's first and second writes to *.out).
    let sandbox = Path::new(case["sandbox"].as_str().unwrap());
    let read = |name: &str| fs::read_to_string(sandbox.join(name)).unwrap();
    assert_eq!(read("sh.out"), "sh 1\n");
    assert_eq!(read("perl.out"), "perl 1\nperl 2\nperl 3\n");
    assert_eq!(read("main.out"), "main 1\nmain 2\nmain 3\n");

    // Only sh was signalled: the tracer saw one SIGTERM delivered to it, none to the
    // others (SIGCHLD aside).
    let sh_traced = process_running(outcome, "sh");
    assert_eq!(sh_traced["pid"], sh);
    assert_eq!(sh_traced["status"], "SIGTERM");
    let signals = sh_traced["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!(signals[0]["signal"], "SIGTERM");
    assert_eq!(signals[0]["handled"], false);
    let perl_traced = process_running(outcome, "perl");
    assert_eq!(perl_traced["pid"], perl);
    assert_eq!(perl_traced["status"], 0);
    assert!(perl_traced.get("signals").is_none(), "{perl_traced}");
    let main = &outcome["processes"][0];
    assert!(main["parent"].is_null(), "{main}");
    assert!(
        main["program"].as_str().unwrap().starts_with("python"),
        "{main}"
    );
    assert!(main.get("signals").is_none(), "{main}");

    assert!(
        ran.stdout
            .contains("plan: SIGTERM at the entry of write #2 to *.out in `sh`"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains(&format!(
            "  struck: SIGTERM at the entry of write #2 to sh.out (5 bytes at offset 0), in pid {sh} (sh)\n"
        )),
        "{}",
        ran.stdout
    );
}

/// Runs `true` to its end, starts two `cat`s one after the other, each echoing a line
/// back (a real event after its exec: the tracer has seen the exec by then; a `cat`
/// struck first echoes nothing), installs a SIGTERM handler (a no-op) and makes the probe
/// mark `go`: every delay strike due by then has been dealt with when it returns. Then
/// it ends each `cat`'s input and prints how each ended.
const TWO_CATS: &str = r#"import os, signal, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import killpoint_probe

subprocess.run(["true"], check=True)
cats = []
for i in (1, 2):
    cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = f"cat {i}\n".encode()
    try:
        cat.stdin.write(line)
        cat.stdin.flush()
    except BrokenPipeError:
        pass
    cat.stdout.readline()
    cats.append(cat)
signal.signal(signal.SIGTERM, lambda *_: None)
killpoint_probe.mark("go")
for i, cat in enumerate(cats, 1):
    try:
        cat.stdin.close()
    except BrokenPipeError:
        pass
    cat.stdout.read()
    print(f"cat {i} pid {cat.pid}: {cat.wait()}")
"#;

/// The two-`cat` target as a scenario with these strike entries, prepared: its census run.
fn two_cats(dir: &Path, strikes: &str) -> killpoint::Cases {
    fs::write(dir.join("two_cats.py"), TWO_CATS).unwrap();
    let file = dir.join("two-cats.toml");
    let text = format!(
        r#"name = "two-cats"
command = ["{{python}}", "{{dir}}/two_cats.py"]
{strikes}
[expect]
interrupted = [0]
"#
    );
    let mut scenario = killpoint::Scenario::parse(&text, &file).unwrap();
    scenario.source = Some(file);
    scenario
        .prepare()
        .unwrap_or_else(|e| panic!("the uninterrupted run failed: {e}"))
}

/// One SIGTERM after `after`, counted from `clock`, to `process`.
fn delay_plan(clock: killpoint::plan::Clock, process: &str) -> killpoint::Plan {
    killpoint::Plan {
        strikes: vec![killpoint::plan::PlannedStrike {
            signal: killpoint::Signal::SIGTERM,
            to: killpoint::scenario::Recipient::Process,
            point: killpoint::plan::Point::Delay {
                after: std::time::Duration::ZERO,
                clock,
            },
            process: Some(process.parse().unwrap()),
            power: false,
        }],
    }
}

/// The pid and status the two-`cat` target printed for cat `i`.
fn cat_ended(outcome: &killpoint::Outcome, i: usize) -> (i32, String) {
    let prefix = format!("cat {i} pid ");
    let line = outcome
        .stdout
        .text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("cat {i} in {}", outcome.stdout.text));
    let (pid, status) = line.split_once(": ").unwrap();
    (pid.parse().unwrap(), status.to_string())
}

#[test]
fn a_delay_strike_limited_to_a_program_hits_the_first_of_its_processes_alive() {
    let dir = scenario_dir();
    let cases = two_cats(
        dir.path(),
        r#"[[strike]]
signal = "SIGTERM"
process = "cat"
at = { after = "0ms" }
[[strike]]
signal = "SIGTERM"
process = "true"
at = { after = "0ms" }"#,
    );
    let handler = killpoint::plan::Clock::Handler(killpoint::Signal::SIGTERM);

    // Due once the SIGTERM handler is in place: both cats are alive, waiting for their
    // input, and the first one started is struck.
    let case = cases.run(&delay_plan(handler.clone(), "cat")).unwrap();
    let outcome = &case.outcome;
    assert!(case.held(), "{}", cases.text(&case));
    let (first, first_status) = cat_ended(outcome, 1);
    let (second, second_status) = cat_ended(outcome, 2);
    assert_eq!(
        (first_status.as_str(), second_status.as_str()),
        ("-15", "0")
    );
    let record = &outcome.strikes[0];
    assert!(record.sent_at.is_some() && !record.unmatched, "{record:?}");
    let struck = record.struck.as_ref().unwrap();
    assert_eq!((struck.pid, struck.program.as_str()), (first, "cat"));
    let traced = |pid: i32| outcome.processes.iter().find(|p| p.pid == pid).unwrap();
    let signals = |pid: i32| -> Vec<String> {
        traced(pid)
            .signals
            .iter()
            .map(|d| d.signal.to_string())
            .collect()
    };
    assert_eq!(signals(first), ["SIGTERM"]);
    assert_eq!(signals(second), Vec::<String>::new());
    assert_eq!(signals(outcome.processes[0].pid), Vec::<String>::new());
    assert!(traced(first).started_at < traced(second).started_at);
    let text = cases.text(&case);
    let struck_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("struck: SIGTERM at "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        struck_line.ends_with(&format!(
            " ms, pid {first} (cat), the first `cat` process alive"
        )),
        "{text}"
    );

    // `true` ran and ended before the handler was installed: no process of it is alive
    // when the strike is due, so it is not sent, and says why.
    let case = cases.run(&delay_plan(handler, "true")).unwrap();
    let outcome = &case.outcome;
    let record = &outcome.strikes[0];
    assert!(record.unmatched, "{record:?}");
    assert_eq!((record.sent_at, &record.struck), (None, &None));
    assert_eq!(case.summary().landed, 0);
    assert_eq!(cat_ended(outcome, 1).1, "0");
    assert_eq!(cat_ended(outcome, 2).1, "0");
    assert!(outcome.processes.iter().all(|p| p.signals.is_empty()));
    assert!(
        cases
            .text(&case)
            .contains("not struck: no `true` process was alive when it was due"),
        "{}",
        cases.text(&case)
    );
}

#[test]
fn a_delay_after_exec_counts_from_the_first_exec_of_the_program() {
    let dir = scenario_dir();
    let cases = two_cats(
        dir.path(),
        r#"[[strike]]
signal = "SIGTERM"
process = "cat"
at = { after_exec = "cat", after = "0ms" }"#,
    );
    let exec = killpoint::plan::Clock::Exec("cat".parse().unwrap());
    let case = cases.run(&delay_plan(exec, "cat")).unwrap();
    let outcome = &case.outcome;
    assert!(case.held(), "{}", cases.text(&case));
    let (first, status) = cat_ended(outcome, 1);
    assert_eq!(status, "-15");
    assert_eq!(cat_ended(outcome, 2).1, "0");
    let record = &outcome.strikes[0];
    assert_eq!(record.struck.as_ref().unwrap().pid, first);
    // The clock started at the first cat's exec: after `true` had come and gone, after
    // the first cat was forked, no later than the exec event the tracer recorded.
    let started = record.clock_started_at.unwrap();
    let traced = |program: &str| -> Vec<&killpoint::syscalls::TracedProcess> {
        outcome
            .processes
            .iter()
            .filter(|p| p.program == program)
            .collect()
    };
    let true_ended = traced("true")[0].exited_at.unwrap();
    let cat = traced("cat")[0];
    assert_eq!(cat.pid, first, "the first cat started");
    assert!(true_ended <= started, "{true_ended:?} {started:?}");
    assert!(
        cat.started_at <= started,
        "{:?} {started:?}",
        cat.started_at
    );
    let exec_event = outcome
        .trace
        .iter()
        .find(|p| p.pid == first)
        .and_then(|p| {
            // Before the first strike, or just after it: the strike may be sent before
            // the tracer has written the exec down.
            p.before
                .iter()
                .chain(&p.after)
                .find(|e| matches!(e.what, killpoint::syscalls::What::Exec { .. }))
        })
        .unwrap_or_else(|| panic!("cat's exec in {:#?}", outcome.trace));
    assert!(started <= exec_event.at, "{started:?} {:?}", exec_event.at);
    assert!(record.sent_at.unwrap() >= started);
    assert_eq!(
        case.plan.to_string(),
        "SIGTERM to the first `cat` process alive 0.000 ms after the first exec of `cat`"
    );
}

/// `to = "group"` with `process`: the group of the process struck. A `sh` in a group of
/// its own takes the signal alone; one in the target's group takes it with the whole tree.
#[test]
fn a_group_strike_limited_to_a_program_goes_to_that_processs_own_group() {
    let dir = scenario_dir();
    fs::write(dir.path().join("three_writers.py"), THREE_WRITERS).unwrap();
    let scenario = |args: &str| {
        format!(
            r#"command = ["{{python}}", "{{dir}}/three_writers.py"{args}]
[requires]
perl = "perl-base"
[[strike]]
signal = "SIGTERM"
process = "sh"
to = "group"
at = {{ syscall = "write", path = "sh.out", nth = 2 }}
[expect]
interrupted = [3]
"#
        )
    };
    let ran = strike(dir.path(), "own-group", &scenario(r#", "--own-group""#));
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let outcome = &case(&ran)["outcome"];
    assert_eq!(outcome["status"], 3, "{outcome}");
    let sh = process_running(outcome, "sh");
    assert_eq!(sh["status"], "SIGTERM");
    assert_eq!(outcome["strikes"][0]["struck"]["pid"], sh["pid"]);
    assert!(process_running(outcome, "perl").get("signals").is_none());
    assert!(outcome["processes"][0].get("signals").is_none());
    assert!(
        ran.stdout.contains(
            "plan: SIGTERM to the process group of the `sh` process at the entry of write #2 to sh.out in `sh`"
        ),
        "{}",
        ran.stdout
    );

    // In the target's group, the main process takes it too, and dies of it.
    let ran = strike(dir.path(), "shared-group", &scenario(""));
    assert_eq!(ran.code, 1, "exit-code: {}{}", ran.stdout, ran.stderr);
    let outcome = &case(&ran)["outcome"];
    assert_eq!(outcome["status"], "SIGTERM", "{outcome}");
    assert_eq!(process_running(outcome, "sh")["status"], "SIGTERM");
    let main = &outcome["processes"][0];
    assert_eq!(main["signals"][0]["signal"], "SIGTERM", "{main}");
}

/// A failure found in one program's calls shrinks within them, is recorded with them, and
/// reruns there: the plan carries the process.
#[test]
fn a_failure_in_one_programs_calls_shrinks_is_recorded_and_reproduces_in_that_program() {
    let dir = scenario_dir();
    fs::write(dir.path().join("three_writers.py"), THREE_WRITERS).unwrap();
    let file = dir.path().join("sh-out.toml");
    fs::write(
        &file,
        r#"name = "sh-out"
command = ["{python}", "{dir}/three_writers.py"]
[requires]
perl = "perl-base"
[[strike]]
signal = "SIGTERM"
process = "sh"
at = { syscall = "write", path = "*.out" }
[expect]
interrupted = [3]
outputs = ["sh.out"]
"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    // Two cases of sh's three writes: sampled, so the failure is seeded and shrunk. Every
    // write shows sh.out torn (`>>` creates it first), so shrinking reaches write #1.
    let found = campaign(&[file, "--seed", "3", "--cases", "2"]);
    assert_eq!(found.code, 1, "{}{}", found.stdout, found.stderr);
    let failure = &found.json["scenarios"][0]["failure"];
    let minimal = failure["case_id"].as_str().unwrap();
    let plan = &failure["plan"]["strikes"][0];
    assert_eq!(plan["process"], "sh", "{plan}");
    assert_eq!(plan["point"]["nth"], 1, "{plan}");
    let original = found.json["scenarios"][0]["shrink"]["from"]
        .as_str()
        .unwrap();
    assert_ne!(original, minimal, "it was shrunk");
    let regressions = fs::read_to_string(dir.path().join("sh-out.regressions")).unwrap();
    assert!(
        regressions.contains(&format!(
            "\n{minimal} # shrinks to: SIGTERM at the entry of write #1 to *.out in `sh` (atomic-output)\n"
        )),
        "{regressions}"
    );
    let ran = repro(file, minimal);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    let case = case(&ran);
    assert_eq!(case["plan"], failure["plan"]);
    assert_eq!(case["violations"], failure["violations"]);
    let strike = &case["outcome"]["strikes"][0];
    assert_eq!(strike["struck"]["program"], "sh", "{strike}");
    assert_eq!(strike["hit"]["what"]["paths"][0], "sh.out", "{strike}");
    let sandbox = Path::new(case["sandbox"].as_str().unwrap());
    assert_eq!(fs::read_to_string(sandbox.join("sh.out")).unwrap(), "");
}
