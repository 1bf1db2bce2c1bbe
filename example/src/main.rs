//! report-writer: a small tool of the kind killpoint is for. It writes a JSON report of
//! `--entries` entries to `--output`, one entry per write, and promises what its users
//! rely on: the report is never torn (a reader sees the old one or the whole new one), and
//! SIGTERM or SIGINT cancels it with exit 14, leaving nothing behind.
//!
//! It keeps the promise by writing a temp file beside the output, syncing it and renaming
//! it over the output. `--inplace` is the bug this example's tests catch: it truncates the
//! output and writes it directly, so a stop mid-write leaves half a report.
//!
//! Usage: report-writer --output PATH [--entries N] [--inplace]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The documented exit code of a cancelled run.
const CANCELLED: u8 = 14;

fn main() -> ExitCode {
    // The handlers only set a flag, which the write loop checks between entries.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).expect("install a handler");
    }
    let mut output = None;
    let mut entries = 16;
    let mut inplace = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--output" => output = args.next().map(PathBuf::from),
            "--entries" => entries = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--inplace" => inplace = true,
            other => {
                eprintln!("report-writer: unknown argument `{other}`");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(output), 1..) = (output, entries) else {
        eprintln!("usage: report-writer --output PATH [--entries N] [--inplace]");
        return ExitCode::from(2);
    };
    let written = if inplace {
        write_entries(&output, entries, &stop)
    } else {
        write_atomically(&output, entries, &stop)
    };
    match written {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(CANCELLED),
        Err(e) => {
            eprintln!("report-writer: {}: {e}", output.display());
            ExitCode::from(1)
        }
    }
}

/// Writes the report to a temp file, syncs it, and renames it over `output`; a stop
/// removes the temp file. `Ok(false)`: cancelled.
fn write_atomically(output: &Path, entries: usize, stop: &AtomicBool) -> std::io::Result<bool> {
    let mut temp = output.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    if !write_entries(&temp, entries, stop)? {
        fs::remove_file(&temp)?;
        return Ok(false);
    }
    fs::rename(&temp, output)?;
    Ok(true)
}

/// Writes the report to `path`, one entry per write, synced at the end. `Ok(false)`: a
/// stop came first (the file is left as far as it got).
fn write_entries(path: &Path, entries: usize, stop: &AtomicBool) -> std::io::Result<bool> {
    let mut file = File::create(path)?;
    file.write_all(b"{\"entries\": [\n")?;
    for i in 0..entries {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let comma = if i + 1 < entries { "," } else { "" };
        file.write_all(format!("  {{\"id\": {i}, \"status\": \"ok\"}}{comma}\n").as_bytes())?;
    }
    file.write_all(b"]}\n")?;
    file.sync_all()?;
    Ok(!stop.load(Ordering::SeqCst))
}
