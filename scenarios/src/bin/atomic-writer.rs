//! atomic-writer: the "atomic output writer" pattern (PATTERNS.md §1).
//!
//! Writes a JSON document of `--size` bytes to `--output` in `--chunk`-sized writes. The
//! correct version writes a temp file in the destination's directory, fsyncs it, renames
//! it over the destination and fsyncs the directory; SIGTERM or SIGINT ends the run with
//! exit 14 ("cancelled"), the temp file removed and the destination untouched.
//!
//! Planted bugs (`--bug NAME`), each the correct code with one thing wrong:
//! - `inplace`: truncates the destination and writes it directly: a strike mid-write
//!   leaves a truncated document.
//! - `exit0`: cancels correctly but exits 0, so a cancelled run looks like success.
//! - `index-inplace`: writes the document atomically, then its index (`OUTPUT.idx`, four
//!   chunks) in place: only a strike during the index's writes leaves a torn file, so the
//!   bug shows late in the run, after every write of the document went well.
//! - `no-fsync`: renames the temp file over the destination without fsyncing it first:
//!   every kill finds the output complete (the page cache holds the data), but after a
//!   power loss the rename may be on disk and the data not — the output comes back empty.
//! - `no-dir-fsync`: fsyncs the temp file but not the directory after the rename: after
//!   a power loss the rename itself may be lost, and an exit 0 did not mean the output
//!   was there.
//!
//! `--no-handlers` leaves SIGTERM and SIGINT at their default action (the process dies
//! where the signal finds it), as a program that never thought about signals would.
//!
//! Usage: atomic-writer --output PATH [--size BYTES] [--chunk BYTES] [--pace DURATION]
//!        [--bug inplace|exit0|index-inplace|no-fsync|no-dir-fsync] [--no-handlers]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The documented exit code of a cancelled run.
const CANCELLED: u8 = 14;

#[derive(Clone, Copy, PartialEq)]
enum Bug {
    None,
    InPlace,
    Exit0,
    IndexInPlace,
    NoFsync,
    NoDirFsync,
}

struct Options {
    output: PathBuf,
    size: usize,
    chunk: usize,
    pace: Duration,
    bug: Bug,
}

fn main() -> ExitCode {
    // Handlers first: they only set a flag that the write loop checks between chunks.
    let stop = Arc::new(AtomicBool::new(false));
    if !std::env::args().any(|a| a == "--no-handlers") {
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&stop))
                .expect("install a signal handler");
        }
    }
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("atomic-writer: {e}");
            return ExitCode::from(2);
        }
    };
    let document = document(options.size);
    let result = match options.bug {
        Bug::InPlace => write_in_place(&options.output, &options, &document, &stop),
        Bug::None | Bug::Exit0 | Bug::NoFsync | Bug::NoDirFsync => {
            write_atomically(&options, &document, &stop)
        }
        Bug::IndexInPlace => {
            write_atomically(&options, &document, &stop).and_then(|written| match written {
                Written::Done => {
                    let index = index(options.chunk * 4);
                    let mut path = options.output.clone().into_os_string();
                    path.push(".idx");
                    write_in_place(Path::new(&path), &options, &index, &stop)
                }
                cancelled => Ok(cancelled),
            })
        }
    };
    match result {
        Ok(Written::Done) => ExitCode::SUCCESS,
        Ok(Written::Cancelled) => {
            eprintln!(
                "atomic-writer: cancelled, {} left as it was",
                options.output.display()
            );
            if options.bug == Bug::Exit0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(CANCELLED)
            }
        }
        Err(e) => {
            eprintln!("atomic-writer: {e}");
            ExitCode::from(1)
        }
    }
}

enum Written {
    Done,
    Cancelled,
}

