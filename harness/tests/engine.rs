//! End-to-end tests of the property engine: seeds, shrinking, the regressions file,
//! exhaustive mode and parallel cases, against real targets under the tracer.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

mod common;
use common::{campaign, interrupt, killpoint, scenario_dir};

const INDEX: &str = "scenarios/atomic-writer-index-inplace.toml";

/// The syscall strike of a plan: (signal, syscall, nth, when).
fn point(plan: &Value) -> (String, String, u64, String) {
    let strike = &plan["strikes"][0];
    let p = &strike["point"];
    (
        strike["signal"].as_str().unwrap().into(),
        p["syscall"].as_str().unwrap().into(),
        p["nth"].as_u64().unwrap(),
        p["when"].as_str().unwrap().into(),
    )
}

/// How many calls of `class` the census made, and how many of them named `path`.
fn census_count(scenario: &Value, class: &str, path: Option<&str>) -> u64 {
    scenario["census"]["syscalls"]["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["class"] == class)
        .filter(|c| path.is_none_or(|p| c["paths"].as_array().unwrap().iter().any(|x| x == p)))
        .map(|c| c["count"].as_u64().unwrap())
        .sum()
}

/// The index writer's bug shows only at its last four writes (the index, in place).
/// Whatever late write a seed first fails at, shrinking ends at the index's first write,
/// with the plainest signal, at its entry — and the plan one write earlier holds.
#[test]
fn a_failure_at_a_late_write_shrinks_to_the_earliest_write_that_still_shows_it() {
    let mut shrunk_from_later = 0;
    for seed in ["5", "6", "7"] {
        let ran = campaign(&[INDEX, "--seed", seed, "--jobs", "2"]);
        assert_eq!(ran.code, 0, "caught as expected\n{}", ran.stdout);
        let scenario = &ran.json["scenarios"][0];
        let writes = census_count(scenario, "write", None);
        let index_writes = census_count(scenario, "write", Some("out.json.idx"));
        assert_eq!((writes, index_writes), (20, 4), "the census: 16 + 4 writes");
        let first_index_write = writes - index_writes + 1;
        let failure = &scenario["failure"];
        assert_eq!(
            point(&failure["plan"]),
            (
                "SIGTERM".into(),
                "write".into(),
                first_index_write,
                "entry".into()
            ),
            "seed {seed}\n{}",
            ran.stdout
        );
        let shrink = &scenario["shrink"];
        let from = point(&shrink["from_plan"]);
        assert!(
            from.2 >= first_index_write,
            "it failed at an index write: {from:?}"
        );
        if from.2 > first_index_write {
            shrunk_from_later += 1;
            assert!(shrink["steps"].as_u64().unwrap() >= 1, "{shrink}");
        }
        assert_eq!(shrink["stopped"], "minimal");
        assert!(
            ran.stdout.contains(&format!(
                "    shrunk from: {} (case {})\n",
                plan_text(&from),
                shrink["from"].as_str().unwrap()
            )),
            "{}",
            ran.stdout
        );
        // One write earlier (the temp file's last), the writer is fine.
        let earlier = ran.json["scenarios"][0]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| point(&c["plan"]).2 < first_index_write)
            .all(|c| c["violated"].as_array().unwrap().is_empty());
        assert!(earlier, "no write before the index's fails");
    }
    assert!(
        shrunk_from_later >= 1,
        "at least one seed failed later than write #17"
    );
}

fn plan_text((signal, syscall, nth, when): &(String, String, u64, String)) -> String {
    format!("{signal} at the {when} of {syscall} #{nth}")
}

