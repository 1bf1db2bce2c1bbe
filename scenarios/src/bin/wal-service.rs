//! wal-service: the "background workers with a write-ahead-log database" pattern
//! (PATTERNS.md §3).
//!
//! The main thread serves `--requests` requests: each inserts an item into a SQLite
//! database in WAL mode (`--db`), commits, and only then prints `ACK <id>`. An indexer
//! thread keeps a search index of the items in memory and persists it to `--index`
//! atomically (temp file, fsync, rename) every `--sweep-interval`. SIGTERM and SIGINT only
//! set a flag: the main thread stops serving, wakes the indexer (a condition variable),
//! which persists the index one last time, checkpoints the WAL and exits 14. Committed
//! items survive even SIGKILL; the index is never torn.
//!
//! `--verify` checks a database and index left behind: `PRAGMA integrity_check` must say
//! `ok`, the index must be whole and name only items the database holds. It prints the
//! ids in the database, one per line, or exits 1 saying what is wrong.
//!
//! Planted bugs (`--bug NAME`), each the correct code with one thing wrong:
//! - `exit-in-handler`: the handler calls `exit(0)`, so a cancelled service reports
//!   success with its requests unserved (and the index not persisted).
//! - `sleepy-sweep`: the indexer sleeps its whole interval in one go, so shutdown waits
//!   for the sleep to end.
//! - `ack-before-commit`: the item is acknowledged inside its transaction, before the
//!   commit: a kill right after the acknowledgement loses an acknowledged item.
//!
//! Usage: wal-service --db PATH --index PATH [--requests N] [--pace DURATION]
//!        [--sweep-interval DURATION] [--bug exit-in-handler|sleepy-sweep|ack-before-commit]
//!        wal-service --verify --db PATH --index PATH

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use killpoint_scenarios::{Flags, STOPPED, pace};
use rusqlite::Connection;

const BUGS: [&str; 3] = ["exit-in-handler", "sleepy-sweep", "ack-before-commit"];

static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    killpoint_scenarios::main("wal-service", &["--verify"], |flags| {
        let db = PathBuf::from(flags.text("--db").ok_or("--db PATH is required")?);
        let index = PathBuf::from(flags.text("--index").ok_or("--index PATH is required")?);
        if flags.has("--verify") {
            flags.check_known(&["--verify", "--db", "--index"])?;
            return Ok(match verify(&db, &index) {
                Ok(ids) => {
                    let mut out = std::io::stdout().lock();
                    for id in ids {
                        writeln!(out, "{id}").map_err(|e| e.to_string())?;
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("wal-service: {e}");
                    ExitCode::from(1)
                }
            });
        }
        serve(flags, &db, &index)
    })
}

/// The in-memory index and the indexer's wake-up, shared with the main thread.
struct Indexer {
    ids: Mutex<Vec<i64>>,
    stopping: Mutex<bool>,
    wake: Condvar,
}

