//! supervisor: the "supervisor of child processes" pattern (PATTERNS.md §5).
//!
//! Spawns `--children` copies of itself as workers. Each prints `child I beat K` every
//! `--beat` for `--beats` beats and exits 0; on SIGTERM it drains for `--drain` (finishing
//! in-flight work) and exits 0. With `--stubborn N`, child N ignores SIGTERM and would
//! drain for ten seconds.
//!
//! The parent watches them every 5 ms. When every child has finished, it exits 0. On
//! SIGTERM or SIGINT it forwards SIGTERM to every child, then waits for all of them under
//! one shared deadline (`--grace`), kills the stragglers past it, and exits 14: the drains
//! overlap. When a child dies on its own, it tears the rest down the same way and exits 1,
//! so the orchestrator restarts the whole service.
//!
//! Planted bugs (`--bug NAME`), each the correct code with one thing wrong:
//! - `stacked`: stops the children one after another, each with the full grace period,
//!   so the drains add up.
//! - `no-forward`: exits on a signal without telling the children, which run on.
//! - `no-kill-stragglers`: signals every child and waits out the grace period, then exits
//!   without killing the ones still running.
//! - `exit0-after-crash`: when a child dies on its own, lets the others finish and exits 0,
//!   so the crash is never noticed.
//!
//! Usage: supervisor [--children N] [--beats N] [--beat DURATION] [--drain DURATION]
//!        [--grace DURATION] [--stubborn N]
//!        [--bug stacked|no-forward|no-kill-stragglers|exit0-after-crash]

use std::io::Write;
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use killpoint_scenarios::{STOPPED, pace};

const BUGS: [&str; 4] = [
    "stacked",
    "no-forward",
    "no-kill-stragglers",
    "exit0-after-crash",
];

/// How often the parent looks at its children.
const WATCH: Duration = Duration::from_millis(5);
/// How long a stubborn child drains.
const STUBBORN_DRAIN: Duration = Duration::from_secs(10);

static STOP: AtomicBool = AtomicBool::new(false);

struct Options {
    children: u64,
    beats: u64,
    beat: Duration,
    drain: Duration,
    grace: Duration,
    stubborn: Option<u64>,
    bug: Option<&'static str>,
}

fn main() -> ExitCode {
    killpoint_scenarios::main("supervisor", &[], |flags| {
        let options = Options {
            children: flags.number("--children", 3)?,
            beats: flags.number("--beats", 30)?,
            beat: flags.duration("--beat", Duration::from_millis(10))?,
            drain: flags.duration("--drain", Duration::from_millis(200))?,
            grace: flags.duration("--grace", Duration::from_secs(1))?,
            stubborn: flags
                .text("--stubborn")
                .map(str::parse)
                .transpose()
                .map_err(|_| "--stubborn N")?,
            bug: flags.bug(&BUGS)?,
        };
        flags.check_known(&[
            "--child",
            "--children",
            "--beats",
            "--beat",
            "--drain",
            "--grace",
            "--stubborn",
            "--bug",
        ])?;
        install_handlers();
        match flags.text("--child") {
            Some(index) => {
                let index: u64 = index.parse().map_err(|_| "--child N")?;
                child(index, &options).map_err(|e| e.to_string())?;
                Ok(ExitCode::SUCCESS)
            }
            None => supervise(&options).map_err(|e| e.to_string()),
        }
    })
}

fn install_handlers() {
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { signal_hook::low_level::register(signal, || STOP.store(true, Ordering::SeqCst)) }
            .expect("install a signal handler");
    }
}

/// A worker: beats until done or told to stop, then drains.
fn child(index: u64, options: &Options) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for beat in 1..=options.beats {
        if STOP.load(Ordering::SeqCst) {
            let drain = if options.stubborn == Some(index) {
                STUBBORN_DRAIN
            } else {
                options.drain
            };
            std::thread::sleep(drain);
            return Ok(());
        }
        writeln!(out, "child {index} beat {beat}")?;
        pace(options.beat);
    }
    Ok(())
}

struct Worker {
    index: u64,
    process: Child,
    /// Set once it has exited (and was reaped).
    ended: Option<std::process::ExitStatus>,
}

fn supervise(options: &Options) -> std::io::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let mut workers = Vec::new();
    for index in 1..=options.children {
        let mut command = Command::new(&exe);
        command
            .arg("--child")
            .arg(index.to_string())
            .arg("--beats")
            .arg(options.beats.to_string())
            .arg("--beat")
            .arg(format!("{}us", options.beat.as_micros()))
            .arg("--drain")
            .arg(format!("{}us", options.drain.as_micros()));
        if let Some(n) = options.stubborn {
            command.arg("--stubborn").arg(n.to_string());
        }
        workers.push(Worker {
            index,
            process: command.spawn()?,
            ended: None,
        });
    }
    loop {
        if STOP.load(Ordering::SeqCst) {
            eprintln!("supervisor: stopping {} children", workers.len());
            match options.bug {
                Some("no-forward") => {}
                Some("stacked") => {
                    for worker in &mut workers {
                        stop_all(std::slice::from_mut(worker), options.grace, true)?;
                    }
                }
                Some("no-kill-stragglers") => stop_all(&mut workers, options.grace, false)?,
                _ => stop_all(&mut workers, options.grace, true)?,
            }
            return Ok(ExitCode::from(STOPPED));
        }
        for worker in &mut workers {
            if worker.ended.is_none() {
                worker.ended = worker.process.try_wait()?;
            }
        }
        if let Some(crashed) = workers
            .iter()
            .find(|w| w.ended.is_some_and(|status| !status.success()))
        {
            eprintln!(
                "supervisor: child {} died on its own ({}); stopping the rest",
                crashed.index,
                crashed.ended.expect("it ended")
            );
            if options.bug == Some("exit0-after-crash") {
                // The bug: carry on as if nothing happened; the rest finish and it exits 0.
                for worker in workers.iter_mut().filter(|w| w.ended.is_none()) {
                    worker.ended = Some(worker.process.wait()?);
                }
                return Ok(ExitCode::SUCCESS);
            }
            stop_all(&mut workers, options.grace, true)?;
            return Ok(ExitCode::from(1));
        }
        if workers.iter().all(|w| w.ended.is_some()) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(WATCH);
    }
}

/// SIGTERM to every running worker, then wait for all of them under one deadline; past it,
/// SIGKILL the stragglers (unless `kill` is false) and reap them.
fn stop_all(workers: &mut [Worker], grace: Duration, kill: bool) -> std::io::Result<()> {
    for worker in workers.iter().filter(|w| w.ended.is_none()) {
        // SAFETY: kill(2) on a child we have not reaped yet, so its pid is still ours.
        unsafe { libc::kill(worker.process.id() as i32, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        for worker in workers.iter_mut().filter(|w| w.ended.is_none()) {
            worker.ended = worker.process.try_wait()?;
        }
        if workers.iter().all(|w| w.ended.is_some()) {
            return Ok(());
        }
        std::thread::sleep(WATCH);
    }
    if kill {
        for worker in workers.iter_mut().filter(|w| w.ended.is_none()) {
            eprintln!(
                "supervisor: child {} overran the grace period; killing it",
                worker.index
            );
            worker.process.kill()?;
            worker.ended = Some(worker.process.wait()?);
        }
    }
    Ok(())
}
