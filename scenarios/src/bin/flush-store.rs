//! flush-store: the "flush-loop store" pattern (PATTERNS.md §2).
//!
//! The main thread puts `--writes` records into an in-memory buffer, printing `ACK <id>`
//! for each once it is accepted; a flusher thread writes the buffer to `--store` (one
//! `write` per record, then `fdatasync`) every `--interval`. SIGTERM and SIGINT only set a
//! flag; the main thread then stops putting and calls `stop()`, which wakes the flusher at
//! once (a condition variable, not a sleep), lets it flush what is left and joins it. Every
//! acknowledged record is then on disk; the run exits 14 (stopped) or 0 (all written). A
//! failed flush is reported and the loop goes on.
//!
//! Planted bugs (`--bug NAME`), each the correct code with one thing wrong:
//! - `sleep-stop`: the flusher sleeps a whole interval between flushes and only then looks
//!   at the stop flag, so shutdown takes up to an interval.
//! - `handler-flush`: the signal handler flushes the store itself before setting the flag.
//!   When the signal lands on the flusher thread in the middle of a flush, the handler
//!   waits for the file lock that very thread holds: a deadlock.
//! - `no-final-flush`: the last flush was written on the happy path only: after all its
//!   writes, the main thread flushes and then stops the flusher, which leaves its loop
//!   without flushing. Stopped by a signal, the records acknowledged since the previous
//!   flush are lost.
//! - `handler-write`: the signal handler notes the stop in the store itself, with a raw
//!   `write` and `fdatasync` (async-signal-safe calls, so nothing deadlocks): file I/O in
//!   a handler, racing the flusher that owns the file.
//!
//! Usage: flush-store --store PATH [--writes N] [--pace DURATION] [--interval DURATION]
//!        [--bug sleep-stop|handler-flush|no-final-flush|handler-write]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use killpoint_scenarios::{Flags, STOPPED, pace};

const BUGS: [&str; 4] = [
    "sleep-stop",
    "handler-flush",
    "no-final-flush",
    "handler-write",
];

/// Set by the signal handlers; the main thread checks it between records.
static STOP: AtomicBool = AtomicBool::new(false);
/// The store, reachable from the `handler-flush` bug's signal handler.
static STORE: OnceLock<Arc<Store>> = OnceLock::new();
/// The store's descriptor, for the `handler-write` bug's signal handler.
static STORE_FD: AtomicI32 = AtomicI32::new(-1);

struct Store {
    /// Records accepted but not yet written.
    buffer: Mutex<Vec<String>>,
    /// The log file, held for a whole flush so flushes never interleave.
    file: Mutex<File>,
    /// Set by `stop()`; the flusher waits on it between flushes.
    stopping: Mutex<bool>,
    wake: Condvar,
}

impl Store {
    fn put(&self, record: String) {
        self.buffer.lock().unwrap().push(record);
    }

    /// Writes every buffered record, one `write` each, then syncs.
    fn flush(&self) -> std::io::Result<()> {
        let pending = std::mem::take(&mut *self.buffer.lock().unwrap());
        if pending.is_empty() {
            return Ok(());
        }
        let mut file = self.file.lock().unwrap();
        for record in &pending {
            file.write_all(record.as_bytes())?;
        }
        file.sync_data()
    }

    fn stopping(&self) -> bool {
        *self.stopping.lock().unwrap()
    }

    /// Waits up to `interval` or until `stop()`; true when stopping.
    fn wait(&self, interval: Duration) -> bool {
        let guard = self.stopping.lock().unwrap();
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, interval, |stopping| !*stopping)
            .unwrap();
        *guard
    }

    fn stop(&self, flusher: JoinHandle<()>) {
        *self.stopping.lock().unwrap() = true;
        self.wake.notify_all();
        flusher.join().expect("the flusher thread");
    }
}

fn flusher(store: &Store, interval: Duration, bug: Option<&str>) {
    let flush = || {
        if let Err(e) = store.flush() {
            eprintln!("flush-store: flush failed, will retry: {e}");
        }
    };
    loop {
        match bug {
            Some("sleep-stop") => {
                std::thread::sleep(interval);
                flush();
                if store.stopping() {
                    return;
                }
            }
            Some("no-final-flush") => {
                if store.wait(interval) {
                    return;
                }
                flush();
            }
            _ => {
                let stopping = store.wait(interval);
                flush();
                if stopping {
                    return;
                }
            }
        }
    }
}

fn main() -> ExitCode {
    killpoint_scenarios::main("flush-store", &[], run)
}

fn run(flags: &Flags) -> Result<ExitCode, String> {
    let bug = flags.bug(&BUGS)?;
    let writes = flags.number("--writes", 300)?;
    let pace_each = flags.duration("--pace", Duration::from_millis(1))?;
    let interval = flags.duration("--interval", Duration::from_millis(50))?;
    let path = flags.text("--store").ok_or("--store PATH is required")?;
    flags.check_known(&["--store", "--writes", "--pace", "--interval", "--bug"])?;

    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    let store = Arc::new(Store {
        buffer: Mutex::new(Vec::new()),
        file: Mutex::new(file),
        stopping: Mutex::new(false),
        wake: Condvar::new(),
    });
    STORE_FD.store(store.file.lock().unwrap().as_raw_fd(), Ordering::SeqCst);
    let _ = STORE.set(Arc::clone(&store));
    install_handlers(bug);

    let flusher = {
        let store = Arc::clone(&store);
        let bug = bug.map(str::to_string);
        std::thread::spawn(move || flusher(&store, interval, bug.as_deref()))
    };
    let payload = "x".repeat(48);
    let mut stdout = std::io::stdout().lock();
    for id in 1..=writes {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        store.put(format!("{id} {payload}\n"));
        writeln!(stdout, "ACK {id}").map_err(|e| format!("stdout: {e}"))?;
        pace(pace_each);
    }
    if bug == Some("no-final-flush") && !STOP.load(Ordering::SeqCst) {
        store.flush().map_err(|e| format!("flush: {e}"))?;
    }
    store.stop(flusher);
    Ok(if STOP.load(Ordering::SeqCst) {
        eprintln!("flush-store: stopped; every acknowledged record is on disk");
        ExitCode::from(STOPPED)
    } else {
        ExitCode::SUCCESS
    })
}

fn install_handlers(bug: Option<&str>) {
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if bug == Some("handler-flush") {
            // SAFETY: the bug itself: locking and writing in a signal handler is not
            // async-signal-safe. That is what this mode plants.
            unsafe {
                signal_hook::low_level::register(signal, || {
                    if let Some(store) = STORE.get() {
                        let _ = store.flush();
                    }
                    STOP.store(true, Ordering::SeqCst);
                })
            }
            .expect("install a signal handler");
        } else if bug == Some("handler-write") {
            // SAFETY: write and fdatasync are async-signal-safe; the bug is doing file
            // I/O in a handler at all.
            unsafe {
                signal_hook::low_level::register(signal, || {
                    let fd = STORE_FD.load(Ordering::SeqCst);
                    let note = b"# stop requested\n";
                    libc::write(fd, note.as_ptr().cast(), note.len());
                    libc::fdatasync(fd);
                    STOP.store(true, Ordering::SeqCst);
                })
            }
            .expect("install a signal handler");
        } else {
            // SAFETY: the handler only stores to an atomic.
            unsafe {
                signal_hook::low_level::register(signal, || STOP.store(true, Ordering::SeqCst))
            }
            .expect("install a signal handler");
        }
    }
}