fn serve(flags: &Flags, db: &Path, index: &Path) -> Result<ExitCode, String> {
    let bug = flags.bug(&BUGS)?;
    let requests = flags.number("--requests", 200)? as i64;
    let pace_each = flags.duration("--pace", Duration::from_millis(1))?;
    let interval = flags.duration("--sweep-interval", Duration::from_millis(100))?;
    flags.check_known(&[
        "--db",
        "--index",
        "--requests",
        "--pace",
        "--sweep-interval",
        "--bug",
    ])?;
    install_handlers(bug);

    let sql = |e: rusqlite::Error| format!("{}: {e}", db.display());
    let mut conn = Connection::open(db).map_err(sql)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    )
    .map_err(sql)?;

    let indexer = Arc::new(Indexer {
        ids: Mutex::new(Vec::new()),
        stopping: Mutex::new(false),
        wake: Condvar::new(),
    });
    let sweeper = {
        let indexer = Arc::clone(&indexer);
        let index = index.to_path_buf();
        let sleepy = bug == Some("sleepy-sweep");
        std::thread::spawn(move || sweep(&indexer, &index, interval, sleepy))
    };

    let mut stdout = std::io::stdout().lock();
    for id in 1..=requests {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let body = format!("item {id} {}", "y".repeat(64));
        let tx = conn.transaction().map_err(sql)?;
        tx.execute("INSERT INTO items (id, body) VALUES (?1, ?2)", (id, &body))
            .map_err(sql)?;
        if bug == Some("ack-before-commit") {
            writeln!(stdout, "ACK {id}").map_err(|e| e.to_string())?;
            tx.commit().map_err(sql)?;
        } else {
            tx.commit().map_err(sql)?;
            writeln!(stdout, "ACK {id}").map_err(|e| e.to_string())?;
        }
        indexer.ids.lock().unwrap().push(id);
        pace(pace_each);
    }

    *indexer.stopping.lock().unwrap() = true;
    indexer.wake.notify_all();
    sweeper
        .join()
        .expect("the indexer thread")
        .map_err(|e| format!("persisting the index: {e}"))?;
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .map_err(sql)?;
    drop(conn);
    Ok(if STOP.load(Ordering::SeqCst) {
        eprintln!("wal-service: stopped; index persisted, WAL checkpointed");
        ExitCode::from(STOPPED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The indexer: persists the index every `interval` and once more when stopping.
fn sweep(indexer: &Indexer, index: &Path, interval: Duration, sleepy: bool) -> std::io::Result<()> {
    loop {
        let stopping = if sleepy {
            std::thread::sleep(interval);
            *indexer.stopping.lock().unwrap()
        } else {
            let guard = indexer.stopping.lock().unwrap();
            let (guard, _) = indexer
                .wake
                .wait_timeout_while(guard, interval, |stopping| !*stopping)
                .unwrap();
            *guard
        };
        let snapshot = indexer.ids.lock().unwrap().clone();
        persist_index(index, &snapshot)?;
        if stopping {
            return Ok(());
        }
    }
}

/// Header, one id per line, and an `end COUNT` trailer; temp file → fsync → rename.
fn persist_index(index: &Path, ids: &[i64]) -> std::io::Result<()> {
    let temp = index.with_extension("tmp");
    let mut file = File::create(&temp)?;
    file.write_all(b"wal-index v1\n")?;
    for chunk in ids.chunks(32) {
        let lines: String = chunk.iter().map(|id| format!("{id}\n")).collect();
        file.write_all(lines.as_bytes())?;
    }
    file.write_all(format!("end {}\n", ids.len()).as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, index)?;
    if let Some(dir) = index.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The ids in the database, after checking it and the index.
fn verify(db: &Path, index: &Path) -> Result<Vec<i64>, String> {
    let sql = |e: rusqlite::Error| format!("{}: {e}", db.display());
    if !db.exists() {
        return Ok(Vec::new());
    }
    let conn = Connection::open(db).map_err(sql)?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(sql)?;
    if integrity != "ok" {
        return Err(format!("integrity_check: {integrity}"));
    }
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'items'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map_err(sql)?
        > 0;
    let ids: Vec<i64> = if has_table {
        let mut statement = conn
            .prepare("SELECT id FROM items ORDER BY id")
            .map_err(sql)?;
        statement
            .query_map([], |row| row.get(0))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?
    } else {
        Vec::new()
    };
    match fs::read_to_string(index) {
        Ok(text) => {
            let in_db: BTreeSet<i64> = ids.iter().copied().collect();
            let indexed = parse_index(&text).map_err(|e| format!("{}: {e}", index.display()))?;
            if let Some(id) = indexed.iter().find(|id| !in_db.contains(id)) {
                return Err(format!(
                    "{} names item {id}, which the database does not hold",
                    index.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", index.display())),
    }
    Ok(ids)
}

fn parse_index(text: &str) -> Result<Vec<i64>, String> {
    let mut lines = text.lines();
    if lines.next() != Some("wal-index v1") {
        return Err("no `wal-index v1` header".into());
    }
    let mut ids = Vec::new();
    for line in lines {
        if let Some(count) = line.strip_prefix("end ") {
            return match count.parse::<usize>() {
                Ok(n) if n == ids.len() => Ok(ids),
                _ => Err(format!("trailer `{line}` does not match {} ids", ids.len())),
            };
        }
        ids.push(line.parse().map_err(|_| format!("bad line `{line}`"))?);
    }
    Err("torn: no `end` trailer".into())
}

fn install_handlers(bug: Option<&str>) {
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // SAFETY: the correct handler only stores to an atomic; `exit-in-handler` calls
        // exit(), which is not async-signal-safe: that is the planted bug.
        let installed = if bug == Some("exit-in-handler") {
            unsafe { signal_hook::low_level::register(signal, || std::process::exit(0)) }
        } else {
            unsafe {
                signal_hook::low_level::register(signal, || STOP.store(true, Ordering::SeqCst))
            }
        };
        installed.expect("install a signal handler");
    }
}
