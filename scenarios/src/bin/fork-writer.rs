//! fork-writer: a parent that starts `--children N` copies of itself (fork + exec), child
//! `i` writing `child-i.out` in chunks, and waits for them all (the shape of a supervisor).
//!
//! A child that gets SIGTERM or SIGINT stops at its next chunk and exits 14. The parent
//! prints one line per child, `child 1 (pid 4321): exit 14`, and exits 0 when every child
//! finished, 3 otherwise.
//!
//! Usage: fork-writer --dir DIR [--children N] [--chunks N]

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(dir) = value("--dir").map(PathBuf::from) else {
        eprintln!("fork-writer: --dir DIR is required");
        return ExitCode::from(2);
    };
    let chunks: usize = value("--chunks").and_then(|v| v.parse().ok()).unwrap_or(8);
    if let Some(index) = value("--child") {
        return child(&dir.join(format!("child-{index}.out")), chunks);
    }
    let children: usize = value("--children")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let me = std::env::current_exe().expect("the program's own path");
    let mut all_done = true;
    // One child at a time: the order of their writes is then the same on every run.
    for i in 0..children {
        let mut command = Command::new(&me);
        command
            .args([
                "--dir",
                &dir.to_string_lossy(),
                "--chunks",
                &chunks.to_string(),
            ])
            .args(["--child", &i.to_string()]);
        let status = match command.spawn().and_then(|mut c| {
            let pid = c.id();
            c.wait().map(|s| (pid, s))
        }) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("fork-writer: cannot run child {i}: {e}");
                return ExitCode::from(1);
            }
        };
        let (pid, status) = status;
        match status.code() {
            Some(code) => println!("child {i} (pid {pid}): exit {code}"),
            None => println!("child {i} (pid {pid}): {status}"),
        }
        all_done &= status.success();
    }
    if all_done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

fn child(path: &std::path::Path, chunks: usize) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).expect("install a signal handler");
    }
    let mut file = match File::create(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fork-writer: {}: {e}", path.display());
            return ExitCode::from(1);
        }
    };
    for _ in 0..chunks {
        if stop.load(Ordering::SeqCst) {
            return ExitCode::from(14);
        }
        if let Err(e) = file.write_all(&[b'c'; 4096]) {
            eprintln!("fork-writer: {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
