//! What a scenario can say about the sandbox and the command, end to end on real
//! programs: a generated 16 MiB input whose gzip golden matches in every case (its
//! header records the input's mtime, which setup fixes), a fixture directory copied
//! whole, and an awk program written with literal braces.

use std::fs;
use std::path::Path;

use killpoint::outcome::FileState;
use killpoint::scenario::Scenario;
use killpoint::{ScenarioReport, ScenarioResult};

mod common;
use common::{load_scenario as scenario, report_text as text};

fn run(scenario: &Scenario) -> ScenarioReport {
    common::run_unshrunk(scenario, 1, None)
}

#[test]
fn gzip_of_a_generated_input_matches_its_golden_in_every_case_without_dash_n() {
    let dir = tempfile::tempdir().unwrap();
    // gzip (no -n) records big.txt's name and mtime in its header: only a fixed mtime
    // makes the census's output and an uninterrupted case's the same bytes. A clean
    // status after a late strike is accepted only when the output is that golden.
    let s = scenario(
        dir.path(),
        r#"name = "gzip-16mib"
command = ["gzip", "-k", "big.txt"]
cases = 6
[requires]
gzip = "gzip"
[setup]
"big.txt" = { bytes = 16777216, seed = 42 }
[[strike]]
signal = "SIGTERM"
at = { syscall = "write", path = "big.txt.gz", nth = "last", when = "exit" }
[[strike]]
signal = "SIGTERM"
at = { syscall = "close", path = "big.txt.gz", when = "exit" }
[expect]
outputs = ["big.txt.gz"]
interrupted = ["SIGTERM"]
"#,
    );
    let report = run(&s);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{shown}");
    let census = report.census.as_ref().unwrap();
    let golden = census.golden[&"big.txt.gz".parse().unwrap()]
        .as_ref()
        .expect("the census wrote big.txt.gz");
    // The header: magic, deflate, FNAME, then the fixed mtime 2024-01-01 (little endian).
    assert_eq!(&golden.bytes[..4], [0x1f, 0x8b, 8, 8]);
    assert_eq!(
        u32::from_le_bytes(golden.bytes[4..8].try_into().unwrap()),
        1_704_067_200
    );
    assert!(golden.size > 8 << 20, "{} bytes", golden.size);
}

#[test]
fn a_fixture_directory_is_copied_whole_and_awk_reads_literal_braces() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fixtures/data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("sub/numbers.txt"), "3 x\n4 y\n5 z\n").unwrap();
    fs::write(data.join("bin.dat"), [0u8, 1, 2, 255]).unwrap();
    // `{{` and `}}` are awk's braces; `{work}` is still the sandbox.
    let s = scenario(
        dir.path(),
        r#"name = "awk-sum"
command = ["sh", "-c", "awk '{{ s += $1 }} END {{ print s }}' data/sub/numbers.txt > {work}/sum.tmp && cmp -s data/bin.dat data/bin.dat && exec mv {work}/sum.tmp {work}/sum.txt"]
cases = 4
[requires]
awk = "mawk"
[setup]
"data" = { from = "fixtures/data" }
[[strike]]
signal = "SIGKILL"
at = { syscall = "rename", when = "both" }
[expect]
outputs = ["sum.txt"]
"#,
    );
    let report = run(&s);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{shown}");
    let census = report.census.as_ref().unwrap();
    let golden = census.golden[&"sum.txt".parse().unwrap()]
        .as_ref()
        .expect("awk's sum");
    assert_eq!(golden.bytes, b"12\n");
}

/// A writer that builds its output in `tmp/part` and moves it into place, with no
/// handler: SIGTERM at the write leaves `tmp/part`, out of the output's directory.
fn subdir_writer(dir: &Path, scope: &str) -> Scenario {
    scenario(
        dir,
        &format!(
            r#"name = "subdir-temp"
command = ["sh", "-c", "mkdir -p tmp && printf 'whole\n' > tmp/part && mv tmp/part out.txt"]
[[strike]]
signal = "SIGTERM"
at = {{ syscall = "write", path = "tmp/part" }}
[expect]
outputs = ["out.txt"]
interrupted = ["SIGTERM"]
{scope}
"#
        ),
    )
}