/// The plans and verdicts of every case up to and including the reported one.
fn verdicts(ran: &common::Ran) -> Value {
    let scenario = &ran.json["scenarios"][0];
    let last = scenario["failure"]["case_index"]
        .as_u64()
        .unwrap_or(u64::MAX);
    let cases: Vec<Value> = scenario["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["index"].as_u64().unwrap() <= last)
        .cloned()
        .collect();
    serde_json::json!({
        "result": scenario["result"],
        "case_id": scenario["failure"]["case_id"],
        "plan": scenario["failure"]["plan"],
        "violations": scenario["failure"]["violations"][0][0],
        "shrunk_from": scenario["shrink"]["from"],
        "cases": cases,
    })
}

#[test]
fn the_same_seed_gives_the_same_plans_and_verdicts_with_one_job_or_two() {
    // A correct scenario sampled (30 of its 56 points): every case runs.
    let args = |seed: &'static str, jobs: &'static str| {
        [
            "scenarios/atomic-writer-syscalls.toml",
            "--cases",
            "30",
            "--seed",
            seed,
            "--jobs",
            jobs,
        ]
    };
    let one = campaign(&args("21", "1"));
    let two = campaign(&args("21", "2"));
    assert_eq!(one.code, 0, "{}", one.stdout);
    assert_eq!(
        one.json["scenarios"][0]["cases"].as_array().unwrap().len(),
        30
    );
    assert_eq!(verdicts(&one), verdicts(&two));
    let other = campaign(&args("22", "2"));
    let plans = |ran: &common::Ran| -> Vec<Value> {
        ran.json["scenarios"][0]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["plan"].clone())
            .collect()
    };
    assert_ne!(plans(&one), plans(&other), "another seed, other plans");
    // A planted bug: the same first failure, the same shrinking, with either.
    let one = campaign(&[INDEX, "--seed", "9", "--jobs", "1"]);
    let two = campaign(&[INDEX, "--seed", "9", "--jobs", "2"]);
    assert_eq!(one.code, 0, "{}", one.stdout);
    assert_eq!(verdicts(&one), verdicts(&two));
}

/// The index scenario without its expectation, so that its bug is a failure to record.
fn unexpected_index_bug(dir: &Path, pace: Option<&str>) -> PathBuf {
    let text = fs::read_to_string(common::root().join(INDEX))
        .unwrap()
        .replace("violation = \"atomic-output\"\n", "");
    let text = match pace {
        Some(pace) => text.replace(
            "\"--bug\", \"index-inplace\"]",
            &format!("\"--bug\", \"index-inplace\", \"--pace\", \"{pace}\"]"),
        ),
        None => text,
    };
    let file = dir.join("index.toml");
    fs::write(&file, text).unwrap();
    file
}

fn case_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(" # ").next().unwrap().to_string())
        .collect()
}

#[test]
fn a_regressions_entry_is_replayed_first_and_catches_the_bug_in_case_1() {
    let dir = scenario_dir();
    let file = unexpected_index_bug(dir.path(), None);
    let file = file.to_str().unwrap();
    let regressions = dir.path().join("index.regressions");

    let found = campaign(&[file, "--seed", "5"]);
    assert_eq!(found.code, 1, "an unexpected violation\n{}", found.stdout);
    let scenario = &found.json["scenarios"][0];
    let original = scenario["shrink"]["from"].as_str().unwrap();
    let minimal = scenario["failure"]["case_id"].as_str().unwrap();
    assert_ne!(original, minimal, "it was shrunk");
    assert_eq!(case_lines(&regressions), [original, minimal]);
    let text = fs::read_to_string(&regressions).unwrap();
    assert!(
        text.contains(&format!(
            "{minimal} # shrinks to: SIGTERM at the entry of write #17 (atomic-output)\n"
        )),
        "{text}"
    );

    // No new cases: only the file's, and the first of them is caught at once.
    let replayed = campaign(&[file, "--seed", "6", "--cases", "0", "--jobs", "1"]);
    assert_eq!(replayed.code, 1, "{}", replayed.stdout);
    let scenario = &replayed.json["scenarios"][0];
    assert_eq!(scenario["regressions_replayed"], 2);
    assert_eq!(scenario["cases"][0]["id"], original);
    assert_eq!(scenario["failure"]["case_index"], 0, "{}", replayed.stdout);
    assert_eq!(
        scenario["failure"]["case_id"], minimal,
        "shrunk to the same plan"
    );
    assert!(
        replayed.stdout.contains(
            "at case 1 (1 of 2 cases run, 2 from the regressions file, tried 1 of 80 points)"
        ),
        "{}",
        replayed.stdout
    );
    assert_eq!(case_lines(&regressions).len(), 2, "nothing recorded twice");

    // An entry that no longer names a plan is noted and skipped, not an error.
    fs::write(&regressions, format!("p999 # stale\n{minimal}\n")).unwrap();
    let stale = campaign(&[file, "--cases", "0", "--jobs", "1"]);
    assert_eq!(stale.code, 1, "{}", stale.stdout);
    assert!(
        stale
            .stdout
            .contains("  note: case p999 names no point: the strike space has 80 points now\n"),
        "{}",
        stale.stdout
    );
    assert_eq!(stale.json["scenarios"][0]["failure"]["case_index"], 1);

    // Without the file there is nothing to run, and nothing fails.
    let without = campaign(&[file, "--seed", "6", "--cases", "0", "--no-regressions"]);
    assert_eq!(without.code, 0, "{}", without.stdout);
    assert_eq!(without.json["scenarios"][0]["cases_run"], 0);

    // The case id a report prints, given as the seed, runs first.
    let mut command = killpoint(
        &["run", file, "--cases", "0", "--no-regressions"],
        dir.path(),
    );
    command.env("KILLPOINT_SEED", minimal);
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("rerun: killpoint repro {file} --case {minimal}\n")),
        "{stdout}"
    );
}

