//! threads-writer: two named threads, each writing its own file in chunks (the shape of a
//! worker pool). Its handler notes which thread the kernel ran it on, so a test can tell
//! that a strike reached the thread it was aimed at.
//!
//! At start each thread prints `writer-a tid 1234` (and `writer-b …`). SIGTERM or SIGINT
//! makes both threads stop at their next chunk; the program then prints
//! `signal handled on writer-b` (or `on main`, or `on tid N`) and exits 14. Uninterrupted,
//! it writes `a.out` and `b.out` and exits 0.
//!
//! Usage: threads-writer --dir DIR [--chunks N] [--chunk BYTES]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
/// The thread the handler ran on.
static HANDLED_ON: AtomicI32 = AtomicI32::new(0);
static TIDS: [AtomicI32; 2] = [AtomicI32::new(0), AtomicI32::new(0)];
const NAMES: [&str; 2] = ["writer-a", "writer-b"];

fn main() -> ExitCode {
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // SAFETY: the handler only makes async-signal-safe calls (gettid, atomic stores).
        unsafe {
            signal_hook::low_level::register(signal, || {
                HANDLED_ON.store(libc::gettid(), Ordering::SeqCst);
                STOP.store(true, Ordering::SeqCst);
            })
        }
        .expect("install a signal handler");
    }
    let (dir, chunks, chunk) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("threads-writer: {e}");
            return ExitCode::from(2);
        }
    };
    let main_tid = unsafe { libc::gettid() };
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let path = dir.join(if i == 0 { "a.out" } else { "b.out" });
            std::thread::Builder::new()
                .name(NAMES[i].into())
                .spawn(move || work(i, &path, chunks, chunk))
                .expect("start a thread")
        })
        .collect();
    for worker in workers {
        if let Err(e) = worker.join().expect("a worker panicked") {
            eprintln!("threads-writer: {e}");
            return ExitCode::from(1);
        }
    }
    if !STOP.load(Ordering::SeqCst) {
        return ExitCode::SUCCESS;
    }
    let tid = HANDLED_ON.load(Ordering::SeqCst);
    let on = match TIDS.iter().position(|t| t.load(Ordering::SeqCst) == tid) {
        Some(i) => NAMES[i].to_string(),
        None if tid == main_tid => "main".to_string(),
        None => format!("tid {tid}"),
    };
    println!("signal handled on {on}");
    ExitCode::from(14)
}

fn work(i: usize, path: &Path, chunks: usize, chunk: usize) -> std::io::Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    TIDS[i].store(tid, Ordering::SeqCst);
    println!("{} tid {tid}", NAMES[i]);
    let mut file = File::create(path)?;
    let block = vec![b'a' + i as u8; chunk];
    for _ in 0..chunks {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        file.write_all(&block)?;
    }
    file.sync_all()
}

fn parse_args() -> Result<(PathBuf, usize, usize), String> {
    let (mut dir, mut chunks, mut chunk) = (None, 16, 4096);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("bad {flag} `{value}`"))
        };
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(&value)),
            "--chunks" => chunks = number()?,
            "--chunk" => chunk = number()?.max(1),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok((dir.ok_or("--dir DIR is required")?, chunks, chunk))
}