#[test]
fn a_temp_file_left_in_a_subdirectory_is_found_through_temp_scope() {
    let dir = tempfile::tempdir().unwrap();
    // Looked for beside out.txt only (the default), tmp/part is not seen.
    let report = run(&subdir_writer(dir.path(), ""));
    assert_eq!(report.result, ScenarioResult::Passed, "{}", text(&report));
    // Looked for everywhere, it is.
    let report = run(&subdir_writer(
        dir.path(),
        "temp_scope = [\"**\"]\nviolation = \"atomic-output\"",
    ));
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{shown}");
    assert!(
        shown.contains("left behind: tmp/part (not there before the run, nor after the uninterrupted one); the main process died of SIGTERM"),
        "{shown}"
    );
    // Allowed, it may stay.
    let report = run(&subdir_writer(
        dir.path(),
        "temp_scope = [\"**\"]\ntemp_allow = [\"tmp/*\"]",
    ));
    assert_eq!(report.result, ScenarioResult::Passed, "{}", text(&report));
}

#[test]
fn shred_leaving_a_renamed_file_is_caught_with_a_temp_scope_and_no_outputs() {
    let dir = tempfile::tempdir().unwrap();
    // shred -u renames the file to 0000…, 000…, … 0 before it unlinks it, with no
    // handler: a stop between the renames leaves the renamed file. Its job is to leave
    // nothing, so there is no output to declare: the scope says where to look.
    let report = run(&scenario(
        dir.path(),
        r#"name = "shred-u"
command = ["shred", "-n", "0", "-z", "-u", "secret.txt"]
[requires]
shred = "coreutils"
[setup]
"secret.txt" = "top secret\n"
[[strike]]
signal = "SIGTERM"
at = { syscall = "rename", nth = "2..=last", when = "exit" }
[expect]
interrupted = ["SIGTERM"]
temp_scope = ["**"]
violation = "atomic-output"
"#,
    ));
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{shown}");
    assert!(shown.contains("left behind: 0"), "{shown}");
}

#[test]
fn what_prepare_leaves_is_prior_state_and_prepare_is_never_traced_or_struck() {
    let dir = tempfile::tempdir().unwrap();
    // gzip removes its input only on success: the input `prepare` made is prior state,
    // and the census's tree is gzip alone (the shell that made the input is not in it).
    // A file `prepare` makes has the time it was made, which gzip records in its header:
    // the input gets a fixed one, or a case a second later than the census differs.
    let report = run(&scenario(
        dir.path(),
        r#"name = "prepared-gzip"
command = ["gzip", "in.txt"]
prepare = ["sh", "-c", "seq 1 200000 > in.txt && touch -d @1704067200 in.txt"]
cases = 8
[requires]
gzip = "gzip"
[[strike]]
signal = ["SIGTERM", "SIGINT"]
at = { syscall = "write", path = "in.txt.gz", when = "both" }
[[strike]]
signal = "SIGTERM"
[expect]
outputs = ["in.txt.gz"]
interrupted = ["SIGTERM", "SIGINT"]
"#,
    ));
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{shown}");
    let census = report.census.as_ref().unwrap();
    let processes = &census.syscalls.as_ref().expect("traced").processes;
    let commands: Vec<&str> = processes.iter().map(|p| p.command.as_str()).collect();
    assert_eq!(commands, ["gzip in.txt"], "{shown}");
}

#[test]
fn a_failing_prepare_is_an_error_that_shows_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let report = run(&scenario(
        dir.path(),
        r#"name = "bad-prepare"
command = ["true"]
prepare = ["sh", "-c", "echo making the input; echo no space left >&2; exit 3"]
[[strike]]
signal = "SIGTERM"
"#,
    ));
    let ScenarioResult::Error { message } = &report.result else {
        panic!("{}", text(&report))
    };
    assert_eq!(
        message,
        "the prepare command `sh -c 'echo making the input; echo no space left >&2; exit 3'` ended with exit 3\n  its stdout ended with:\n    making the input\n  its stderr ended with:\n    no space left"
    );
}

/// A bundled field scenario, loaded from its file.
fn field(name: &str) -> Scenario {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/field")
        .join(name);
    Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

/// The one failure's evidence for `invariant`, lines as the report lists them.
fn evidence(report: &ScenarioReport, invariant: &str) -> Vec<String> {
    let failure = report
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("no failure: {}", text(report)));
    failure
        .violations
        .iter()
        .find(|(n, _)| n.as_str() == invariant)
        .map(|(_, e)| e.clone())
        .unwrap_or_else(|| panic!("{invariant} not violated: {}", text(report)))
}

