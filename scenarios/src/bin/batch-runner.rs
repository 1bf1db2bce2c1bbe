//! batch-runner: the "checkpointing batch runner" pattern (PATTERNS.md §4).
//!
//! Runs `--units` units of work (each takes `--unit-time` and writes `DIR/unit-N.txt`),
//! in this process or, with `--workers K`, in batches of K worker processes. After each
//! unit (or batch) it saves the checkpoint — `{"status": …, "units": N, "done": […]}` —
//! atomically (temp file, fsync, rename), and only then prints `DONE unit=N`. SIGTERM and
//! SIGINT set a flag that is checked before every unit: the run waits for the units in
//! flight, saves the checkpoint with status `interrupted` and exits 14. `--resume` reads
//! the checkpoint and runs only the units it does not list.
//!
//! Probe marks (killpoint_probe): `unit N` before unit N starts (the stop flag is looked
//! at just after it, so a stop that lands there leaves units 1..N-1 done) and `ack N` once
//! unit N is reported done. The handler notes the unit whose mark was the last made when
//! the first stop signal came, and a stopped run says it on stderr: "the stop signal
//! arrived at unit N", the program's own record of where it was struck.
//!
//! Planted bugs (`--bug NAME`), each the correct code with one thing wrong:
//! - `ack-before-save`: a unit is reported done before the checkpoint that records it is
//!   saved; a kill in between loses a reported unit.
//! - `checkpoint-inplace`: the checkpoint is truncated and rewritten in place; a kill
//!   during the save leaves a torn checkpoint, and every reported unit with it.
//! - `coarse-shutdown`: the flag is checked only every 25 units, so a stop waits for the
//!   rest of the stretch.
//! - `orphan-workers`: on a stop, the parent saves and exits without waiting for the
//!   workers in flight, which run on with nobody to reap them.
//! - `resume-redo-last`: `--resume` distrusts the last unit the checkpoint lists ("it may
//!   be half done") and runs it again: a unit reported done is done twice.
//!
//! Usage: batch-runner --checkpoint PATH --results DIR [--units N] [--unit-time DURATION]
//!        [--workers K] [--resume]
//!        [--bug ack-before-save|checkpoint-inplace|coarse-shutdown|orphan-workers|resume-redo-last]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use killpoint_scenarios::{STOPPED, pace};

const BUGS: [&str; 5] = [
    "ack-before-save",
    "checkpoint-inplace",
    "coarse-shutdown",
    "orphan-workers",
    "resume-redo-last",
];

/// With `coarse-shutdown`, the flag is looked at once per this many units.
const COARSE: u64 = 25;

static STOP: AtomicBool = AtomicBool::new(false);
/// The unit whose `unit N` mark was made last (0: none yet).
static UNIT: AtomicU64 = AtomicU64::new(0);
/// The value of `UNIT` when the first stop signal came (0: none came).
static STRUCK_AT_UNIT: AtomicU64 = AtomicU64::new(0);

struct Run {
    checkpoint: PathBuf,
    results: PathBuf,
    units: u64,
    unit_time: Duration,
    bug: Option<&'static str>,
    done: Vec<u64>,
}

fn main() -> ExitCode {
    killpoint_scenarios::main("batch-runner", &["--resume"], |flags| {
        let results = PathBuf::from(flags.text("--results").ok_or("--results DIR is required")?);
        let unit_time = flags.duration("--unit-time", Duration::from_millis(5))?;
        if let Some(unit) = flags.text("--unit") {
            // A worker process: one unit, default signal actions.
            flags.check_known(&["--unit", "--results", "--unit-time"])?;
            let unit = unit.parse().map_err(|_| format!("--unit `{unit}`"))?;
            work(&results, unit, unit_time).map_err(|e| e.to_string())?;
            return Ok(ExitCode::SUCCESS);
        }
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            // SAFETY: the handler only reads and stores atomics.
            unsafe {
                signal_hook::low_level::register(signal, || {
                    let unit = UNIT.load(Ordering::SeqCst);
                    let _ = STRUCK_AT_UNIT.compare_exchange(
                        0,
                        unit,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    STOP.store(true, Ordering::SeqCst);
                })
            }
            .expect("install a signal handler");
        }
        let checkpoint = PathBuf::from(
            flags
                .text("--checkpoint")
                .ok_or("--checkpoint PATH is required")?,
        );
        let bug = flags.bug(&BUGS)?;
        let done = if flags.has("--resume") {
            let mut done = load(&checkpoint)?;
            if bug == Some("resume-redo-last") {
                done.pop();
            }
            done
        } else {
            Vec::new()
        };
        let mut run = Run {
            checkpoint,
            results,
            units: flags.number("--units", 40)?,
            unit_time,
            bug,
            done,
        };
        let workers = flags.number("--workers", 0)?;
        flags.check_known(&[
            "--checkpoint",
            "--results",
            "--units",
            "--unit-time",
            "--workers",
            "--resume",
            "--bug",
        ])?;
        fs::create_dir_all(&run.results).map_err(|e| e.to_string())?;
        let finished = if workers == 0 {
            run_here(&mut run)
        } else {
            run_in_workers(&mut run, workers as usize)
        }
        .map_err(|e| e.to_string())?;
        let status = if finished { "complete" } else { "interrupted" };
        save(&run, status).map_err(|e| format!("saving the checkpoint: {e}"))?;
        Ok(if finished {
            ExitCode::SUCCESS
        } else {
            let at = STRUCK_AT_UNIT.load(Ordering::SeqCst);
            if at > 0 {
                eprintln!("batch-runner: the stop signal arrived at unit {at}");
            }
            eprintln!(
                "batch-runner: interrupted after {} of {} units; resume with --resume",
                run.done.len(),
                run.units
            );
            ExitCode::from(STOPPED)
        })
    })
}

