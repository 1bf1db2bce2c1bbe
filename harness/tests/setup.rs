//! What a scenario can say about the sandbox and the command, end to end on real
//! programs: a generated 16 MiB input whose gzip golden matches in every case (its
//! header records the input's mtime, which setup fixes), a fixture directory copied
//! whole, and an awk program written with literal braces.

use std::fs;
use std::path::Path;

use killpoint::scenario::Scenario;
use killpoint::{Campaign, CampaignOptions, ScenarioReport, ScenarioResult};

fn scenario(dir: &Path, text: &str) -> Scenario {
    let file = dir.join("s.toml");
    fs::write(&file, text).unwrap();
    Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn run(scenario: &Scenario) -> ScenarioReport {
    let mut options = CampaignOptions::new(1);
    options.shrink_iterations = Some(0);
    options.regressions = false;
    Campaign::new(options).run_scenario(scenario)
}

fn text(report: &ScenarioReport) -> String {
    killpoint::report::scenario_text(report)
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
    let report = run(&scenario(
        dir.path(),
        r#"name = "prepared-gzip"
command = ["gzip", "in.txt"]
prepare = ["sh", "-c", "seq 1 200000 > in.txt"]
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
        "the prepare command `sh -c echo making the input; echo no space left >&2; exit 3` ended with exit 3\n  its stdout ended with:\n    making the input\n  its stderr ended with:\n    no space left"
    );
}