/// temp file in the same directory → write → fsync → rename → fsync the directory.
fn write_atomically(
    options: &Options,
    document: &[u8],
    stop: &AtomicBool,
) -> std::io::Result<Written> {
    let dir = options
        .output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = options
        .output
        .file_name()
        .expect("--output names a file")
        .to_string_lossy();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let cancelled = match write_chunks(&mut file, document, options, stop).and_then(|w| {
        // The no-fsync bug: the data is left to the page cache.
        if let Written::Done = w
            && options.bug != Bug::NoFsync
        {
            file.sync_all()?;
        }
        Ok(w)
    }) {
        Ok(Written::Done) if !stop.load(Ordering::SeqCst) => false,
        Ok(_) => true,
        Err(e) => {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
    };
    drop(file);
    if cancelled {
        fs::remove_file(&temp)?;
        return Ok(Written::Cancelled);
    }
    fs::rename(&temp, &options.output)?;
    // The no-dir-fsync bug: the rename is left to the page cache.
    if options.bug != Bug::NoDirFsync {
        File::open(dir)?.sync_all()?;
    }
    Ok(Written::Done)
}

/// The `inplace` bug: truncate the destination and write it directly.
fn write_in_place(
    path: &Path,
    options: &Options,
    document: &[u8],
    stop: &AtomicBool,
) -> std::io::Result<Written> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let written = write_chunks(&mut file, document, options, stop)?;
    if let Written::Done = written {
        file.sync_all()?;
    }
    Ok(written)
}

fn write_chunks(
    file: &mut File,
    document: &[u8],
    options: &Options,
    stop: &AtomicBool,
) -> std::io::Result<Written> {
    for chunk in document.chunks(options.chunk) {
        if stop.load(Ordering::SeqCst) {
            return Ok(Written::Cancelled);
        }
        file.write_all(chunk)?;
        if !options.pace.is_zero() {
            std::thread::sleep(options.pace);
        }
    }
    Ok(Written::Done)
}

/// A deterministic index of exactly `size` bytes: one `ID OFFSET` line per item.
fn index(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 32);
    let mut id = 0usize;
    while out.len() < size {
        out.extend_from_slice(format!("{id} {}\n", id * 52).as_bytes());
        id += 1;
    }
    out.truncate(size);
    out
}

/// A deterministic JSON document of exactly `size` bytes (at least a few dozen).
fn document(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"{\"items\":[");
    let mut id = 0u64;
    loop {
        let item = format!(
            "{}{{\"id\":{id},\"payload\":\"{}\"}}",
            if id == 0 { "" } else { "," },
            "x".repeat(40)
        );
        if out.len() + item.len() + 2 > size {
            break;
        }
        out.extend_from_slice(item.as_bytes());
        id += 1;
    }
    out.extend_from_slice(b"]}");
    // Pad with spaces before the closing brace so the size is exact.
    let pad = size.saturating_sub(out.len());
    let close = out.len() - 1;
    out.splice(close..close, std::iter::repeat_n(b' ', pad));
    out
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        output: PathBuf::new(),
        size: 4 << 20,
        chunk: 64 << 10,
        pace: Duration::ZERO,
        bug: Bug::None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--output" => options.output = PathBuf::from(value()?),
            "--size" => options.size = parse_bytes(&value()?)?,
            "--chunk" => options.chunk = parse_bytes(&value()?)?.max(1),
            "--pace" => options.pace = parse_pace(&value()?)?,
            "--no-handlers" => {} // seen before parsing: handlers come first
            "--bug" => {
                options.bug = match value()?.as_str() {
                    "inplace" => Bug::InPlace,
                    "exit0" => Bug::Exit0,
                    "index-inplace" => Bug::IndexInPlace,
                    "no-fsync" => Bug::NoFsync,
                    "no-dir-fsync" => Bug::NoDirFsync,
                    other => {
                        return Err(format!(
                            "unknown bug `{other}`: inplace, exit0, index-inplace, no-fsync or no-dir-fsync"
                        ));
                    }
                }
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if options.output.as_os_str().is_empty() {
        return Err("--output PATH is required".into());
    }
    Ok(options)
}

/// `4194304`, `64KiB`, `4MiB`.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let (number, scale) = if let Some(n) = text.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = text.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (text, 1)
    };
    number
        .parse::<usize>()
        .map(|n| n * scale)
        .map_err(|_| format!("`{text}` is not a size (e.g. 4MiB)"))
}

/// `2ms`, `500us`.
fn parse_pace(text: &str) -> Result<Duration, String> {
    if let Some(n) = text.strip_suffix("ms") {
        n.parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("bad --pace `{text}`"))
    } else if let Some(n) = text.strip_suffix("us") {
        n.parse()
            .map(Duration::from_micros)
            .map_err(|_| format!("bad --pace `{text}`"))
    } else {
        Err(format!("bad --pace `{text}`: write e.g. 2ms"))
    }
}