#[test]
fn a_binary_sqlite_fixture_is_judged_by_its_valid_command() {
    // dd copies a newer database over the fixture in place; killed after its first
    // block, the file is 16 KiB of the new database, and SQLite refuses it.
    let s = field("dd-sqlite-overwrite.toml");
    let report = run(&s);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{shown}");
    // The census's output is accepted by the command, not compared.
    let census = report.census.as_ref().unwrap();
    assert_eq!(census.run.outputs[0].after, FileState::Valid, "{shown}");
    let failure = report.failure.as_ref().unwrap();
    let FileState::Rejected {
        size, by, output, ..
    } = &failure.outcome.outputs[0].after
    else {
        panic!("{shown}")
    };
    assert_eq!(*size % 16384, 0, "dd writes whole 16 KiB blocks: {shown}");
    assert!(*size < 671_744, "{shown}");
    assert_eq!(
        by,
        "`{python} {dir}/py/sqlite_intact.py {path} notes` ended with exit 1"
    );
    assert_eq!(output, "notes.sqlite: database disk image is malformed");
    assert_eq!(
        evidence(&report, "atomic-output"),
        [format!(
            "notes.sqlite ({size} bytes, sha256 {}…) is not complete: {by}; its prior content was lost; it said: notes.sqlite: database disk image is malformed",
            match &failure.outcome.outputs[0].after {
                FileState::Rejected { sha256, .. } => &sha256[..12],
                _ => unreachable!(),
            }
        )]
    );
}

#[test]
fn a_checker_breaks_a_promise_with_its_own_evidence() {
    // The in-place report writer, judged by a checker: a SIGTERM at the first write
    // finds report.json truncated by open and still empty.
    let report = run(&field("py-report-inplace-check.toml"));
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{shown}");
    let failure = report.failure.as_ref().unwrap();
    let names: Vec<&str> = failure.violations.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["check:report-whole"], "{shown}");
    let lines = evidence(&report, "check:report-whole");
    assert_eq!(lines.len(), 1, "{shown}");
    let sent = failure.outcome.strikes[0].sent_at.expect("delivered");
    assert!(
        lines[0].starts_with(&format!(
            "report.json does not parse after SIGTERM sent at {} ms: ",
            sent.as_secs_f64() * 1e3
        )),
        "{shown}"
    );
    assert!(lines[0].ends_with(" bytes)"), "{shown}");
    // The census's run of the checker held, and is on record.
    let census = report.census.as_ref().unwrap();
    assert_eq!(census.run.checks.len(), 1);
    assert!(census.run.checks[0].held);
}

/// A writer that stamps its output with the time, then writes its body in place.
fn stamped(dir: &Path, extra: &str) -> Scenario {
    scenario(
        dir,
        &format!(
            r#"name = "stamped"
command = ["sh", "-c", "date -u +%s%N > stamped.txt && seq 1 200000 >> stamped.txt"]
cases = 6
[[strike]]
signal = "SIGKILL"
{extra}
"#
        ),
    )
}

#[test]
fn an_output_that_embeds_a_time_is_compared_once_normalized() {
    let dir = tempfile::tempdir().unwrap();
    let at_exit = "at = { syscall = \"exit\", nth = \"last\" }\n[expect]\n";
    // Compared byte for byte, a run struck as it exits (its work done) differs from the
    // census in the time stamp on its first line.
    let report = run(&stamped(
        dir.path(),
        &format!("{at_exit}outputs = [\"stamped.txt\"]"),
    ));
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Violated, "{shown}");
    assert!(
        evidence(&report, "atomic-output")[0].starts_with("stamped.txt is "),
        "{shown}"
    );
    // Once `sed 1d` has dropped the stamp from both, every such run is complete.
    let normalized =
        format!("{at_exit}outputs = [{{ path = \"stamped.txt\", normalize = [\"sed\", \"1d\"] }}]");
    let report = run(&stamped(dir.path(), &normalized));
    assert_eq!(report.result, ScenarioResult::Passed, "{}", text(&report));
    // And a run killed mid-body is still torn, told in the normalized content's bytes
    // (the write is seq's: the shell reports its death as exit 137).
    let report = run(&stamped(
        dir.path(),
        "at = { syscall = \"write\", path = \"stamped.txt\", nth = \"3\" }\n[expect]\noutputs = [{ path = \"stamped.txt\", normalize = [\"sed\", \"1d\"] }]\nkilled = [137]\nviolation = \"atomic-output\"",
    ));
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{shown}");
    let line = &evidence(&report, "atomic-output")[0];
    assert!(
        line.starts_with("stamped.txt, once normalized by `sed 1d`, is truncated: its "),
        "{line}"
    );
}