fn todo(run: &Run) -> Vec<u64> {
    (1..=run.units).filter(|u| !run.done.contains(u)).collect()
}

/// Marks the start of `unit` (a probe point), then says whether to stop before it.
fn begin(run: &Run, unit: u64, position: usize) -> bool {
    UNIT.store(unit, Ordering::SeqCst);
    killpoint_probe::mark(&format!("unit {unit}"));
    should_stop(run, position)
}

fn should_stop(run: &Run, position: usize) -> bool {
    if run.bug == Some("coarse-shutdown") && !(position as u64).is_multiple_of(COARSE) {
        return false;
    }
    STOP.load(Ordering::SeqCst)
}

/// Units one after another in this process; true when all are done.
fn run_here(run: &mut Run) -> std::io::Result<bool> {
    for (position, unit) in todo(run).into_iter().enumerate() {
        if begin(run, unit, position) {
            return Ok(false);
        }
        work(&run.results, unit, run.unit_time)?;
        run.done.push(unit);
        record(run, &[unit])?;
    }
    Ok(true)
}

/// Units in batches of `workers` worker processes; true when all are done.
fn run_in_workers(run: &mut Run, workers: usize) -> std::io::Result<bool> {
    let exe = std::env::current_exe()?;
    let todo = todo(run);
    for (batch_number, batch) in todo.chunks(workers).enumerate() {
        if begin(run, batch[0], batch_number * workers) {
            return Ok(false);
        }
        let mut children: Vec<(u64, Child)> = Vec::new();
        for &unit in batch {
            let child = Command::new(&exe)
                .arg("--unit")
                .arg(unit.to_string())
                .arg("--results")
                .arg(&run.results)
                .arg("--unit-time")
                .arg(format!("{}us", run.unit_time.as_micros()))
                .spawn()?;
            children.push((unit, child));
        }
        let mut finished = Vec::new();
        for (unit, mut child) in children {
            loop {
                if run.bug == Some("orphan-workers") && STOP.load(Ordering::SeqCst) {
                    // The bug: leave the batch's workers running and go.
                    run.done.extend(&finished);
                    record(run, &finished)?;
                    return Ok(false);
                }
                match child.try_wait()? {
                    Some(status) if status.success() => break,
                    Some(status) => {
                        return Err(std::io::Error::other(format!(
                            "the worker for unit {unit} failed: {status}"
                        )));
                    }
                    None => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            finished.push(unit);
        }
        run.done.extend(&finished);
        record(run, &finished)?;
    }
    Ok(true)
}

/// Saves the checkpoint that records `units`, then reports them done (with
/// `ack-before-save`, the other way round).
fn record(run: &Run, units: &[u64]) -> std::io::Result<()> {
    let report = |units: &[u64]| -> std::io::Result<()> {
        for unit in units {
            writeln!(std::io::stdout().lock(), "DONE unit={unit}")?;
            killpoint_probe::mark(&format!("ack {unit}"));
        }
        Ok(())
    };
    if run.bug == Some("ack-before-save") {
        report(units)?;
        save(run, "running")
    } else {
        save(run, "running")?;
        report(units)
    }
}

/// One unit of work: its result file, after `unit_time`.
fn work(results: &Path, unit: u64, unit_time: Duration) -> std::io::Result<()> {
    pace(unit_time);
    fs::write(
        results.join(format!("unit-{unit}.txt")),
        format!("unit {unit}: {}\n", unit * unit),
    )
}

/// The checkpoint in several writes (so a strike can land inside a save): atomically
/// through a temp file, or in place with `checkpoint-inplace`.
fn save(run: &Run, status: &str) -> std::io::Result<()> {
    let inplace = run.bug == Some("checkpoint-inplace");
    let target = run.checkpoint.clone();
    let path = if inplace {
        target.clone()
    } else {
        target.with_extension("json.tmp")
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    file.write_all(
        format!(
            "{{\"status\": \"{status}\", \"units\": {}, \"done\": [",
            run.units
        )
        .as_bytes(),
    )?;
    for (i, chunk) in run.done.chunks(8).enumerate() {
        let items: Vec<String> = chunk.iter().map(u64::to_string).collect();
        let sep = if i == 0 { "" } else { ", " };
        file.write_all(format!("{sep}{}", items.join(", ")).as_bytes())?;
    }
    file.write_all(b"]}\n")?;
    file.sync_all()?;
    drop(file);
    if !inplace {
        fs::rename(&path, &target)?;
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

/// The units a checkpoint lists as done (none if there is no checkpoint yet).
fn load(checkpoint: &Path) -> Result<Vec<u64>, String> {
    let text = match fs::read_to_string(checkpoint) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", checkpoint.display())),
    };
    let list = text
        .split_once("\"done\": [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .ok_or_else(|| format!("{}: not a checkpoint", checkpoint.display()))?;
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| format!("{}: bad unit `{s}`", checkpoint.display()))
        })
        .collect()
}
