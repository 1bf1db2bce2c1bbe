//! What the tracer costs: a target that writes 64 MiB in 64 KiB chunks to a real file,
//! fsyncs it and renames it into place, run bare, under the tracer, and under strace.
//!
//! `cargo bench -p killpoint --bench tracer` prints the medians and their ratios. All
//! figures come from the same run, rounds interleaved, the harness and its targets pinned
//! to one CPU (unpinned runs on a shared 2-core machine vary 2–5×). Environment:
//! `KILLPOINT_BENCH_RUNS` (rounds, default 11), `KILLPOINT_BENCH_CPU` (default 0).
//!
//! Each killpoint figure is one case run through the library (`Scenario::prepare`, then
//! `Cases::run` with a hand-made plan), timed from spawn to the target's exit as the case
//! runner measures it (`Outcome::exited_at`).
//!
//! - bare: the target through the case runner, no tracer.
//! - armed: a SIGTERM armed at the exit of the final rename; the filter traps what a
//!   campaign case traps (the plan's class and the context classes: fsync, rename,
//!   unlink, truncate, fork). Goal ≤ 1.10× bare.
//! - every write: a strike armed at the entry of the last write (#1024), so every write
//!   stops. Its signal is SIGWINCH, which the target ignores, so it does the same work as
//!   bare. Goal ≤ 1.6× bare; the difference over 1024 stops is the cost of one stop.
//! - SIGTERM at write #1024, by killpoint and by `strace -f -qq -o /dev/null -e trace=write
//!   -e inject=write:signal=SIGTERM:when=1024`: the same strike on the same target (which
//!   then cancels: no fsync, no rename, exit 14). Goal: killpoint/strace ≤ 0.5.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use killpoint::plan::{Plan, PlannedStrike, Point};
use killpoint::scenario::Recipient;
use killpoint::{Cases, Expect, Scenario, Signal, Strike, SyscallClass, When};

const WRITES: u64 = 1024;

/// A scenario of `command`, traced (a syscall strike entry) or not (a delay that never
/// comes, no deadline, no handler checks), prepared: its census run once.
fn prepared(command: &[&str], traced: bool) -> Cases {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // The arguments are templates (`{bin:…}`, `{work}`), as a scenario file writes them.
    let mut scenario = Scenario::command(command[0]);
    scenario.command = command
        .iter()
        .map(|arg| arg.parse().expect("a template argument"))
        .collect();
    scenario = if traced {
        scenario.strike(Strike::syscall(SyscallClass::Write).signal(Signal::SIGTERM))
    } else {
        scenario
            .strike(Strike::after(Duration::from_secs(3600)).signal(Signal::SIGTERM))
            .expect(Expect::handler_io(killpoint::Severity::Off))
    };
    // `{bin:…}` is found from the scenarios crate, as for a file beside it.
    scenario.source = Some(root.join("scenarios").join("bench.toml"));
    scenario.timeout = Duration::from_secs(120);
    scenario.prepare().expect("the bench target runs")
}

