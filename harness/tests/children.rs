//! End-to-end tests of the harness's own children: the helper commands it runs beside the
//! cases (a survivors command after every case) are its children as the targets are, and
//! the orphan reaping of parallel cases must never take one of them.

use std::fs;

use serde_json::Value;

mod common;
use common::campaign;

/// A correct store, read back by a survivors command after every case, with two cases at
/// a time: while one case's survivors command runs, the other case ends and reaps the
/// orphans re-parented to the harness. The survivors command's shell has exited while its
/// background child still holds the stdout pipe, so it is a zombie of the harness for a
/// while after each case; reaping it would make its status unreadable and every id
/// acknowledged look lost.
#[test]
fn parallel_cases_never_reap_another_cases_survivors_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.toml");
    fs::write(
        &file,
        r#"name = "sh-store"
command = ["sh", "-c", "for i in 1 2 3; do echo $i >> store.log; echo \"ACK $i\"; done"]
timeout = "10s"
shrink = { iterations = 0 }

[[strike]]
signal = "SIGTERM"
at = { after = "0ms..3ms" }

[expect]
clean = [0]
interrupted = ["SIGTERM"]
handler_io = "off"

[expect.acked]
ack = '^ACK (\d+)$'
survivors = { command = ["sh", "-c", "cat store.log 2>/dev/null; sleep 0.02 &"], pattern = '^(\d+)' }
"#,
    )
    .unwrap();
    let ran = campaign(&[
        file.to_str().unwrap(),
        "--jobs",
        "2",
        "--cases",
        "200",
        "--no-regressions",
        "--seed",
        "1",
    ]);
    let scenario = &ran.json["scenarios"][0];
    let lost: Vec<&Value> = scenario["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["violated"]
                .as_array()
                .is_some_and(|v| v.iter().any(|i| i == "acked-survives"))
        })
        .collect();
    assert_eq!(lost, Vec::<&Value>::new(), "{}{}", ran.stdout, ran.stderr);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert_eq!(
        scenario["result"]["result"], "passed",
        "{}{}",
        ran.stdout, ran.stderr
    );
    assert_eq!(scenario["cases_run"], 200, "{}", ran.stdout);
}

/// The same race with a real database: a Python store commits each row to SQLite before
/// acknowledging it, and the `sqlite3` program reads what survived after every case, two
/// cases at a time. A reaped `sqlite3` would read as a failed survivors command, and every
/// acknowledged row as lost.
#[test]
fn parallel_cases_never_reap_another_cases_sqlite3_survivors_command() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("store.py"),
        r#"
import signal, sqlite3, sys
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
db = sqlite3.connect("store.db")
db.execute("create table if not exists acked (id integer primary key)")
db.commit()
for i in range(1, 41):
    if stop:
        sys.exit(14)
    db.execute("insert into acked values (?)", (i,))
    db.commit()
    print(f"ACK {i}", flush=True)
# Python restores the default actions as it shuts down: block the signal, so that one
# arriving after the work is done cannot kill a finished run.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
"#,
    )
    .unwrap();
    let file = dir.path().join("store.toml");
    fs::write(
        &file,
        r#"name = "sqlite-store"
command = ["{python}", "{dir}/store.py"]
timeout = "10s"
shrink = { iterations = 0 }

[[strike]]
signal = "SIGTERM"

[expect]
interrupted = [14]
handler_io = "off"

[expect.acked]
ack = '^ACK (\d+)$'
survivors = { command = ["sqlite3", "{work}/store.db", "select id from acked order by id"] }
"#,
    )
    .unwrap();
    let ran = campaign(&[
        file.to_str().unwrap(),
        "--jobs",
        "2",
        "--cases",
        "100",
        "--no-regressions",
        "--seed",
        "1",
    ]);
    let scenario = &ran.json["scenarios"][0];
    assert_eq!(
        scenario["result"]["result"], "passed",
        "{}{}",
        ran.stdout, ran.stderr
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert_eq!(scenario["cases_run"], 100, "{}", ran.stdout);
    // The census read every row back through sqlite3.
    let census = &scenario["census"]["survivors"]["ids"]["Ok"];
    let ids: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
    assert_eq!(census, &serde_json::json!(ids), "{}", ran.stdout);
}
