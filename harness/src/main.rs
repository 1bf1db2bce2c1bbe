//! The `killpoint` command: a thin shell over the library.
//!
//! Exit codes: 0 every invariant held (and every planted bug was caught), 1 a violation
//! was found, 2 bad usage or a bad scenario file, 130 interrupted.

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
}

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