fn main() {
    let runs: usize = env_or("KILLPOINT_BENCH_RUNS", 11);
    let cpu: usize = env_or("KILLPOINT_BENCH_CPU", 0);
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        eprintln!("cannot pin to CPU {cpu} ({e}); figures will be noisier");
    }

    let writer = [
        "{bin:atomic-writer}",
        "--output",
        "{work}/out.json",
        "--size",
        "64MiB",
        "--chunk",
        "64KiB",
    ];
    let bare = prepared(&writer, false);
    let traced = prepared(&writer, true);
    let plan_at = |signal, syscall, nth, when| Plan {
        strikes: vec![PlannedStrike {
            signal,
            to: Recipient::Process,
            point: Point::Syscall {
                syscall,
                path: None,
                nth,
                when,
            },
            process: None,
            power: false,
        }],
    };
    let none = Plan { strikes: vec![] };
    let winch: Signal = "SIGWINCH".parse().expect("a signal name");
    let armed = plan_at(Signal::SIGTERM, SyscallClass::Rename, 1, When::Exit);
    let every_write = plan_at(winch, SyscallClass::Write, WRITES, When::Entry);
    let sigterm_write = plan_at(Signal::SIGTERM, SyscallClass::Write, WRITES, When::Entry);

    let killpoint = |cases: &Cases, plan: &Plan, status: &str| {
        let case = cases.run(plan).expect("the target runs");
        let outcome = &case.outcome;
        assert_eq!(
            outcome.status.to_string(),
            status,
            "{}",
            outcome.stderr.text
        );
        if !plan.strikes.is_empty() {
            assert!(
                outcome.strikes[0].sent_at.is_some(),
                "the strike was delivered"
            );
        }
        outcome.exited_at
    };
    // strace runs the same binary, found where the traced census saw it exec.
    let work = tempfile::tempdir().expect("a temp dir on the real disk");
    let program = traced
        .census()
        .syscalls
        .as_ref()
        .and_then(|s| s.processes.first())
        .and_then(|p| p.command.split(' ').next().map(str::to_string))
        .expect("the census saw the target");
    let writer_args: Vec<String> = vec![
        "--output".into(),
        work.path().join("out.json").display().to_string(),
        "--size".into(),
        "64MiB".into(),
        "--chunk".into(),
        "64KiB".into(),
    ];
    let strace = which("strace");
    let strace_run = |command: (&str, &[String]), signal: &str, when: u64, code: i32| {
        let _ = std::fs::remove_file(work.path().join("out.json"));
        let start = Instant::now();
        let status = Command::new(strace.as_ref().unwrap())
            .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=write"])
            .arg("-e")
            .arg(format!("inject=write:signal={signal}:when={when}"))
            .arg(command.0)
            .args(command.1)
            .current_dir(work.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("strace runs");
        let took = start.elapsed();
        assert_eq!(status.code(), Some(code), "strace run: {status}");
        took
    };

    // The syscall-bound target: `dd` copying 60 000 blocks of 4 KiB to /dev/null, every
    // one a write. Its overhead is all tracer.
    let dd_command = ["dd", "if=/dev/zero", "of=/dev/null", "bs=4k", "count=60000"];
    let dd_bare = prepared(&dd_command, false);
    let dd_traced = prepared(&dd_command, true);
    let dd_args: Vec<String> = dd_command[1..].iter().map(|a| a.to_string()).collect();
    let dd = ("dd", dd_args.as_slice());
    let writer = (program.as_str(), writer_args.as_slice());
    let dd_writes = 60_000; // strace counts up to 65535
    let dd_every = plan_at(winch, SyscallClass::Write, dd_writes, When::Entry);

    let names = [
        "bare",
        "armed: SIGTERM at the exit of the rename",
        "every write stops (SIGWINCH at write #1024)",
        "strace: SIGWINCH at write #1024",
        "killpoint: SIGTERM at write #1024",
        "strace: SIGTERM at write #1024",
        "dd, 60 000 writes of 4 KiB: bare",
        "dd: killpoint, SIGWINCH at write #60000",
        "dd: strace, SIGWINCH at write #60000",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let with_strace = strace.is_some();
    // One warm-up round first, not counted: page cache, binaries, CPU frequency.
    for round in 0..=runs {
        let mut measured = vec![
            Some(killpoint(&bare, &none, "exit 0")),
            Some(killpoint(&traced, &armed, "exit 0")),
            Some(killpoint(&traced, &every_write, "exit 0")),
            with_strace.then(|| strace_run(writer, "SIGWINCH", WRITES, 0)),
            Some(killpoint(&traced, &sigterm_write, "exit 14")),
            with_strace.then(|| strace_run(writer, "SIGTERM", WRITES, 14)),
            Some(killpoint(&dd_bare, &none, "exit 0")),
            Some(killpoint(&dd_traced, &dd_every, "exit 0")),
            with_strace.then(|| strace_run(dd, "SIGWINCH", dd_writes, 0)),
        ];
        if round > 0 {
            for (i, t) in measured.iter_mut().enumerate() {
                times[i].extend(t.take());
            }
        }
    }
    let m: Vec<Option<Duration>> = times
        .iter()
        .map(|t| (!t.is_empty()).then(|| median(t)))
        .collect();
    let ratio = |x: usize, y: usize| Some(m[x]?.as_secs_f64() / m[y]?.as_secs_f64());
    let overhead = |x: usize, base: usize| Some(m[x]?.as_secs_f64() - m[base]?.as_secs_f64());

    println!(
        "tracer benchmark: atomic-writer, 64 MiB in {WRITES} writes of 64 KiB + fsync + rename on ext4; {runs} rounds, pinned to CPU {cpu}"
    );
    println!("  {:<48} {:>10}", "configuration", "median");
    for (name, median) in names.iter().zip(&m) {
        match median {
            Some(d) => println!("  {:<48} {:>7.1} ms", name, ms(*d)),
            None => println!("  {:<48} {:>10}", name, "no strace"),
        }
    }
    println!();
    let show = |label: &str, value: Option<f64>, unit: &str, goal: &str| match value {
        Some(v) => println!("  {label:<34} {v:>8.3}{unit}  {goal}"),
        None => println!("  {label:<34} {:>8}", "n/a"),
    };
    show("armed overhead", ratio(1, 0), "×", "(goal ≤ 1.10)");
    show("every write vs bare", ratio(2, 0), "×", "(goal ≤ 1.6)");
    show(
        "cost per stop, 64 MiB target",
        overhead(2, 0).map(|d| d * 1e6 / WRITES as f64),
        " µs",
        "((every write − bare) / 1024)",
    );
    show(
        "killpoint / strace, SIGTERM #1024",
        ratio(4, 5),
        "",
        "(goal ≤ 0.5)",
    );
    show(
        "  their overheads, SIGWINCH #1024",
        overhead(2, 0).zip(overhead(3, 0)).map(|(k, s)| k / s),
        "",
        "((killpoint − bare) / (strace − bare))",
    );
    show(
        "cost per stop, dd",
        overhead(7, 6).map(|d| d * 1e6 / dd_writes as f64),
        " µs",
        "((killpoint − bare) / 60 000)",
    );
    show("dd: killpoint / strace", ratio(7, 8), "", "(goal ≤ 0.5)");
    show("dd: every write vs bare", ratio(7, 6), "×", "");
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}