/// A failing case is in the regressions file while the campaign is still shrinking it:
/// interrupting killpoint then loses nothing, and leaves nothing behind.
#[test]
fn a_failure_is_recorded_before_shrinking_and_survives_an_interrupt() {
    let dir = scenario_dir();
    // A failing case to start from, found fast.
    let fast = unexpected_index_bug(dir.path(), None);
    let found = campaign(&[fast.to_str().unwrap(), "--seed", "5", "--no-regressions"]);
    let original = found.json["scenarios"][0]["shrink"]["from"]
        .as_str()
        .unwrap()
        .to_string();
    // The same scenario, 50 ms between writes: a run takes up to a second, and shrinking
    // several.
    let slow = unexpected_index_bug(dir.path(), Some("50ms"));
    let regressions = dir.path().join("index.regressions");
    let tmp = tempfile::tempdir().unwrap();
    let mut child = killpoint(&["run", slow.to_str().unwrap(), "--jobs", "1"], tmp.path())
        .env("KILLPOINT_SEED", &original)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The file appears when case 1 fails, before any shrinking: wait for it.
    while case_lines(&regressions).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "killpoint ended before recording"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(child.try_wait().unwrap().is_none(), "still shrinking");
    assert_eq!(case_lines(&regressions), [original.as_str()]);
    let (status, stdout) = interrupt(child);
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(
        stdout.contains("found before the stop: a violation of atomic-output at case 1"),
        "{stdout}"
    );
    assert_eq!(case_lines(&regressions), [original.as_str()], "kept, once");
    let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "no sandbox left: {left:?}");
}

