//! Helpers shared by the end-to-end tests: running `killpoint` as a user would.

#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `killpoint ARGS…` run from the workspace root, with its own temp directory.
pub fn killpoint(args: &[&str], tmp: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_killpoint"));
    command
        .args(args)
        .current_dir(root())
        .env("TMPDIR", tmp)
        .env_remove("KILLPOINT_SEED")
        .env_remove("KILLPOINT_CASES");
    command
}

pub struct Ran {
    /// The campaign's temp dir: kept sandboxes live here until the test ends.
    pub _tmp: tempfile::TempDir,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub json: Value,
}

/// Runs a campaign with a JSON report and returns both.
pub fn campaign(args: &[&str]) -> Ran {
    let mut all: Vec<&str> = vec!["run"];
    all.extend_from_slice(args);
    // Nothing may be left in the temp dir but the report and the sandbox of a reported
    // unexpected violation.
    with_json(&all, "the campaign left files in its temp dir", |json| {
        json["scenarios"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["failure"]["sandbox"].as_str().map(PathBuf::from))
            .collect()
    })
}

/// Reruns one case with `killpoint repro FILE --case ID --json`; the JSON is the
/// scenario's report, whose `case` is the case as it ran.
pub fn repro(file: &str, case: &str) -> Ran {
    // A reproduction keeps its sandbox, and nothing else.
    let ran = with_json(
        &["repro", file, "--case", case],
        "the reproduction left files behind",
        |json| {
            json["case"]["sandbox"]
                .as_str()
                .map(PathBuf::from)
                .into_iter()
                .collect()
        },
    );
    if let Some(kept) = ran.json["case"]["sandbox"].as_str() {
        assert!(
            ran.stdout.contains(&format!("sandbox kept: {kept}")),
            "{}",
            ran.stdout
        );
    }
    ran
}

/// Runs `killpoint ARGS… --json REPORT` in its own temp dir and checks that nothing is
/// left there but the report and the sandboxes `kept` names in it.
fn with_json(args: &[&str], leftovers: &str, kept: impl Fn(&Value) -> Vec<PathBuf>) -> Ran {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("report.json");
    let mut all = args.to_vec();
    all.extend_from_slice(&["--json", report.to_str().unwrap()]);
    let Output {
        status,
        stdout,
        stderr,
    } = killpoint(&all, tmp.path()).output().unwrap();
    let json: Value =
        serde_json::from_slice(&fs::read(&report).unwrap_or_default()).unwrap_or(Value::Null);
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let mut allowed = kept(&json);
    allowed.push(report);
    let mut left: Vec<PathBuf> = fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    left.sort();
    allowed.sort();
    assert_eq!(left, allowed, "{leftovers}\n{stdout}");
    Ran {
        _tmp: tmp,
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        json,
    }
}

/// A temp directory beside the scenarios crate, so that `{bin:NAME}` in a scenario file
/// written there resolves as it does for the bundled ones.
pub fn scenario_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(".test-")
        .tempdir_in(root().join("scenarios"))
        .unwrap()
}

/// Sends SIGINT to a running `killpoint` (as Ctrl-C would) and collects how it ended
/// and what it printed.
pub fn interrupt(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    (status, stdout)
}

/// Processes whose command line mentions `needle`: pid and command line.
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_string_lossy().parse().ok()?;
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
        })
        .filter(|(_, c)| c.contains(needle))
        .collect()
}

/// Writes `text` as `s.toml` in `dir` and loads it.
pub fn load_scenario(dir: &Path, text: &str) -> killpoint::scenario::Scenario {
    let file = dir.join("s.toml");
    fs::write(&file, text).unwrap();
    killpoint::scenario::Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

/// One campaign of `seed` through the library, failures reported as found (not shrunk),
/// no regressions file; `jobs` cases at once, or the default.
pub fn run_unshrunk(
    scenario: &killpoint::scenario::Scenario,
    seed: u64,
    jobs: Option<usize>,
) -> killpoint::ScenarioReport {
    let mut options = killpoint::CampaignOptions::new(seed);
    if let Some(jobs) = jobs {
        options.jobs = jobs;
    }
    options.shrink_iterations = Some(0);
    options.regressions = false;
    killpoint::Campaign::new(options).run_scenario(scenario)
}

/// The report as the CLI prints it.
pub fn report_text(report: &killpoint::ScenarioReport) -> String {
    killpoint::report::scenario_text(report)
}
