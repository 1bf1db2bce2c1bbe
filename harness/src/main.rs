//! The `killpoint` command: a thin shell over the library.
//!
//! Exit codes: 0 every invariant held (and every planted bug was caught), 1 a violation
//! was found, 2 bad usage or a bad scenario file, 130 interrupted. `killpoint new` exits
//! 0 once it wrote the file, 2 when it could not (see its `--help`), 130 interrupted.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use killpoint::campaign::Event;
use killpoint::interrupt;
use killpoint::plan::CaseId;
use killpoint::report::{self, CampaignReport};
use killpoint::scenario::Scenario;
use killpoint::{Campaign, CampaignOptions, ScenarioResult};

#[derive(Parser)]
#[command(
    name = "killpoint",
    version,
    about = "Strike programs with signals at chosen points and check their shutdown promises."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a campaign over scenario files (default: every scenarios/*.toml).
    Run {
        /// Scenario files.
        files: Vec<PathBuf>,
        /// New cases per scenario [default: the scenario's `cases`, else 64].
        #[arg(long, env = "KILLPOINT_CASES")]
        cases: Option<u32>,
        /// Master seed [default: random; always printed]. A case id (`SEED-MOVES`, `pN`)
        /// runs that case first.
        #[arg(long, env = "KILLPOINT_SEED")]
        seed: Option<CaseId>,
        /// Cases run at once [default: the number of cores].
        #[arg(long)]
        jobs: Option<usize>,
        /// Try every point of each strike space instead of sampling.
        #[arg(long)]
        exhaustive: bool,
        /// Most runs of the target spent shrinking a failure; 0 reports it unshrunk
        /// [default: the scenario's `shrink.iterations`, else 128].
        #[arg(long)]
        shrink_iterations: Option<u32>,
        /// Most time spent shrinking a failure [default: the scenario's `shrink.time`, else 60s].
        #[arg(long, value_parser = killpoint::scenario::parse_duration)]
        shrink_time: Option<std::time::Duration>,
        /// Neither replay nor record the scenarios' regressions files.
        #[arg(long)]
        no_regressions: bool,
        /// Also write the report as JSON to this path (atomically).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Rerun one case of a scenario verbosely: the plan, the trace around each strike,
    /// stdout and stderr, every verdict; the sandbox is kept. Exit 1 if it violated an
    /// invariant, 0 if every invariant held.
    Repro {
        /// The scenario file.
        file: PathBuf,
        /// The case, as a report prints it: `SEED`, `SEED-MOVES` or `pN`.
        #[arg(long)]
        case: CaseId,
        /// Also write the report as JSON to this path (atomically).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Check scenario files without running them.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a command once under the tracer and show its syscalls per class and path, its
    /// processes and the handlers it installs: where a scenario can strike.
    #[command(trailing_var_arg = true)]
    Trace {
        /// Also show calls that name only paths outside the working directory.
        #[arg(long)]
        all: bool,
        /// Also print every traced event in order.
        #[arg(long)]
        events: bool,
        /// Kill the command if it runs longer than this.
        #[arg(long, default_value = "60s", value_parser = killpoint::scenario::parse_duration)]
        timeout: std::time::Duration,
        /// Also write the trace as JSON to this path (atomically).
        #[arg(long)]
        json: Option<PathBuf>,
        /// The command and its arguments, after `--`.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Draft a starting scenario file for a command: run it twice under the tracer, each
    /// time in a fresh sandbox, and propose its outputs, its exit status and strike
    /// entries at the outputs' writes, fsyncs and renames, with a comment above each key
    /// saying what it means and what to decide.
    #[command(trailing_var_arg = true, after_long_help = NEW_HELP)]
    New {
        /// The scenario's name (letters, digits, `.`, `_`, `-`); the file is NAME.toml.
        name: String,
        /// Files or directories copied into the sandbox under their own names before each
        /// run; the scenario copies them from where they are (`{ from = "…" }`, relative
        /// to the scenario file).
        #[arg(long, num_args = 1.., value_name = "FILE")]
        setup: Vec<PathBuf>,
        /// Write the scenario to PATH instead of NAME.toml in the current directory.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
        /// Kill the command if a run takes longer than this (an error: a scenario's
        /// command must finish by itself).
        #[arg(long, default_value = "10s", value_parser = killpoint::scenario::parse_duration)]
        timeout: std::time::Duration,
        /// The command and its arguments, after `--`.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
}

const NEW_HELP: &str = "\
How the draft is made:
  The command runs twice, each time in a fresh sandbox ($TMPDIR/killpoint-XXXXXX, removed
  afterwards, also when interrupted) holding the --setup files, under the tracer with every
  syscall class trapped. Two runs, because one cannot tell a random temp-file name from a
  fixed one, nor an output that differs between clean runs.

  outputs   regular files the runs created or replaced in the sandbox: new ones, setup files
            whose bytes changed, and files a write, truncate, rename or copy went to (sed -i
            replaces its input). A file the two runs left with different bytes, or only one
            run left, is named in a comment instead: atomic-output compares every case with
            the uninterrupted run byte for byte.
  clean     the exit statuses the runs ended with.
  strikes   for each output (the first 8) that the program writes, SIGTERM, SIGINT and
            SIGKILL at: the exit of its open, the exit of its truncate, its writes and
            copies (entry and exit), its fsyncs; the same for a temp file renamed over it,
            through a glob that matches both runs' names (sedGsyU6j and sedq3LxAb: sed*);
            and the rename that publishes it (entry and exit). Only calls both runs made.
            No such call at all: one strike after a delay.
  left to decide, commented out: [expect] interrupted (what the program promises after
            SIGTERM/SIGINT), deadline, [requires].

  The file is written only once it parses as a scenario and its setup files resolve from
  where it is; `killpoint check FILE` and `killpoint run FILE` take it as written.

Example:
  killpoint new gzip-keep --setup big.txt -- gzip -k big.txt

Exit codes:
  0    the file was written
  2    bad usage, an invalid NAME, the file exists (without --force), a setup file is
       missing, or the command could not run (not found, not executable, ran past
       --timeout, not traceable)
  130  interrupted (SIGINT or SIGTERM to killpoint): no file written, no sandbox left";

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap's own exit code for --help/--version is 0; usage errors are 2, as ours.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Check { files } => check(&files),
        Command::Trace {
            all,
            events,
            timeout,
            json,
            command,
        } => trace(&command, all, events, timeout, json),
        Command::Run {
            files,
            cases,
            seed,
            jobs,
            exhaustive,
            shrink_iterations,
            shrink_time,
            no_regressions,
            json,
        } => {
            let mut options = CampaignOptions::new(rand_seed());
            if let Some(id) = seed {
                options.seed_from(id);
            }
            options.cases = cases;
            options.jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            options.exhaustive = exhaustive;
            options.shrink_iterations = shrink_iterations;
            options.shrink_time = shrink_time;
            options.regressions = !no_regressions;
            options.keep_sandbox = true;
            run(files, options, json)
        }
        Command::Repro { file, case, json } => repro(&file, case, json),
        Command::New {
            name,
            setup,
            out,
            force,
            timeout,
            command,
        } => new(name, setup, out, force, timeout, command),
    }
}

/// Drafts a scenario file for a command (`killpoint::draft`).
fn new(
    name: String,
    setup: Vec<PathBuf>,
    out: Option<PathBuf>,
    force: bool,
    timeout: std::time::Duration,
    command: Vec<std::ffi::OsString>,
) -> ExitCode {
    if let Err(code) = install_interrupt() {
        return code;
    }
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot read the working directory: {e}");
            return ExitCode::from(2);
        }
    };
    let words: Vec<String> = std::iter::once("killpoint".to_string())
        .chain(
            std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned()),
        )
        .collect();
    let options = killpoint::draft::Options {
        name,
        setup,
        out,
        force,
        timeout,
        command,
        invocation: killpoint::draft::shell_line(&words),
        cwd,
    };
    match killpoint::draft::draft(&options) {
        Ok(written) => {
            print!(
                "{}",
                killpoint::draft::summary(
                    &written.file.display().to_string(),
                    &written.request,
                    &written.proposal
                )
            );
            ExitCode::SUCCESS
        }
        Err(killpoint::draft::DraftError::Interrupted) => {
            eprintln!("killpoint new: interrupted; no file written");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for file in files {
        match Scenario::load(file) {
            Ok(s) => println!(
                "{}: ok ({}, {} strike entr{})",
                file.display(),
                s.name,
                s.strikes.len(),
                if s.strikes.len() == 1 { "y" } else { "ies" }
            ),
            Err(e) => {
                eprintln!("error: {e}");
                ok = false;
            }
        }
    }
    ExitCode::from(if ok { 0 } else { 2 })
}

fn trace(
    command: &[std::ffi::OsString],
    all: bool,
    events: bool,
    timeout: std::time::Duration,
    json: Option<PathBuf>,
) -> ExitCode {
    if let Err(code) = install_interrupt() {
        return code;
    }
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot read the working directory: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match killpoint::trace::trace(command, cwd, timeout) {
        Ok(r) => r,
        Err(killpoint::trace::TraceError::Interrupted) => {
            eprintln!("killpoint trace: interrupted");
            return ExitCode::from(130);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!();
    if events {
        for event in &report.events {
            println!("{event}");
        }
        if report.events_dropped > 0 {
            println!("… {} more events not kept", report.events_dropped);
        }
        println!();
    }
    print!("{}", killpoint::trace::table(&report, all));
    if let Err(code) = write_json(&report, json, "trace") {
        return code;
    }
    ExitCode::SUCCESS
}

fn default_files() -> Result<Vec<PathBuf>, String> {
    let dir = Path::new("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!("no scenario files given and cannot read ./scenarios ({e}): pass FILES")
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        // The scenarios crate's own manifest lives there too and is not a scenario.
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.ends_with("Cargo.toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err("no scenario files given and ./scenarios has no *.toml: pass FILES".into());
    }
    Ok(files)
}

fn run(files: Vec<PathBuf>, options: CampaignOptions, json: Option<PathBuf>) -> ExitCode {
    let files = if files.is_empty() {
        match default_files() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        files
    };
    // Every file is checked before anything runs: a typo fails fast.
    let scenarios = match load(&files) {
        Ok(scenarios) => scenarios,
        Err(code) => return code,
    };
    let (seed, jobs, cases) = (options.seed, options.jobs, options.cases);
    println!(
        "killpoint: seed {seed}, {} scenario(s), {jobs} job(s)",
        scenarios.len()
    );
    println!();

    let campaign = Campaign::new(options);
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} cases {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar
    });
    // The progress bar is a reporter: it follows the campaign's events.
    let progress = |event: &Event| {
        if let (Some(bar), Event::CaseJudged { done, planned, .. }) = (&bar, event) {
            bar.set_length(*planned);
            bar.set_position(*done);
        }
    };

    let mut report = CampaignReport {
        seed,
        cases,
        jobs,
        scenarios: Vec::new(),
        interrupted: false,
    };
    for scenario in &scenarios {
        if interrupt::requested() {
            report.interrupted = true;
            break;
        }
        if let Some(bar) = &bar {
            bar.reset();
            bar.set_prefix(scenario.name.clone());
        }
        let result = campaign.run_scenario_with(scenario, &progress);
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        println!("{}", report::scenario_text(&result));
        let stop = result.result == ScenarioResult::Interrupted;
        report.scenarios.push(result);
        if stop {
            report.interrupted = true;
            break;
        }
    }
    println!("{}", report::summary_text(&report));
    if let Err(code) = write_json(&report, json, "report") {
        return code;
    }
    ExitCode::from(report.exit_code() as u8)
}

/// Reruns one case verbosely.
fn repro(file: &Path, case: CaseId, json: Option<PathBuf>) -> ExitCode {
    let scenario = match load(&[file.to_path_buf()]) {
        Ok(mut scenarios) => scenarios.remove(0),
        Err(code) => return code,
    };
    let mut options = CampaignOptions::new(0);
    options.case = Some(case);
    let result = Campaign::new(options).run_scenario(&scenario);
    print!("{}", report::repro_text(&result));
    if let Err(code) = write_json(&result, json, "report") {
        return code;
    }
    ExitCode::from(match &result.result {
        ScenarioResult::Interrupted => 130,
        ScenarioResult::Error { .. } => 2,
        _ if result.failure.is_some() => 1,
        _ => 0,
    })
}

/// Loads and checks scenario files, then makes SIGINT and SIGTERM stop the run cleanly; a
/// bad file, or a handler that cannot be installed, is exit 2 with the reason.
fn load(files: &[PathBuf]) -> Result<Vec<Scenario>, ExitCode> {
    let mut scenarios = Vec::new();
    for file in files {
        match Scenario::load(file) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitCode::from(2));
            }
        }
    }
    install_interrupt()?;
    Ok(scenarios)
}

fn install_interrupt() -> Result<(), ExitCode> {
    interrupt::install().map_err(|e| {
        eprintln!("error: cannot install the interrupt handler: {e}");
        ExitCode::from(2)
    })
}

/// Writes `--json PATH` if asked; a failure is exit 2, saying which file and why.
fn write_json(
    value: &impl serde::Serialize,
    path: Option<PathBuf>,
    what: &str,
) -> Result<(), ExitCode> {
    let Some(path) = path else { return Ok(()) };
    report::write_json(value, &path).map_err(|e| {
        eprintln!(
            "error: cannot write the JSON {what} to {}: {e}",
            path.display()
        );
        ExitCode::from(2)
    })
}

/// A random master seed, from the OS.
fn rand_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty());
    // Keep seeds short enough to type: 0..2^53 still gives plenty of campaigns.
    u64::from_le_bytes(bytes) >> 11
}