#[test]
fn exhaustive_mode_tries_every_write_fsync_and_rename_point_once() {
    let dir = scenario_dir();
    let file = dir.path().join("every.toml");
    fs::write(
        &file,
        r#"name = "every"
command = ["{bin:atomic-writer}", "--output", "{work}/out.json", "--size", "1MiB"]
[setup]
"out.json" = "prior\n"
[[strike]]
signal = ["SIGKILL", "SIGTERM"]
at = { syscall = "write", path = ".out.json.tmp-*", when = "both" }
[[strike]]
signal = ["SIGKILL", "SIGTERM"]
at = { syscall = "fsync", when = "both" }
[[strike]]
signal = ["SIGKILL", "SIGTERM"]
at = { syscall = "rename", when = "both" }
[expect]
interrupted = [14]
outputs = ["out.json"]
"#,
    )
    .unwrap();
    let ran = campaign(&[file.to_str().unwrap(), "--exhaustive", "--seed", "1"]);
    assert_eq!(
        ran.code, 0,
        "the correct writer holds everywhere\n{}",
        ran.stdout
    );
    let scenario = &ran.json["scenarios"][0];
    let counts = [
        ("write", census_count(scenario, "write", None)),
        ("fsync", census_count(scenario, "fsync", None)),
        ("rename", census_count(scenario, "rename", None)),
    ];
    assert_eq!(counts, [("write", 16), ("fsync", 2), ("rename", 1)]);
    let mut expected = Vec::new();
    for (syscall, count) in counts {
        for signal in ["SIGTERM", "SIGKILL"] {
            for nth in 1..=count {
                for when in ["entry", "exit"] {
                    expected.push((
                        signal.to_string(),
                        syscall.to_string(),
                        nth,
                        when.to_string(),
                    ));
                }
            }
        }
    }
    assert_eq!(expected.len(), 76);
    let cases = scenario["cases"].as_array().unwrap();
    let tried: Vec<_> = cases.iter().map(|c| point(&c["plan"])).collect();
    assert_eq!(
        tried, expected,
        "every point once, in order: plainest signal, nth, entry first"
    );
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(case["id"], format!("p{i}"));
        assert_eq!(case["landed"], 1, "the strike landed: {case}");
    }
    assert_eq!(
        scenario["coverage"],
        serde_json::json!({"tried": 76, "total": 76, "exhaustive": true})
    );
    assert!(
        ran.stdout
            .contains("PASSED: 76 of 76 cases run, tried 76/76 points (exhaustive)"),
        "{}",
        ran.stdout
    );

    // Over the limit, or over delays, exhaustive mode refuses with a reason.
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, format!("exhaustive_limit = 50\n{text}")).unwrap();
    let ran = campaign(&[file.to_str().unwrap(), "--exhaustive"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stdout.contains(
            "ERROR: the strike space has 76 points, more than the exhaustive limit of 50"
        ),
        "{}",
        ran.stdout
    );
    let ran = campaign(&["scenarios/atomic-writer.toml", "--exhaustive"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stdout.contains("ERROR: exhaustive mode tries every syscall point, but this scenario strikes after delays"),
        "{}",
        ran.stdout
    );
}

/// With `max_strikes`, a plan may hold several strikes; a later one counts its calls from
/// the strike before it: "SIGTERM at write #3 to the temp file, then SIGINT at the next
/// write" lands on the cancelled writer's message to stderr.
#[test]
fn a_later_strike_counts_its_calls_from_the_strike_before_it() {
    let dir = scenario_dir();
    let file = dir.path().join("two.toml");
    fs::write(
        &file,
        r#"name = "two"
command = ["{bin:atomic-writer}", "--output", "{work}/out.json", "--size", "1MiB"]
max_strikes = 2
[[strike]]
signal = "SIGTERM"
at = { syscall = "write", path = ".out.json.tmp-*", nth = 3 }
[[strike]]
signal = "SIGINT"
at = { syscall = "write", nth = 1 }
[expect]
interrupted = [14]
outputs = ["out.json"]
"#,
    )
    .unwrap();
    let ran = campaign(&[file.to_str().unwrap(), "--cases", "40", "--seed", "3"]);
    assert_eq!(ran.code, 0, "{}", ran.stdout);
    let both = ran.json["scenarios"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            let strikes = c["plan"]["strikes"].as_array().unwrap();
            strikes.len() == 2
                && strikes[0]["signal"] == "SIGTERM"
                && strikes[1]["signal"] == "SIGINT"
        })
        .unwrap_or_else(|| panic!("a plan of both, in order, among 40: {}", ran.stdout))
        .clone();
    assert_eq!(both["landed"], 2, "{both}");
    let again = common::repro(file.to_str().unwrap(), both["id"].as_str().unwrap());
    assert_eq!(again.code, 0, "{}", again.stdout);
    let strikes = &again.json["case"]["outcome"]["strikes"];
    let (first, second) = (&strikes[0]["hit"], &strikes[1]["hit"]);
    assert!(
        first["what"]["paths"][0]
            .as_str()
            .unwrap()
            .starts_with(".out.json.tmp-"),
        "{first}"
    );
    assert_eq!(second["what"]["paths"][0], "<stderr>", "{second}");
    assert!(second["seq"].as_u64() > first["seq"].as_u64());
    assert!(
        again.stdout.contains("plan: SIGTERM at the entry of write #3 to .out.json.tmp-*, then SIGINT at the entry of write #1\n"),
        "{}",
        again.stdout
    );
}