#[test]
fn a_normalize_command_that_fails_on_a_torn_file_rejects_it() {
    let dir = tempfile::tempdir().unwrap();
    // What gzip -k writes is compared by what it holds; killed after its first write,
    // the archive cannot be read to its end, and gzip -dc says so.
    let report = run(&scenario(
        dir.path(),
        r#"name = "gzip-normalized"
command = ["gzip", "-k", "big.txt"]
[requires]
gzip = "gzip"
[setup]
"big.txt" = { bytes = 1048576, seed = 7 }
[[strike]]
signal = "SIGKILL"
at = { syscall = "write", path = "big.txt.gz", nth = "1", when = "exit" }
[expect]
outputs = [{ path = "big.txt.gz", normalize = ["gzip", "-dc"] }]
violation = "atomic-output"
"#,
    ));
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{shown}");
    let census = report.census.as_ref().unwrap();
    // The golden is what the archive holds: the input itself.
    let golden = census.golden[&"big.txt.gz".parse().unwrap()]
        .as_ref()
        .unwrap();
    assert_eq!(golden.size, 1_048_576);
    let failure = report.failure.as_ref().unwrap();
    let FileState::Rejected { by, output, .. } = &failure.outcome.outputs[0].after else {
        panic!("{shown}")
    };
    assert_eq!(by, "`gzip -dc` ended with exit 1");
    assert_eq!(output, "gzip: stdin: unexpected end of file");
}

#[test]
fn a_checker_or_a_judge_that_cannot_say_is_the_scenarios_error() {
    let dir = tempfile::tempdir().unwrap();
    let with = |expect: &str| {
        run(&scenario(
            dir.path(),
            &format!(
                "name = \"judges\"\ncommand = [\"sh\", \"-c\", \"echo done > out.txt\"]\n[[strike]]\nsignal = \"SIGTERM\"\n[expect]\n{expect}"
            ),
        ))
    };
    let error = |report: ScenarioReport| match &report.result {
        ScenarioResult::Error { message } => message.clone(),
        other => panic!("{other:?}: {}", text(&report)),
    };
    // Exit 2 is neither held nor broken: the checker failed.
    assert_eq!(
        error(with(
            "[[expect.check]]\nname = \"two\"\ncommand = [\"sh\", \"-c\", \"echo no database >&2; exit 2\"]"
        )),
        "the checker `two` (`sh -c 'echo no database >&2; exit 2'`) failed: it ended with exit 2 (a checker exits 0 when the promise held, 1 when it was broken)\n  its stderr ended with:\n    no database"
    );
    // A checker must hold where no strike landed.
    assert_eq!(
        error(with(
            "[[expect.check]]\nname = \"never\"\ncommand = [\"sh\", \"-c\", \"echo nothing is right; exit 1\"]"
        )),
        "the checker `never` fails on the uninterrupted run (exit 1); a checker must pass where no strike landed\n  it said:\n    nothing is right"
    );
    // A judge must accept what an uninterrupted run makes.
    assert_eq!(
        error(with(
            "outputs = [{ path = \"out.txt\", valid = [\"grep\", \"-q\", \"complete\", \"{path}\"] }]"
        )),
        "the uninterrupted run's `out.txt` is not accepted by its own judge: `grep -q complete {path}` ended with exit 1; a `valid` or `normalize` command must accept what a run no strike reached makes"
    );
    // A judge that cannot run is an error too.
    let message = error(with(
        "outputs = [{ path = \"out.txt\", valid = [\"no-such-judge\", \"{path}\"] }]",
    ));
    assert!(
        message.starts_with(
            "the valid command `no-such-judge {path}` of `out.txt`: cannot start `no-such-judge`: "
        ),
        "{message}"
    );
}
